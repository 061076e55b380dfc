"""The commands users type, run for real: a sweep of four experiments (three folds each,
learning rate x augmentation) logged to W&B offline, the feature baseline on the same folds,
``analyze.py mode=compare`` ranking them, then the final model, predict.py and analyze.py
on their outputs.

One module-scoped multirun (``python train.py -m fold=0,1,2 model.optimizer.lr=1e-3,3e-3
augmentation=light,strong``) with the baseline and the comparison feeds most assertions, to
keep the suite fast.
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
from fixtures_wandb import offline_runs

LRS = ("0.001", "0.003")
AUGMENTATIONS = ("light", "strong")
FIRST = ("light", "0.001")
BASELINE = "features_gbm_min_samples_leaf-2"
POOLED_KEYS = {"ap", "auroc", "recall_at_min_precision", "threshold", "precision", "recall",
               "precision_ci", "recall_ci", "fold_ap", "fold_auroc", "folds", "n_images",
               "n_clear", "n_groups", "grouping", "overrides"}


def wandb_env(root: Path) -> dict:
    return {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(root / "wandb"),
            "WANDB_CACHE_DIR": str(root / "wandb_cache"),
            "WANDB_DATA_DIR": str(root / "wandb_data"),
            "WANDB_CONFIG_DIR": str(root / "wandb_config")}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    _, image_dir, table = make_dataset(root / "data")
    output_root = root / "outputs"
    env = wandb_env(root)
    common = [*tiny_overrides(root / "data", output_root), "logger=wandb", "tags=[sweep]"]
    proc = run_cli("train.py", "-m", "fold=0,1,2", "model.optimizer.lr=1e-3,3e-3",
                   "augmentation=light,strong", *common, env=env)
    # The feature baseline on the same data (tiny: leaves of 2 images), in-process to save a
    # start-up; then the comparison as users type it.
    from gmn_weather.training import train

    with pytest.MonkeyPatch.context() as patch:
        for variable, value in env.items():
            patch.setenv(variable, value)
        baseline = train(compose_train("mode=cv", "model=features_gbm", "model.min_samples_leaf=2",
                                       *[o for o in common if o != "debug=tiny"]))
    compare = run_cli("analyze.py", "mode=compare", f"paths.output_root={output_root}", env=env)
    experiments = {(aug, lr): output_root / f"tiny_test_resnet_{aug}_lr-{lr}"
                   for aug in AUGMENTATIONS for lr in LRS}
    return SimpleNamespace(root=root, data_dir=root / "data", image_dir=image_dir, table=table,
                           output_root=output_root, experiments=experiments, proc=proc,
                           baseline=baseline, compare=compare, env=env)


def test_three_fold_runs_and_pooled_files(sweep):
    exp = sweep.experiments[FIRST]
    for k in range(3):
        fold = exp / f"fold_{k}"
        assert (fold / "oof_predictions.csv").is_file()
        assert (fold / "checkpoints" / "last.ckpt").is_file()
        assert (fold / ".hydra" / "config.yaml").is_file()  # Hydra's output dir is the fold's
        assert json.loads((fold / "run_info.json").read_text())["fold"] == k
    for name in ("splits.csv", "oof_predictions.csv", "threshold_table.csv", "pr_curve.png",
                 "operating_point.json", "pooled_metrics.json"):
        assert (exp / name).is_file(), name
    assert "operating point: threshold" in sweep.proc.stdout + sweep.proc.stderr


def test_every_image_exactly_once_in_pooled_oof(sweep):
    oof = pd.read_csv(sweep.experiments[FIRST] / "oof_predictions.csv")
    assert list(oof.columns) == ["image_filename", "label", "group", "fold", "prob_clear"]
    assert sorted(oof["image_filename"]) == sorted(sweep.table["image_filename"])
    assert oof["image_filename"].is_unique
    assert oof["prob_clear"].between(0, 1).all()


def test_no_group_in_train_and_validation_of_one_fold(sweep):
    exp = sweep.experiments[FIRST]
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
    exp = sweep.experiments[FIRST]
    oof = pd.read_csv(exp / "oof_predictions.csv")
    table = pd.read_csv(exp / "threshold_table.csv")
    assert np.allclose(table["threshold"], np.round(np.arange(0, 1.0001, 0.05), 2))
    clear = oof["label"] == "clear"
    for _, row in table.iterrows():
        predicted = oof["prob_clear"] >= row.threshold
        assert (row.tp, row.fp, row.tn, row.fn) == (
            (predicted & clear).sum(), (predicted & ~clear).sum(),
            (~predicted & ~clear).sum(), (~predicted & clear).sum())


def test_sweep_over_any_key_gives_one_pooled_experiment_per_setting(sweep):
    tables = sorted(p.parent for p in sweep.output_root.glob("tiny_*/threshold_table.csv"))
    assert tables == sorted(sweep.experiments.values())
    for (aug, lr), exp in sweep.experiments.items():
        info = json.loads((exp / "fold_2" / "run_info.json").read_text())
        assert info["settings"]["augmentation"]["name"] == aug
        assert info["settings"]["model"]["optimizer"]["lr"] == float(lr)
        assert info["overrides"] == [f"augmentation={aug}", "debug=tiny",
                                     f"model.optimizer.lr={lr}"]
        point = json.loads((exp / "operating_point.json").read_text())
        metrics = json.loads((exp / "pooled_metrics.json").read_text())
        assert POOLED_KEYS <= set(metrics) and metrics["experiment"] == exp.name
        assert metrics["n_images"] == len(sweep.table) and metrics["n_groups"] == 6
        assert metrics["grouping"] == "station_night" and len(metrics["folds"]) == 3
        oof = pd.read_csv(exp / "oof_predictions.csv")
        assert 0 <= metrics["precision_ci"]["low"] <= metrics["precision"] \
            <= metrics["precision_ci"]["high"] <= 1
        for key in ("ap", "auroc", "recall_at_min_precision", "threshold", "precision_ci"):
            assert point[key] == metrics[key], key  # key figures repeated for the reader
        clear = oof["label"] == "clear"
        assert metrics["tp"] == int((clear & (oof["prob_clear"] >= metrics["threshold"])).sum())


def test_compare_ranks_the_four_experiments_and_the_baseline(sweep):
    table = pd.read_csv(sweep.output_root / "comparison.csv")
    names = sorted([*(p.name for p in sweep.experiments.values()), BASELINE])
    assert sorted(table["name"]) == names
    assert list(table["rank"]) == [1, 2, 3, 4, 5]
    assert list(table["ap"]) == sorted(table["ap"], reverse=True)  # optimized_metric=ap
    for _, row in table.iterrows():
        metrics = json.loads((sweep.output_root / row["name"] / "pooled_metrics.json").read_text())
        assert row["ap"] == pytest.approx(metrics["ap"])
        assert row["threshold"] == pytest.approx(metrics["threshold"])
        assert row["n_images"] == len(sweep.table) and row["status"] == "pooled"
        assert row["report"] == str(sweep.output_root / row["name"] / "report.html")
    baseline = table.set_index("name").loc[BASELINE]
    assert baseline["overrides"] == "model=features_gbm model.min_samples_leaf=2"
    assert sweep.baseline.objective == pytest.approx(baseline["ap"])  # what train.py returns
    assert "ranked by ap" in sweep.compare.stdout and BASELINE in sweep.compare.stdout
    # The baseline trained on the very folds of the networks.
    network_splits = (sweep.experiments[FIRST] / "splits.csv").read_bytes()
    assert (sweep.output_root / BASELINE / "splits.csv").read_bytes() == network_splits
    for k in range(3):
        assert (sweep.output_root / BASELINE / f"fold_{k}" / "oof_predictions.csv").is_file()


def test_wandb_holds_one_pooled_run_per_experiment(sweep):
    runs = offline_runs(sweep.output_root)
    pooled = {r.run.run_group: r for r in runs if r.run.job_type == "pooled"}
    assert sorted(pooled) == sorted([*(p.name for p in sweep.experiments.values()), BASELINE])
    assert len([r for r in runs if r.run.job_type == "pooled"]) == 5
    for name, run in pooled.items():
        assert run.run.display_name == "pooled" and list(run.run.tags) == ["sweep"]
        assert POOLED_KEYS <= set(run.summary)
        metrics = json.loads((sweep.output_root / name / "pooled_metrics.json").read_text())
        assert run.summary["ap"] == pytest.approx(metrics["ap"])
        assert {"pr_curve", "threshold_table", "oof_predictions", "fold_metrics",
                "error_gallery"} <= run.history_keys
        assert len(run.table_rows("oof_predictions")) == len(sweep.table)
        assert len(run.table_rows("threshold_table")) == 21
        assert {"overrides", "fingerprint", "model", "data"} <= run.config_keys
        assert not any(e.args or e.program for e in run.environments)  # no command line
    folds = [r for r in runs if r.run.job_type == "fold"]
    assert len(folds) == 12  # the networks' folds; the baseline has no curves to show
    assert {r.run.run_group for r in folds} == {p.name for p in sweep.experiments.values()}
    assert all({"train/loss", "val/loss", "val/auroc"} <= r.history_keys for r in folds)


def test_same_command_same_seed_identical_splits_and_oof(sweep, tmp_path):
    """Fold 0 again, in-process, into a fresh output root: same splits, same probabilities."""
    from gmn_weather.training import train

    cfg = compose_train("fold=0", "model.optimizer.lr=0.001",
                        *tiny_overrides(sweep.data_dir, tmp_path / "again"))
    train(cfg)
    first = sweep.experiments[FIRST]
    again = tmp_path / "again" / first.name
    assert (first / "splits.csv").read_bytes() == (again / "splits.csv").read_bytes()
    oof_first = pd.read_csv(first / "fold_0" / "oof_predictions.csv")
    oof_again = pd.read_csv(again / "fold_0" / "oof_predictions.csv")
    pd.testing.assert_frame_equal(oof_first, oof_again, check_exact=True)
    assert oof_first["prob_clear"].nunique() > 1  # real predictions, not a constant


def test_other_settings_under_the_same_name_are_refused(sweep):
    from gmn_weather.experiment import ExperimentError
    from gmn_weather.training import train

    cfg = compose_train("fold=0", "model.optimizer.lr=1e-3", "seed=7",
                        f"name={sweep.experiments[FIRST].name}",
                        *tiny_overrides(sweep.data_dir, sweep.output_root))
    with pytest.raises(ExperimentError, match="different configuration \\(seed: 42 vs 7\\).*name="):
        train(cfg)


def test_final_model_and_predict_follow_embedded_threshold(sweep, tmp_path, monkeypatch):
    from gmn_weather.training import train

    for variable, value in sweep.env.items():
        monkeypatch.setenv(variable, value)
    cfg = compose_train("mode=final", "model.optimizer.lr=1e-3",
                        *tiny_overrides(sweep.data_dir, sweep.output_root), "logger=wandb")
    result = train(cfg)
    exp = sweep.experiments[FIRST]
    final = exp / "final"
    card = json.loads((final / "model.json").read_text())
    point = json.loads((exp / "operating_point.json").read_text())
    assert result.card["threshold"] == card["threshold"] == point["threshold"]
    # The pooled metric of the experiment is what the final job returns to a sweeper.
    pooled = json.loads((exp / "pooled_metrics.json").read_text())
    assert result.objective == pooled["ap"]
    (run,) = offline_runs(final / "wandb")
    (artifact,) = run.artifacts
    assert artifact.type == "model" and artifact.name == "sky-classifier"
    assert set(artifact.aliases) == {"latest", exp.name}
    assert {entry.path for entry in artifact.manifest.contents} == {"model.ckpt", "model.json"}
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
    assert list(pred.columns) == ["filename", "prediction", "confidence", "prob_clear", "error",
                                  "station", "night", "timestamp"]
    broken = pred[pred["filename"] == "broken.png"].iloc[0]
    assert broken["prediction"] == "unreadable" and broken["error"]
    assert pd.isna(broken["station"]) and pd.isna(broken["timestamp"])  # not a frame name
    named = pred.set_index("filename").loc[sweep.table["image_filename"]]
    assert list(named["station"]) == list(sweep.table["station"])
    assert list(pd.to_datetime(named["timestamp"]).dt.tz_localize(None)) == \
        list(pd.to_datetime(sweep.table["timestamp"]))
    assert named["night"].isna().all()  # a name alone does not tell the capture session
    assert "GPU available" not in proc.stdout + proc.stderr and "srun" not in proc.stderr
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


def test_another_rule_says_final_is_stale_and_update_final_refreshes_it(sweep, tmp_path):
    """analyze.py with another rule names final/'s old threshold; update_final rewrites it."""
    from gmn_weather.analysis import analyze
    from gmn_weather.training import train

    overrides = ["model.optimizer.lr=3e-3", *tiny_overrides(sweep.data_dir, tmp_path / "out")]
    shutil.copytree(sweep.experiments[("light", "0.003")], tmp_path / "out" /
                    sweep.experiments[("light", "0.003")].name, ignore=shutil.ignore_patterns("wandb"))
    train(compose_train("mode=final", *overrides))
    model_json = tmp_path / "out" / sweep.experiments[("light", "0.003")].name / "final" / "model.json"
    before = json.loads(model_json.read_text())
    rule = ["analyze.threshold=0.25"]
    text = analyze(compose_train(*overrides, *rule, config_name="analyze"), [*overrides, *rule])
    assert f"still carries threshold {before['threshold']:.4g}" in text
    assert "analyze.update_final=true" in text.splitlines()[-1]
    assert json.loads(model_json.read_text()) == before  # nothing changed without asking
    text = analyze(compose_train(*overrides, *rule, "analyze.update_final=true",
                                 config_name="analyze"))
    after = json.loads(model_json.read_text())
    assert after["threshold"] == 0.25 and "analyze.threshold=0.25" in after["threshold_source"]
    assert after["operating_point"]["threshold"] == 0.25
    assert after["threshold_history"][-1]["threshold"] == before["threshold"]
    assert f"threshold {before['threshold']:.4g} -> 0.25" in text


