"""Threshold table, operating-point rule and pooling checks (no training needed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from gmn_base.atomic import write_csv, write_json
from gmn_weather.pooling import PoolingError, pool_folds
from gmn_weather.thresholds import choose_operating_point, threshold_grid, threshold_table

LABELS = np.array(["clear", "clear", "clear", "cloudy", "cloudy", "cloudy"])
PROBS = np.array([0.9, 0.7, 0.4, 0.6, 0.2, 0.1])


def test_grid_covers_0_to_1_in_steps_of_005():
    grid = threshold_grid(0.05)
    assert len(grid) == 21 and grid[0] == 0.0 and grid[-1] == 1.0
    assert np.allclose(np.diff(grid), 0.05)


def test_table_counts_and_ratios():
    table = threshold_table(LABELS, PROBS, [0.0, 0.5, 0.65, 1.0])
    assert list(table.columns) == ["threshold", "precision", "recall", "f1", "tp", "fp", "tn", "fn"]
    row = table.set_index("threshold").loc[0.5]
    # prob >= 0.5: 0.9, 0.7 (clear) and 0.6 (cloudy)
    assert (row.tp, row.fp, row.tn, row.fn) == (2, 1, 2, 1)
    assert row.precision == pytest.approx(2 / 3) and row.recall == pytest.approx(2 / 3)
    assert table.set_index("threshold").loc[0.0, "tp"] == 3  # >= includes everything at 0
    top = table.set_index("threshold").loc[1.0]
    assert top.tp == 0 and math.isnan(top.precision)  # undefined, not invented


def test_operating_point_highest_recall_at_min_precision():
    table = threshold_table(LABELS, PROBS, threshold_grid(0.05))
    op = choose_operating_point(table, min_precision=0.95)
    # precision 1.0 holds from 0.65 up to 0.70 (recall 2/3); ties go to the higher threshold
    assert op.threshold == pytest.approx(0.70) and op.recall == pytest.approx(2 / 3) and op.met
    op = choose_operating_point(table, min_precision=0.6)
    assert op.recall == 1.0 and op.threshold == pytest.approx(0.40)


def test_operating_point_fixed_threshold_off_grid():
    table = threshold_table(LABELS, PROBS)
    op = choose_operating_point(table, LABELS, PROBS, threshold=0.55)
    assert op.threshold == 0.55 and (op.tp, op.fp) == (2, 1)
    assert "fixed threshold" in op.rule


def test_operating_point_unreachable_precision_is_flagged():
    labels = np.array(["clear", "cloudy"])
    table = threshold_table(labels, [0.5, 0.5])
    op = choose_operating_point(table, min_precision=0.95)
    assert not op.met and "no threshold reaches precision >= 0.95" in op.rule


# --- pooling over hand-made fold folders ---------------------------------------------------

def _fake_experiment(root, fingerprints=("a", "a"), weights="last"):
    splits = pd.DataFrame({"image_filename": [f"i{i}.png" for i in range(6)],
                           "label": list(LABELS), "group": ["g0", "g0", "g1", "g1", "g2", "g3"],
                           "fold": [0, 0, 1, 1, 0, 1]})
    write_csv(root / "splits.csv", splits)
    for k, fp in enumerate(fingerprints):
        part = splits[splits["fold"] == k].copy()
        part["prob_clear"] = PROBS[part.index]
        write_csv(root / f"fold_{k}" / "oof_predictions.csv", part)
        write_json(root / f"fold_{k}" / "run_info.json",
                   {"fingerprint": fp, "oof_weights": weights,
                    "settings": {"model": {"backbone": f"net_{fp}"}, "seed": 1}})
    return splits


def test_pool_folds_writes_decision_files_and_recount(tmp_path):
    _fake_experiment(tmp_path)
    result = pool_folds(tmp_path, min_precision=0.95)
    oof = pd.read_csv(tmp_path / "oof_predictions.csv")
    assert sorted(oof["image_filename"]) == [f"i{i}.png" for i in range(6)]
    table = pd.read_csv(tmp_path / "threshold_table.csv")
    for _, row in table.iterrows():
        pred = oof["prob_clear"] >= row.threshold
        assert row.tp == int((pred & (oof["label"] == "clear")).sum())
        assert row.fp == int((pred & (oof["label"] == "cloudy")).sum())
    point = json.loads((tmp_path / "operating_point.json").read_text())
    assert point["threshold"] == pytest.approx(result.operating_point.threshold)
    assert point["optimistic"] is False
    assert (tmp_path / "pr_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_pool_refuses_mixed_configurations(tmp_path):
    _fake_experiment(tmp_path, fingerprints=("a", "b"))
    with pytest.raises(PoolingError, match="different configurations.*model.backbone.*name="):
        pool_folds(tmp_path)


def test_pool_refuses_missing_fold(tmp_path):
    _fake_experiment(tmp_path)
    (tmp_path / "fold_1" / "oof_predictions.csv").unlink()
    with pytest.raises(PoolingError, match="fold\\(s\\) 1 of 2 have no out-of-fold"):
        pool_folds(tmp_path)


def test_best_epoch_outputs_say_optimistic(tmp_path):
    _fake_experiment(tmp_path, weights="best")
    result = pool_folds(tmp_path)
    assert result.report().startswith("OPTIMISTIC")
    assert json.loads((tmp_path / "operating_point.json").read_text())["optimistic"] is True
    assert pd.read_csv(tmp_path / "threshold_table.csv")["optimistic"].all()
