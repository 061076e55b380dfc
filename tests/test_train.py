"""``train(cfg)`` in-process: changed labels refused, label overrides reported, no network.

Determinism (same command, same seed) is checked in test_train_cli.py against the real
multirun's output.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fixtures_train import compose_train, make_dataset, tiny_overrides, unreachable_hub

from gmn_weather.model import PretrainedWeightsError
from gmn_weather.splits import SplitError
from gmn_weather.training import train


def _fold0(data_dir, output_root, *extra):
    """Train fold 0; return its experiment folder (named after the overrides)."""
    cfg = compose_train(*tiny_overrides(data_dir, output_root), "logger=none", "fold=0", *extra)
    return train(cfg).run_dir.parent


def test_changed_labels_refused_for_the_same_experiment(tmp_path):
    labels_csv, _, table = make_dataset(tmp_path / "data")
    _fold0(tmp_path / "data", tmp_path / "out", "trainer.max_epochs=0")
    table.loc[0, "label"] = "cloudy" if table.loc[0, "label"] == "clear" else "clear"
    table.to_csv(labels_csv, index=False)
    with pytest.raises(SplitError, match="labelled data changed.*name=<new name>"):
        _fold0(tmp_path / "data", tmp_path / "out", "trainer.max_epochs=0")


def test_label_overrides_are_reported_at_start(tmp_path, caplog):
    _, _, table = make_dataset(tmp_path / "data")
    overrides = tmp_path / "label_overrides.csv"
    pd.DataFrame({"image_filename": [table.loc[0, "image_filename"]],
                  "label": ["remove"]}).to_csv(overrides, index=False)
    with caplog.at_level("INFO"):
        exp = _fold0(tmp_path / "data", tmp_path / "out", f"data.label_overrides={overrides}",
                     "trainer.max_epochs=0")
    assert "label overrides: 1 rows overridden" in caplog.text
    splits = pd.read_csv(exp / "splits.csv")
    assert len(splits) == len(table) - 1


def test_pretrained_offline_is_a_user_error_and_does_not_block_the_rerun(tmp_path, monkeypatch):
    # train.py prints USER_ERRORS as one line; Hydra's instantiate must not hide it.
    unreachable_hub(monkeypatch, tmp_path)
    make_dataset(tmp_path / "data")
    with pytest.raises(PretrainedWeightsError, match="model.pretrained=false"):
        _fold0(tmp_path / "data", tmp_path / "out", "model.pretrained=true")
    # The job stopped before training, so the corrected rerun under the same name is not
    # refused as "another configuration".
    exp = _fold0(tmp_path / "data", tmp_path / "out", "trainer.max_epochs=0")
    assert (exp / "fold_0" / "oof_predictions.csv").is_file()


def test_folds_out_of_order_pool_after_the_last_one(tmp_path):
    """Also one group per night across stations (data.group_by=night), recorded in the
    pooled outputs."""
    make_dataset(tmp_path / "data")
    exp = tmp_path / "out" / "tiny_test_resnet_light_group_by-night_max_epochs-0"
    pooled_files = ("oof_predictions.csv", "threshold_table.csv", "pr_curve.png",
                    "operating_point.json", "pooled_metrics.json")
    for k in (2, 0):
        cfg = compose_train(*tiny_overrides(tmp_path / "data", tmp_path / "out"), "logger=none",
                            f"fold={k}", "trainer.max_epochs=0", "data.group_by=night")
        assert train(cfg).pooled is None
        assert not any((exp / name).exists() for name in pooled_files)
    splits = pd.read_csv(exp / "splits.csv", dtype={"group": str})
    assert sorted(splits["group"].unique()) == ["20251106", "20251107", "20251108", "20251109"]
    assert (splits.groupby("group")["fold"].nunique() == 1).all()  # a night in one fold
    cfg = compose_train(*tiny_overrides(tmp_path / "data", tmp_path / "out"), "logger=none",
                        "fold=1", "trainer.max_epochs=0", "data.group_by=night")
    result = train(cfg)
    assert all((exp / name).is_file() for name in pooled_files)
    oof = pd.read_csv(exp / "oof_predictions.csv")
    assert sorted(oof["fold"].unique()) == [0, 1, 2] and oof["image_filename"].is_unique
    point = json.loads((exp / "operating_point.json").read_text())
    assert point["threshold"] == result.pooled.operating_point.threshold
    assert point["n_images"] == len(oof) and point["n_folds"] == 3
    assert point["rule"].startswith("highest recall with precision >= 0.95")
    assert point["group_by"] == "night" and point["n_groups"] == 4
    run_info = json.loads((exp / "fold_1" / "run_info.json").read_text())
    assert run_info["settings"]["data"]["group_by"] == "night"


def test_fast_dev_run_scores_one_batch_and_writes_no_partial_oof(tmp_path, caplog):
    make_dataset(tmp_path / "data")
    cfg = compose_train(f"paths.data_dir={tmp_path / 'data'}", f"paths.output_root={tmp_path / 'out'}",
                        "debug=fast_dev_run", "model.backbone=test_resnet", "model.pretrained=false",
                        "data.image_size=[32,56]", "data.batch_size=6", "logger=none")
    with caplog.at_level("INFO"):
        result = train(cfg)
    assert "fast_dev_run scored 6 validation image(s) out-of-fold; nothing written" in caplog.text
    assert result.run_dir.name == "fold_0" and not (result.run_dir / "oof_predictions.csv").exists()
