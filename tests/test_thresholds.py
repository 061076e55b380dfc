"""Threshold table and operating-point rule (pure; pooling is tested in test_pooling.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
