"""The operating point on the exact precision-recall curve: support, saturation, tie-break."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from gmn_weather.thresholds import (
    choose_operating_point,
    confusion_at,
    exact_curve,
    required_predicted_clear,
    threshold_grid,
    threshold_table,
)


def _labels(is_clear) -> np.ndarray:
    return np.where(np.asarray(is_clear), "clear", "cloudy")


def test_perfectly_separating_scores_give_recall_1_at_precision_1():
    rng = np.random.default_rng(3)
    clear = rng.uniform(0.52, 0.99, 40)
    cloudy = rng.uniform(0.01, 0.51, 60)
    labels = _labels([True] * 40 + [False] * 60)
    scores = np.concatenate([clear, cloudy])
    op = choose_operating_point(threshold_table(labels, scores), labels, scores, 0.95)
    assert op.met and op.precision == 1.0 and op.recall == 1.0
    assert op.threshold == pytest.approx(clear.min())
    assert (op.tp, op.fp, op.fn) == (40, 0, 0)


# The run the grid failed: pooled AP 1.000, yet the 0.05 grid's best point with precision
# >= 0.95 sits at recall 1/3 (0.45 admits the cloudy 0.46, 0.50 drops the clear 0.49, 0.495).
ISSUE_LABELS = _labels([True] * 3 + [False] * 5)
ISSUE_SCORES = np.array([0.49, 0.495, 0.97, 0.46, 0.30, 0.20, 0.10, 0.05])


def test_issue_example_grid_point_reproduced_and_exact_curve_fixes_it():
    assert average_precision_score(ISSUE_LABELS == "clear", ISSUE_SCORES) == 1.0
    grid_table = threshold_table(ISSUE_LABELS, ISSUE_SCORES, threshold_grid(0.05))
    on_grid = choose_operating_point(grid_table, min_precision=0.95, min_predicted_clear=1)
    # recall 1/3 at precision 1.0 from 0.50 to 0.95; the tie-break takes the top
    assert on_grid.threshold == pytest.approx(0.95) and on_grid.recall == pytest.approx(1 / 3)

    exact = choose_operating_point(grid_table, ISSUE_LABELS, ISSUE_SCORES, 0.95)
    assert exact.threshold == pytest.approx(0.49)
    assert (exact.recall, exact.precision, exact.met) == (1.0, 1.0, True)
    assert "exact precision-recall curve" in exact.rule


def test_exact_curve_has_a_row_per_distinct_score_with_recounted_confusion():
    rng = np.random.default_rng(0)
    scores = np.round(rng.uniform(0, 1, 200), 2)  # many ties
    labels = _labels(rng.uniform(0, 1, 200) < scores)
    curve = exact_curve(labels, scores)
    assert list(curve["threshold"]) == sorted(set(scores))
    is_clear = labels == "clear"
    for row in curve.itertuples():
        recount = confusion_at(is_clear, scores, row.threshold)
        assert (row.tp, row.fp, row.tn, row.fn) == tuple(recount[k] for k in ("tp", "fp", "tn", "fn"))
        assert row.precision == pytest.approx(recount["precision"])
        assert row.f1 == pytest.approx(recount["f1"])


def test_support_cap_on_small_sets():
    assert required_predicted_clear(10, 500) == 10
    assert required_predicted_clear(10, 7) == 4  # half the clear images, rounded up
    assert required_predicted_clear(0, 50) == 1
    with pytest.raises(ValueError, match=r"analyze.min_predicted_clear=-1: expected a whole"):
        required_predicted_clear(-1, 50)


def test_minimum_support_refuses_a_point_resting_on_a_few_images():
    # Three confident clear images, then clear and cloudy alternate: precision 1.0 exists only
    # on those three.
    rest = np.linspace(0.8, 0.1, 40)
    scores = np.concatenate([[0.99, 0.98, 0.97], rest])
    labels = _labels([True] * 3 + [i % 2 == 1 for i in range(40)])
    few = choose_operating_point(None, labels, scores, 0.95, min_predicted_clear=1)
    assert few.met and few.tp + few.fp == 3 and few.threshold == pytest.approx(0.97)

    supported = choose_operating_point(None, labels, scores, 0.95, min_predicted_clear=10)
    assert supported.min_predicted_clear == 10
    assert supported.tp + supported.fp >= 10
    assert not supported.met and "no threshold reaches precision >= 0.95 with at least 10" \
        in supported.rule
    assert supported.to_dict()["min_predicted_clear"] == 10


def test_saturated_scores_never_give_a_threshold_of_one():
    # Every clear image saturated at exactly 1.0: under prob >= t any t in (0.3, 1.0]
    # separates; the point moves below 1.0 and still predicts every saturated image clear.
    scores = np.array([1.0] * 12 + [0.3, 0.2, 0.2, 0.1])
    labels = _labels([True] * 12 + [False] * 4)
    op = choose_operating_point(None, labels, scores, 0.95)
    assert 0.3 < op.threshold < 1.0 and op.threshold == pytest.approx(0.65)
    assert (op.tp, op.fp, op.recall, op.precision) == (12, 0, 1.0, 1.0)

    # The table alone (no scores): its 1.0 row is never a candidate.
    table = threshold_table(labels, scores, [0.0, 0.5, 1.0])
    op = choose_operating_point(table, min_precision=0.95)
    assert op.threshold == 0.5

    with pytest.raises(ValueError, match="saturated at 1.0"):
        choose_operating_point(None, labels, np.ones(16), 0.95)


def test_tie_break_takes_the_most_precise_highest_threshold_of_equal_recall():
    # Recall 2/3 holds at 0.8, 0.7 and 0.6 (only cloudy images join below 0.8).
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.05])
    labels = _labels([True, True, False, False, False, True])
    op = choose_operating_point(None, labels, scores, 0.6, min_predicted_clear=1)
    assert op.threshold == pytest.approx(0.8) and op.precision == 1.0
    assert op.recall == pytest.approx(2 / 3)


def test_recall_at_min_precision_prefers_more_recall_over_precision():
    op = choose_operating_point(None, ISSUE_LABELS, ISSUE_SCORES, 0.7, min_predicted_clear=1)
    assert op.threshold == pytest.approx(0.49) and op.recall == 1.0  # 0.46 is less precise


@pytest.mark.parametrize("value", [1.5, -0.1, "high"])
def test_fixed_threshold_outside_0_1_names_the_key(value):
    with pytest.raises(ValueError, match=rf"^analyze.threshold={value!r}: expected a number "
                                         r"in \[0, 1\]$"):
        choose_operating_point(None, ISSUE_LABELS, ISSUE_SCORES, threshold=value)


def test_fixed_threshold_at_the_ends_and_min_precision_checked():
    op = choose_operating_point(None, ISSUE_LABELS, ISSUE_SCORES, threshold=1)
    assert op.threshold == 1.0 and op.tp + op.fp == 0 and op.rule.startswith("fixed threshold")
    op = choose_operating_point(None, ISSUE_LABELS, ISSUE_SCORES, threshold=0.0)
    assert op.tp + op.fp == len(ISSUE_SCORES)
    with pytest.raises(ValueError, match=r"analyze.min_precision=1.2: expected a number"):
        choose_operating_point(None, ISSUE_LABELS, ISSUE_SCORES, min_precision=1.2)


def test_scores_outside_0_1_and_no_clear_image_are_refused():
    with pytest.raises(ValueError, match="prob_clear must lie in \\[0, 1\\]"):
        exact_curve(ISSUE_LABELS, ISSUE_SCORES + 0.5)
    with pytest.raises(ValueError, match="no image is labelled clear"):
        choose_operating_point(None, _labels([False] * 3), [0.1, 0.2, 0.3])


def test_operating_point_dict_is_json_ready():
    table = threshold_table(ISSUE_LABELS, ISSUE_SCORES)
    point = choose_operating_point(table, ISSUE_LABELS, ISSUE_SCORES, 0.95).to_dict()
    assert pd.Series(point).map(lambda v: isinstance(v, float) and np.isnan(v)).sum() == 0
    assert point["threshold"] == pytest.approx(0.49) and point["min_predicted_clear"] == 2
