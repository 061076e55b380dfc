"""The commands users type, run for real: a multirun over three folds and two backbones,
then the final model, predict.py and analyze.py on its outputs.

One module-scoped multirun (``python train.py -m fold=0,1,2 model.backbone=test_resnet,
test_efficientnet``) feeds most assertions, to keep the suite fast.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from fixtures_train import REPO, compose_train, make_dataset, run_cli, tiny_overrides

BACKBONES = ("test_resnet", "test_efficientnet")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    _, image_dir, table = make_dataset(root / "data")
    output_root = root / "outputs"
    proc = run_cli("train.py", "-m", "fold=0,1,2", f"model.backbone={','.join(BACKBONES)}",
                   *tiny_overrides(root / "data", output_root))
    experiments = {b: output_root / f"tiny_{b}_light" for b in BACKBONES}
    return SimpleNamespace(root=root, data_dir=root / "data", image_dir=image_dir, table=table,
                           output_root=output_root, experiments=experiments, proc=proc)


def test_three_fold_runs_and_pooled_files(sweep):
    exp = sweep.experiments["test_resnet"]
    for k in range(3):
        fold = exp / f"fold_{k}"
        assert (fold / "oof_predictions.csv").is_file()
        assert (fold / "checkpoints" / "last.ckpt").is_file()
        assert (fold / ".hydra" / "config.yaml").is_file()  # Hydra's output dir is the fold's
        assert json.loads((fold / "run_info.json").read_text())["fold"] == k
    for name in ("splits.csv", "oof_predictions.csv", "threshold_table.csv", "pr_curve.png",
                 "operating_point.json"):
        assert (exp / name).is_file(), name
    assert "operating point: threshold" in sweep.proc.stdout + sweep.proc.stderr


def test_every_image_exactly_once_in_pooled_oof(sweep):
    oof = pd.read_csv(sweep.experiments["test_resnet"] / "oof_predictions.csv")
    assert list(oof.columns) == ["image_filename", "label", "group", "fold", "prob_clear"]
    assert sorted(oof["image_filename"]) == sorted(sweep.table["image_filename"])
    assert oof["image_filename"].is_unique
    assert oof["prob_clear"].between(0, 1).all()


def test_no_group_in_train_and_validation_of_one_fold(sweep):
    exp = sweep.experiments["test_resnet"]
    splits = pd.read_csv(exp / "splits.csv")
    assert (splits.groupby("group")["fold"].nunique() == 1).all()
    for k in range(3):
        val = pd.read_csv(exp / f"fold_{k}" / "oof_predictions.csv")
        train_groups = set(splits.loc[splits["fold"] != k, "group"])
        assert train_groups.isdisjoint(val["group"])
        info = json.loads((exp / f"fold_{k}" / "run_info.json").read_text())
        assert info["n_train"] + info["n_val"] == len(sweep.table)
        assert info["n_val"] == len(val)


def test_threshold_table_counts_equal_recount(sweep):
    exp = sweep.experiments["test_resnet"]
    oof = pd.read_csv(exp / "oof_predictions.csv")
    table = pd.read_csv(exp / "threshold_table.csv")
    assert np.allclose(table["threshold"], np.round(np.arange(0, 1.0001, 0.05), 2))
    clear = oof["label"] == "clear"
    for _, row in table.iterrows():
        predicted = oof["prob_clear"] >= row.threshold
        assert (row.tp, row.fp, row.tn, row.fn) == (
            (predicted & clear).sum(), (predicted & ~clear).sum(),
            (~predicted & ~clear).sum(), (~predicted & clear).sum())


def test_backbone_sweep_gives_one_table_per_backbone(sweep):
    tables = sorted(sweep.output_root.glob("*/threshold_table.csv"))
    assert [t.parent.name for t in tables] == sorted(f"tiny_{b}_light" for b in BACKBONES)
    backbones = {json.loads((sweep.experiments[b] / "fold_0" / "run_info.json").read_text())
                 ["settings"]["model"]["backbone"] for b in BACKBONES}
    assert backbones == set(BACKBONES)


def test_same_command_same_seed_identical_splits_and_oof(sweep, tmp_path):
    """Fold 0 again, in-process, into a fresh output root: same splits, same probabilities."""
    from gmn_weather.training import train

    cfg = compose_train("fold=0", "model.backbone=test_resnet",
                        *tiny_overrides(sweep.data_dir, tmp_path / "again"))
    train(cfg)
    first, again = sweep.experiments["test_resnet"], tmp_path / "again" / "tiny_test_resnet_light"
    assert (first / "splits.csv").read_bytes() == (again / "splits.csv").read_bytes()
    oof_first = pd.read_csv(first / "fold_0" / "oof_predictions.csv")
    oof_again = pd.read_csv(again / "fold_0" / "oof_predictions.csv")
    pd.testing.assert_frame_equal(oof_first, oof_again, check_exact=True)
    assert oof_first["prob_clear"].nunique() > 1  # real predictions, not a constant


def test_other_settings_under_the_same_name_are_refused(sweep):
    from gmn_weather.experiment import ExperimentError
    from gmn_weather.training import train

    cfg = compose_train("fold=0", "model.backbone=test_resnet", "seed=7",
                        *tiny_overrides(sweep.data_dir, sweep.output_root))
    with pytest.raises(ExperimentError, match="different configuration \\(seed: 42 vs 7\\).*name="):
        train(cfg)


def test_final_model_and_predict_follow_embedded_threshold(sweep, tmp_path):
    from gmn_weather.training import train

    cfg = compose_train("mode=final", "model.backbone=test_resnet",
                        *tiny_overrides(sweep.data_dir, sweep.output_root))
    result = train(cfg)
    final = sweep.experiments["test_resnet"] / "final"
    card = json.loads((final / "model.json").read_text())
    point = json.loads((sweep.experiments["test_resnet"] / "operating_point.json").read_text())
    assert result.card["threshold"] == card["threshold"] == point["threshold"]
    assert card["backbone"] == "test_resnet"
    assert card["input"]["resize"] == [32, 56] and card["input"]["channels"] == 3
    assert card["input"]["mean"] == [0.485, 0.456, 0.406]
    assert "prob_clear = sigmoid(logit)" in card["output"]
    assert card["trained_on"]["n_images"] == len(sweep.table)
    assert card["trained_on"]["differs_from_cv_data"] == []

    # Make the embedded threshold decisive: move it to the median probability.
    from gmn_weather.predict import predict_paths, run

    images = tmp_path / "images"
    shutil.copytree(sweep.image_dir, images)
    probe = predict_paths(final, sorted(images.glob("*.png")), batch_size=8)
    card["threshold"] = float(np.median(probe["prob_clear"]))
    (final / "model.json").write_text(json.dumps(card))
    (images / "broken.png").write_bytes(b"\x89PNG but not really")

    out = tmp_path / "predictions.csv"
    proc = run_cli("predict.py", f"checkpoint={final}", f"input={images}", f"output={out}",
                   f"paths.output_root={tmp_path / 'outputs'}", check=False)  # Hydra's log dir
    assert proc.returncode == 1, proc.stderr  # the unreadable image is counted, not fatal
    assert "1 unreadable" in proc.stdout
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["filename", "prediction", "confidence", "prob_clear", "error"]
    broken = pred[pred["filename"] == "broken.png"].iloc[0]
    assert broken["prediction"] == "unreadable" and broken["error"]
    good = pred[pred["prediction"] != "unreadable"]
    assert len(good) == len(sweep.table)
    expected = np.where(good["prob_clear"] >= card["threshold"], "clear", "cloudy")
    assert (good["prediction"] == expected).all()
    assert 0 < (good["prediction"] == "clear").sum() < len(good)
    conf = np.where(good["prediction"] == "clear", good["prob_clear"], 1 - good["prob_clear"])
    assert np.allclose(good["confidence"], conf)

    # threshold= overrides the embedded one (same code path as predict.py threshold=0.0).
    summary = run(str(final), f"{images}/*_000.png", str(out), threshold=0.0)
    assert summary.n_clear == len(sweep.table) and summary.threshold == 0.0


def test_analyze_rule_override_and_refusal_of_mixed_folds(sweep, tmp_path):
    proc = run_cli("analyze.py", "debug=tiny", f"paths.output_root={sweep.output_root}",
                   "model.backbone=test_efficientnet", "analyze.threshold=0.5")
    assert "fixed threshold (analyze.threshold=0.5)" in proc.stdout
    point = json.loads((sweep.experiments["test_efficientnet"] / "operating_point.json").read_text())
    assert point["threshold"] == 0.5 and point["min_precision"] is None
    page = sweep.experiments["test_efficientnet"] / "report.html"
    assert f"report page: {page}" in proc.stdout
    html = page.read_text()
    assert "fixed threshold (analyze.threshold=0.5)" in html
    # The overrides the folds were started with, from their .hydra/overrides.yaml.
    assert "<code>model.backbone=test_efficientnet</code>" in html and "<code>debug=tiny</code>" in html

    mixed = tmp_path / "outputs" / "mixed"
    shutil.copytree(sweep.experiments["test_resnet"], mixed)
    info_path = mixed / "fold_1" / "run_info.json"
    info = json.loads(info_path.read_text())
    info["fingerprint"] = "0000"
    info["settings"]["model"]["backbone"] = "other_net"
    info_path.write_text(json.dumps(info))
    proc = run_cli("analyze.py", f"paths.output_root={tmp_path / 'outputs'}", "name=mixed",
                   check=False)
    assert proc.returncode == 1
    assert "different configurations" in proc.stderr and "name=" in proc.stderr


def test_help_lists_the_important_keys():
    for script, keys in (("train.py", ["mode", "data.n_folds", "model.backbone",
                                       "model.weights_file", "trainer.max_epochs"]),
                         ("analyze.py", ["analyze.min_precision", "analyze.threshold"]),
                         ("predict.py", ["input", "output", "checkpoint", "threshold"])):
        out = run_cli(script, "--help").stdout
        assert out.startswith(f"{script}:")
        for key in keys:
            assert key in out, (script, key)


def test_debug_configs_compose():
    fast = compose_train("debug=fast_dev_run")
    assert fast.trainer.fast_dev_run is True and fast.name.startswith("debug_fast_dev_run")
    overfit = compose_train("debug=overfit")
    assert overfit.trainer.overfit_batches == 3
    tiny = compose_train("debug=tiny")
    assert list(tiny.data.image_size) == [32, 56] and tiny.model.backbone == "test_resnet"
    ref = compose_train("experiment=reference")
    assert ref.augmentation.name == "reference" and ref.model.head_only_epochs == 3
    assert ref.model.full_lr == 1e-5 and ref.model.optimizer.lr == 1e-3
    assert ref.trainer.max_epochs == 10 and ref.data.batch_size == 32 and ref.data.n_folds == 3
    for config_name in ("analyze", "predict"):  # experiments compose there as in training
        other = compose_train("experiment=reference", "debug=tiny", config_name=config_name)
        assert other.name == "tiny_test_resnet_reference"
    default = compose_train()
    assert default.name == "resnet18_light" and default.paths.output_root == "outputs"
    assert default.data.labels_csv == "data/extracted_night_labels.csv"
    assert Path(default.data.image_dir) == Path("data/converted_day")


@pytest.mark.parametrize("config_name", ["analyze", "predict"])
def test_analyze_and_predict_compose_the_shared_base(config_name):
    from omegaconf import OmegaConf

    # The group list and the name rule live once, in base.yaml.
    defaults = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / f"{config_name}.yaml"))["defaults"]
    assert "base" in defaults
    assert not [d for d in defaults if isinstance(d, dict) and not str(next(iter(d))).startswith("override")]
    for overrides in ((), ("experiment=reference",), ("experiment=demo",),
                      ("debug=tiny", "model.backbone=test_efficientnet", "augmentation=strong")):
        trained, other = compose_train(*overrides), compose_train(*overrides, config_name=config_name)
        for key in ("name", "seed", "paths", "data", "model", "augmentation", "analyze"):
            assert other[key] == trained[key], (config_name, overrides, key)
