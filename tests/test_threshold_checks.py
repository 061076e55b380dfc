"""Every threshold lies in [0, 1], and a bad one is one line naming it, from every entry.

``analyze.threshold=2`` was accepted, ``mode=final`` embedded it and ``predict.py`` then
called every image cloudy with exit 0; ``threshold=abc`` was a traceback. Now analyze.py,
a fold job (before training), the final export (operating_point.json), the model loader
(model.json) and predict.py (``threshold=``) refuse such values by name.
"""

from __future__ import annotations

import json

import pytest
from fixtures_train import compose_train, make_dataset, run_cli, tiny_overrides

from gmn_weather.experiment import ExperimentDir
from gmn_weather.export import load_classifier, threshold_from_operating_point
from gmn_weather.model import CheckpointError
from gmn_weather.thresholds import ThresholdSettingError, check_rule, check_unit
from gmn_weather.training import train


@pytest.mark.parametrize("value", [2, -0.1, 1.0001, "abc", "0.5", True, None, float("nan")])
def test_a_threshold_outside_zero_one_or_not_a_number_is_named(value):
    with pytest.raises(ThresholdSettingError, match=r"^analyze.threshold=.*: expected a number "
                                                    r"in \[0, 1\]$"):
        check_unit("analyze.threshold", value)


@pytest.mark.parametrize("value", [0, 0.0, 0.5, 1])
def test_thresholds_in_range_pass(value):
    assert check_unit("threshold", value) == float(value)


@pytest.mark.parametrize("rule, key", [({"threshold": 2}, "analyze.threshold"),
                                       ({"min_precision": "high"}, "analyze.min_precision"),
                                       ({"threshold_step": "abc"}, "analyze.threshold_step"),
                                       ({"threshold_step": 0}, "analyze.threshold_step")])
def test_the_analyze_rule_is_checked_as_a_whole(rule, key):
    with pytest.raises(ThresholdSettingError, match=f"^{key}="):
        check_rule(**rule)


@pytest.mark.parametrize("value", ["2", "abc"])
def test_analyze_says_one_line(tmp_path, value):
    proc = run_cli("analyze.py", f"paths.output_root={tmp_path}", f"analyze.threshold={value}",
                   check=False)
    assert proc.returncode == 1
    shown = repr(value) if value == "abc" else value
    assert proc.stderr.strip().splitlines() == [
        f"analyze: analyze.threshold={shown}: expected a number in [0, 1]"]


def test_a_fold_job_refuses_a_bad_rule_before_training(tmp_path):
    make_dataset(tmp_path / "data")
    cfg = compose_train(*tiny_overrides(tmp_path / "data", tmp_path / "out"),
                        "analyze.threshold=2")
    with pytest.raises(ThresholdSettingError, match="analyze.threshold=2"):
        train(cfg)
    assert not (tmp_path / "out").exists()


def test_an_operating_point_out_of_range_is_not_embedded(tmp_path):
    experiment = ExperimentDir(tmp_path / "exp")
    experiment.path.mkdir()
    experiment.operating_point_json.write_text(json.dumps({"threshold": 2.0,
                                                           "fingerprint": "f1"}))
    with pytest.raises(ThresholdSettingError, match=r"operating_point.json: threshold=2.0"):
        threshold_from_operating_point(experiment, "f1")


@pytest.fixture(scope="module")
def final_model(tmp_path_factory):
    """A final/ folder (an untrained tiny model: the threshold is what matters here)."""
    root = tmp_path_factory.mktemp("final_model")
    make_dataset(root / "data")
    train(compose_train(*tiny_overrides(root / "data", root / "out"), "logger=none",
                        "mode=final", "trainer.max_epochs=0"))
    return root, root / "out" / "tiny_test_resnet_light_max_epochs-0" / "final"


def test_model_json_with_a_threshold_out_of_range_is_refused_by_name(final_model, tmp_path):
    root, final = final_model
    broken = tmp_path / "final"
    broken.mkdir()
    for name in ("model.ckpt", "model.json"):
        (broken / name).write_bytes((final / name).read_bytes())
    card = json.loads((broken / "model.json").read_text())
    (broken / "model.json").write_text(json.dumps({**card, "threshold": 2.0}))
    with pytest.raises(CheckpointError, match=rf"{broken / 'model.json'}: threshold=2.0: "
                                              r"expected a number in \[0, 1\]"):
        load_classifier(broken)
    proc = run_cli("predict.py", f"checkpoint={broken}", f"input={root / 'data/converted_day'}",
                   f"output={tmp_path / 'p.csv'}", f"paths.output_root={tmp_path}",
                   check=False)
    assert proc.returncode == 2
    assert [line for line in proc.stderr.splitlines() if "Traceback" in line] == []
    assert f"{broken / 'model.json'}: threshold=2.0" in proc.stderr
    assert not (tmp_path / "p.csv").exists()


def test_predict_threshold_that_is_not_a_number_is_one_line(final_model, tmp_path):
    root, final = final_model
    proc = run_cli("predict.py", f"checkpoint={final}", f"input={root / 'data/converted_day'}",
                   f"output={tmp_path / 'p.csv'}", f"paths.output_root={tmp_path}",
                   "threshold=abc", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "predict.py: threshold='abc': expected a number in [0, 1] (null uses the model's own)"]
