"""analyze.py on experiment folders written through the experiment API (no training needed):
the exact operating point end to end, pooled_metrics.json, the comparison and its edge cases,
and what a sweeper gets back (the objective).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fixtures_train import compose_train

from gmn_weather.analysis import AnalyzeSettingError, analyze
from gmn_weather.compare import comparison_table, experiment_row
from gmn_weather.experiment import ExperimentDir, OOFRecord, RunInfo
from gmn_weather.objective import ObjectiveSettingError, fold_value, pooled_value


def write_experiment(root, name: str, prob_clear, labels, n_folds: int = 3,
                     settings: dict | None = None, overrides=("seed=1",)) -> ExperimentDir:
    """An experiment folder as fold jobs leave it: splits.csv, each fold's run info, and its
    OOF predictions with their record."""
    experiment = ExperimentDir.of(root, name)
    n = len(labels)
    groups = [f"ST{i % 12:04d}_2025110{i % 12 % 9 + 1}" for i in range(n)]
    folds = [i % 12 % n_folds for i in range(n)]
    splits = pd.DataFrame({"image_filename": [f"img_{i:03d}.png" for i in range(n)],
                           "label": labels, "group": groups, "fold": folds})
    experiment.path.mkdir(parents=True)
    splits.to_csv(experiment.splits_csv, index=False)
    for k in range(n_folds):
        experiment.fold(k).write_run_info(RunInfo(
            fold=k, n_folds=n_folds, name=name, fingerprint="f" * 16,
            settings=settings or {"data": {}, "seed": 1}, overrides=list(overrides)))
        part = splits[splits["fold"] == k].assign(
            prob_clear=[p for p, f in zip(prob_clear, folds, strict=True) if f == k])
        experiment.write_fold_oof(k, part, OOFRecord("f" * 16, settings or {"data": {}, "seed": 1},
                                                     overrides=list(overrides)))
    return experiment


def separated(n_clear: int = 30, n_cloudy: int = 30):
    rng = np.random.default_rng(0)
    labels = ["clear"] * n_clear + ["cloudy"] * n_cloudy
    prob = list(rng.uniform(0.55, 0.95, n_clear)) + list(rng.uniform(0.05, 0.45, n_cloudy))
    return prob, labels


def test_perfectly_separated_scores_give_recall_1_at_precision_1_through_analyze(tmp_path):
    prob, labels = separated()
    exp = write_experiment(tmp_path, "separated", prob, labels)
    text = analyze(compose_train(f"paths.output_root={tmp_path}", "name=separated",
                                 config_name="analyze"))
    point = json.loads(exp.operating_point_json.read_text())
    assert point["precision"] == 1.0 and point["recall"] == 1.0 and point["met"]
    # On the exact curve: the lowest clear score, not a 0.05 grid step below it.
    assert point["threshold"] == pytest.approx(min(prob[:30]))
    metrics = json.loads(exp.pooled_metrics_json.read_text())
    assert metrics["ap"] == metrics["auroc"] == metrics["recall_at_min_precision"] == 1.0
    assert metrics["precision_ci"] == {"low": 1.0, "high": 1.0}
    assert metrics["n_images"] == 60 and metrics["n_clear"] == 30 and metrics["n_groups"] == 12
    assert metrics["grouping"] == "station_night" and metrics["overrides"] == ["seed=1"]
    assert metrics["min_predicted_clear"] == 10
    assert "precision 1.000, recall 1.000" in text


def test_analyze_with_wandb_logs_the_pooled_run(tmp_path, monkeypatch):
    from fixtures_wandb import offline_runs

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    prob, labels = separated()
    exp = write_experiment(tmp_path / "out", "separated", prob, labels)
    analyze(compose_train(f"paths.output_root={tmp_path / 'out'}", "name=separated",
                          "logger=wandb", "tags=[again]", config_name="analyze"))
    (run,) = offline_runs(exp.path / "wandb")
    assert (run.run.job_type, run.run.display_name, run.run.run_group) == ("pooled", "pooled",
                                                                           "separated")
    assert list(run.run.tags) == ["again"] and run.summary["recall"] == 1.0
    assert len(run.table_rows("oof_predictions")) == 60


def test_min_predicted_clear_reaches_the_rule_and_grouping_comes_from_the_settings(tmp_path):
    prob, labels = separated()
    prob[0] = 0.99  # one very confident clear image above the rest
    exp = write_experiment(tmp_path, "exp", prob, labels,
                           settings={"data": {"group_by": "night"}, "seed": 1})
    analyze(compose_train(f"paths.output_root={tmp_path}", "name=exp",
                          "analyze.min_predicted_clear=25", config_name="analyze"))
    point = json.loads(exp.operating_point_json.read_text())
    assert point["min_predicted_clear"] == 15  # capped at half the 30 clear images
    assert point["tp"] + point["fp"] >= 15 and point["group_by"] == "night"
    assert json.loads(exp.pooled_metrics_json.read_text())["grouping"] == "night"


def test_compare_lists_pooled_first_and_says_what_the_others_need(tmp_path):
    prob, labels = separated()
    write_experiment(tmp_path, "good", prob, labels)
    noisy = [p if i % 7 else 1 - p for i, p in enumerate(prob)]
    write_experiment(tmp_path, "noisy", noisy, labels)
    incomplete = write_experiment(tmp_path, "incomplete", prob, labels)
    incomplete.fold(2).oof_csv.unlink()
    (tmp_path / "feature_cache").mkdir()  # not an experiment
    for name in ("good", "noisy"):
        analyze(compose_train(f"paths.output_root={tmp_path}", f"name={name}",
                              config_name="analyze"))
    text = analyze(compose_train(f"paths.output_root={tmp_path}", "mode=compare",
                                 "optimized_metric=auroc", config_name="analyze"))
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert list(table["name"]) == ["good", "noisy", "incomplete"]
    assert list(table["rank"].fillna(0)) == [1, 2, 0]
    assert table.loc[2, "status"] == "not pooled: fold(s) 2 of 3 missing"
    assert table.loc[0, "overrides"] == "seed=1" and table.loc[0, "auroc"] == 1.0
    assert "ranked by auroc" in text and "incomplete: not pooled" in text
    with pytest.raises(ObjectiveSettingError, match="optimized_metric='loss'"):
        analyze(compose_train(f"paths.output_root={tmp_path}", "mode=compare",
                              "optimized_metric=loss", config_name="analyze"))
    with pytest.raises(AnalyzeSettingError, match="mode='plot'"):
        analyze(compose_train(f"paths.output_root={tmp_path}", "mode=plot",
                              config_name="analyze"))


def test_comparison_ranks_by_the_metric_and_puts_undefined_last():
    rows = [experiment_row("b", {"ap": 0.8, "auroc": 0.9, "overrides": ["seed=2"]}),
            experiment_row("a", {"ap": 0.9, "auroc": 0.7}),
            experiment_row("c", {"ap": None, "auroc": None}),
            experiment_row("d", None, "not pooled: fold(s) 1 of 3 missing")]
    assert list(comparison_table(rows, "ap")["name"]) == ["a", "b", "c", "d"]
    table = comparison_table(rows, "auroc")
    assert list(table["name"]) == ["b", "a", "c", "d"]
    assert list(table["rank"].astype(object).where(table["rank"].notna(), None)) == [1, 2, None,
                                                                                   None]
    assert table.loc[0, "overrides"] == "seed=2"


def test_objective_keeps_name_and_direction_on_one_fold():
    oof = pd.DataFrame({"label": ["clear"] * 12 + ["cloudy"] * 12,
                        "prob_clear": np.r_[np.linspace(0.6, 0.9, 12), np.linspace(0.1, 0.5, 12)]})
    assert fold_value(oof, "ap") == fold_value(oof, "auroc") == 1.0
    assert fold_value(oof, "recall_at_min_precision") == 1.0
    one_class = oof[oof["label"] == "cloudy"]
    assert np.isnan(fold_value(one_class, "ap")) and np.isnan(fold_value(one_class, "recall_at_min_precision"))
    assert pooled_value({"ap": 0.5}, "ap") == 0.5 and np.isnan(pooled_value({"ap": None}, "ap"))
    with pytest.raises(ObjectiveSettingError, match="val/auroc"):
        pooled_value({}, "val/auroc")
