"""Pooling: the pure core on hand-made fold tables, and the decision files of an experiment
folder made by hand (no training needed)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gmn_weather.decision_files import pool_folds, pool_if_complete
from gmn_weather.experiment import ExperimentDir, ExperimentError, OOFRecord
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


def _infos(*fingerprints: str, weights: str = "last") -> dict[int, OOFRecord]:
    return {k: OOFRecord(fingerprint=fp, oof_weights=weights,
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


def test_pool_predictions_checks_folds_labels_and_groups_against_the_split():
    splits = _splits()
    tables = _fold_tables(splits)
    relabelled = {**tables, 0: tables[0].assign(label=["cloudy", "clear", "cloudy"])}
    with pytest.raises(PoolingError, match="1 prediction\\(s\\) disagree with splits.csv on "
                                           "label \\(first: i0.png: cloudy .*, clear in"):
        pool_predictions(relabelled, splits)
    moved = {**tables, 1: tables[1].assign(fold=[1, 0, 1])}
    with pytest.raises(PoolingError, match="fold 1's predictions hold rows of fold 0 "
                                           "\\(first: i3.png\\)"):
        pool_predictions(moved, splits)
    regrouped = {**tables, 1: tables[1].assign(group=["g1", "g9", "g3"])}
    with pytest.raises(PoolingError, match="on group \\(first: i3.png"):
        pool_predictions(regrouped, splits)
    # A fold file made from another split: right fold number, images of another fold.
    swapped = {0: tables[1].assign(fold=0), 1: tables[0].assign(fold=1)}
    with pytest.raises(PoolingError, match="disagree with splits.csv on fold"):
        pool_predictions(swapped, splits)


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
        experiment.write_fold_oof(k, table, infos[k])
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
    with pytest.raises(PoolingError, match="fold\\(s\\) 1 of 2 have no finished out-of-fold"):
        pool_folds(tmp_path)
    assert pool_if_complete(experiment, "a") is None


def test_pooling_trusts_the_record_written_with_the_predictions_not_run_info(tmp_path):
    """run_info.json is written when a job starts; a job of other settings starting later
    must not lend its fingerprint to predictions it did not make."""
    from gmn_weather.experiment import RunInfo

    experiment = _fake_experiment(tmp_path)
    experiment.fold(1).write_run_info(RunInfo(fold=1, fingerprint="b", settings={"seed": 2}))
    assert pool_folds(experiment).fingerprint == "a"
    experiment.write_fold_oof(1, _fold_tables(_splits())[1], _infos("b", "b")[1])
    with pytest.raises(ExperimentError, match="different configurations"):
        pool_folds(experiment)


def test_finish_fold_pools_exactly_once_whatever_the_order(tmp_path):
    from gmn_weather.decision_files import finish_fold, pool_if_unpooled

    experiment = ExperimentDir(tmp_path)
    splits = _splits()
    splits.to_csv(experiment.splits_csv, index=False)
    tables, records = _fold_tables(splits), _infos("a", "a")
    _, pooled = finish_fold(experiment, 1, tables[1], records[1])
    assert pooled is None and not experiment.oof_csv.exists()
    _, pooled = finish_fold(experiment, 0, tables[0], records[0])
    assert pooled is not None and experiment.operating_point_json.is_file()
    # A rerun that finds its fold finished pools only a set that was never pooled.
    assert pool_if_unpooled(experiment, "a") is None
    experiment.operating_point_json.unlink()
    assert pool_if_unpooled(experiment, "a") is not None


def test_best_epoch_outputs_say_optimistic(tmp_path):
    experiment = _fake_experiment(tmp_path, weights="best")
    result = pool_folds(experiment)
    assert result.report().startswith("OPTIMISTIC")
    assert json.loads(experiment.operating_point_json.read_text())["optimistic"] is True
    assert pd.read_csv(experiment.threshold_table_csv)["optimistic"].all()