def test_analyze_rule_override_and_refusal_of_mixed_folds(sweep, tmp_path):
    # The overrides that trained an experiment find it (a copy: the sweep's stays as pooled).
    source = sweep.experiments[("strong", "0.003")]
    shutil.copytree(source, tmp_path / "outputs" / source.name)
    proc = run_cli("analyze.py", "debug=tiny", f"paths.output_root={tmp_path / 'outputs'}",
                   "model.optimizer.lr=3e-3", "augmentation=strong", "analyze.threshold=0.5")
    assert "fixed threshold (analyze.threshold=0.5)" in proc.stdout
    point = json.loads((tmp_path / "outputs" / source.name / "operating_point.json").read_text())
    assert point["threshold"] == 0.5 and point["min_precision"] is None
    page = tmp_path / "outputs" / source.name / "report.html"
    assert f"report page: {page}" in proc.stdout
    html = page.read_text()
    assert "fixed threshold (analyze.threshold=0.5)" in html
    # The overrides the folds were started with, from their .hydra/overrides.yaml.
    assert "<code>model.optimizer.lr=0.003</code>" in html and "<code>debug=tiny</code>" in html

    mixed = tmp_path / "outputs" / "mixed"
    shutil.copytree(sweep.experiments[FIRST], mixed)
    record_path = mixed / "fold_1" / "oof_predictions.json"  # what fold_1 was made under
    record = json.loads(record_path.read_text())
    record["fingerprint"] = "0000"
    record["settings"]["model"]["backbone"] = "other_net"
    record_path.write_text(json.dumps(record))
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
        assert other.name == "tiny_reference_test_resnet"
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
