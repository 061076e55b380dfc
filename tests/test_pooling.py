"""Pooling: the pure core on hand-made fold tables, and the decision files of an experiment
folder made by hand (no training needed)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gmn_weather.decision_files import pool_folds, pool_if_complete
from gmn_weather.experiment import ExperimentDir, ExperimentError, RunInfo
from gmn_weather.pooling import OOF_COLUMNS, PoolingError, pool, pool_predictions

LABELS = np.array(["clear", "clear", "clear", "cloudy", "cloudy", "cloudy"])
PROBS = np.array([0.9, 0.7, 0.4, 0.6, 0.2, 0.1])


def _splits() -> pd.DataFrame:
    return pd.DataFrame({"image_filename": [f"i{i}.png" for i in range(6)], "label": list(LABELS),
                         "group": ["g0", "g0", "g1", "g1", "g2", "g3"], "fold": [0, 0, 1, 1, 0, 1]})


def _fold_tables(splits: pd.DataFrame) -> dict[int, pd.DataFrame]:
    tables = {}
    for k in (0, 1):
        part = splits[splits["fold"] == k].copy()
        part["prob_clear"] = PROBS[part.index]
        tables[k] = part.reset_index(drop=True)
    return tables


def _infos(*fingerprints: str, weights: str = "last") -> dict[int, RunInfo]:
    return {k: RunInfo(fold=k, fingerprint=fp, oof_weights=weights,
                       settings={"model": {"backbone": f"net_{fp}"}, "seed": 1})
            for k, fp in enumerate(fingerprints)}


# --- the pure core ---------------------------------------------------------------------------

def test_pool_predictions_one_row_per_image_ordered_by_fold():
    splits = _splits()
    oof = pool_predictions(_fold_tables(splits), splits)
    assert list(oof.columns) == OOF_COLUMNS
    assert list(oof["fold"]) == [0, 0, 0, 1, 1, 1]
    assert list(oof["image_filename"]) == ["i0.png", "i1.png", "i4.png", "i2.png", "i3.png", "i5.png"]
    assert dict(zip(oof["image_filename"], oof["prob_clear"])) == {
        f"i{i}.png": p for i, p in enumerate(PROBS)}


def test_pool_predictions_refuses_overlap_and_gaps():
    splits = _splits()
    tables = _fold_tables(splits)
    overlapping = {**tables, 1: pd.concat([tables[1], tables[0].iloc[:1]], ignore_index=True)}
    with pytest.raises(PoolingError, match="more than one fold \\(first: i0.png\\)"):
        pool_predictions(overlapping, splits)
    short = {**tables, 1: tables[1].iloc[1:]}
    with pytest.raises(PoolingError, match="1 missing \\(first: \\['i2.png'\\]\\), 0 not in"):
        pool_predictions(short, splits)


def test_pool_chooses_the_operating_point_and_records_it():
    splits = _splits()
    result = pool(_fold_tables(splits), splits, _infos("a", "a"), "outputs/exp_a",
                  min_precision=0.95)
    # precision 1.0 holds from 0.65 up to 0.70 (recall 2/3); ties go to the higher threshold
    assert result.operating_point.threshold == pytest.approx(0.70)
    record = result.operating_point_record()
    assert record["fingerprint"] == "a" and record["experiment"] == "exp_a"
    assert (record["n_images"], record["n_clear"], record["n_folds"]) == (6, 3, 2)
    assert record["min_precision"] == 0.95 and record["optimistic"] is False
    assert "optimistic" not in result.table.columns

    fixed = pool(_fold_tables(splits), splits, _infos("a", "a", weights="best"), "exp",
                 threshold=0.55)
    assert fixed.operating_point.threshold == 0.55 and fixed.operating_point.tp == 2
    assert fixed.operating_point_record()["min_precision"] is None
    assert fixed.optimistic and fixed.table["optimistic"].all()
    assert fixed.report().startswith("OPTIMISTIC")


# --- decision files over a hand-made experiment folder ---------------------------------------

def _fake_experiment(root, fingerprints=("a", "a"), weights="last") -> ExperimentDir:
    experiment = ExperimentDir(root)
    splits = _splits()
    splits.to_csv(experiment.splits_csv, index=False)
    infos = _infos(*fingerprints, weights=weights)
    for k, table in _fold_tables(splits).items():
        experiment.write_fold_oof(k, table)
        experiment.fold(k).write_run_info(infos[k])
    return experiment


def test_pool_folds_writes_decision_files_and_recount(tmp_path):
    experiment = _fake_experiment(tmp_path)
    result = pool_folds(tmp_path, min_precision=0.95)
    oof = pd.read_csv(experiment.oof_csv)
    assert sorted(oof["image_filename"]) == [f"i{i}.png" for i in range(6)]
    table = pd.read_csv(experiment.threshold_table_csv)
    for _, row in table.iterrows():
        pred = oof["prob_clear"] >= row.threshold
        assert row.tp == int((pred & (oof["label"] == "clear")).sum())
        assert row.fp == int((pred & (oof["label"] == "cloudy")).sum())
    point = json.loads(experiment.operating_point_json.read_text())
    assert point["threshold"] == pytest.approx(result.operating_point.threshold)
    assert point["optimistic"] is False and point["fingerprint"] == "a"
    assert experiment.pr_curve_png.read_bytes()[:4] == b"\x89PNG"


def test_pool_refuses_mixed_configurations(tmp_path):
    _fake_experiment(tmp_path, fingerprints=("a", "b"))
    with pytest.raises(ExperimentError, match="different configurations.*model.backbone.*name="):
        pool_folds(tmp_path)
    # A fold job only logs that and pools nothing.
    assert pool_if_complete(tmp_path, "a") is None
    assert not ExperimentDir(tmp_path).oof_csv.exists()


def test_pool_refuses_missing_fold(tmp_path):
    experiment = _fake_experiment(tmp_path)
    experiment.fold(1).oof_csv.unlink()
    with pytest.raises(PoolingError, match="fold\\(s\\) 1 of 2 have no out-of-fold"):
        pool_folds(tmp_path)
    assert pool_if_complete(experiment, "a") is None


def test_best_epoch_outputs_say_optimistic(tmp_path):
    experiment = _fake_experiment(tmp_path, weights="best")
    result = pool_folds(experiment)
    assert result.report().startswith("OPTIMISTIC")
    assert json.loads(experiment.operating_point_json.read_text())["optimistic"] is True
    assert pd.read_csv(experiment.threshold_table_csv)["optimistic"].all()
