"""Pooled metrics and per-station/night breakdowns on hand-made OOF tables with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from gmn_weather.pooled_metrics import bootstrap_precision_recall, by, pooled_metrics
from gmn_weather.thresholds import choose_operating_point

# Pooled ranking: 0.9 P, 0.8 P, 0.7 N, 0.6 P, 0.4 N, 0.3 N, 0.2 N, 0.1 N.
OOF = pd.DataFrame({
    "image_filename": list("abcdefgh"),
    "label": ["clear", "clear", "cloudy", "cloudy", "clear", "cloudy", "cloudy", "cloudy"],
    "group": ["g0", "g0", "g1", "g1", "g2", "g2", "g3", "g3"],
    "fold": [0, 0, 0, 0, 1, 1, 1, 1],
    "prob_clear": [0.9, 0.8, 0.3, 0.2, 0.6, 0.7, 0.1, 0.4],
    "station": ["S1"] * 4 + ["S2"] * 4,
    "night": [20251101, 20251101, 20251102, 20251102, 20251103, 20251103, 20251104, 20251104],
})


def _fixed(threshold: float):
    return choose_operating_point(None, OOF["label"], OOF["prob_clear"], threshold=threshold)


def test_pooled_figures_match_hand_computed_values():
    m = pooled_metrics(OOF, _fixed(0.5), grouping="station-night", min_precision=0.95)
    assert (m.n_images, m.n_clear, m.n_groups, m.n_folds) == (8, 3, 4, 2)
    assert m.grouping == "station-night"
    assert m.ap == pytest.approx((1 + 1 + 3 / 4) / 3)  # precision at each clear image
    assert m.auroc == pytest.approx(14 / 15)  # 0.6 ranks below the cloudy 0.7 only
    # Rule with support min(10, ceil(3 / 2)) = 2: precision 1.0 first holds at 0.8.
    assert m.recall_at_min_precision == pytest.approx(2 / 3)
    assert (m.threshold, m.tp, m.fp, m.tn, m.fn) == (0.5, 3, 1, 4, 0)
    assert (m.precision, m.recall) == (0.75, 1.0)


def test_per_fold_metrics_and_spread():
    m = pooled_metrics(OOF, _fixed(0.5), grouping="station-night")
    assert [(f.fold, f.n_images, f.n_clear) for f in m.folds] == [(0, 4, 2), (1, 4, 1)]
    assert [f.ap for f in m.folds] == [1.0, 0.5]
    assert m.folds[1].auroc == pytest.approx(2 / 3)
    assert m.fold_ap.mean == 0.75 and m.fold_ap.std == pytest.approx(math.sqrt(2 * 0.25**2))
    assert (m.fold_ap.min, m.fold_ap.max, m.fold_ap.n_defined) == (0.5, 1.0, 2)


def test_single_class_fold_is_null_not_a_number_and_dict_is_json_ready():
    oof = OOF.copy()
    oof.loc[oof["fold"] == 1, "label"] = "cloudy"  # fold 1 holds no clear image
    m = pooled_metrics(oof, _fixed(0.5), grouping="station-night")
    d = m.to_dict()
    json.dumps(d, allow_nan=False)  # raises on any NaN left in
    assert d["folds"][1]["ap"] is None and d["folds"][1]["auroc"] is None
    assert d["fold_ap"] == {"mean": 1.0, "std": None, "min": 1.0, "max": 1.0, "n_defined": 1}
    assert d["precision_ci"].keys() == {"low", "high"}


def test_group_bootstrap_interval_on_a_known_table():
    m = pooled_metrics(OOF, _fixed(0.5), grouping="station-night")
    # Precision per resample is (2a + b) / (2a + 2b) for a draws of g0 and b of g2: at least
    # a quarter of the resamples give 0.5 (a = 0) and as many 1.0 (b = 0).
    assert (m.precision_ci.low, m.precision_ci.high) == (0.5, 1.0)
    assert (m.recall_ci.low, m.recall_ci.high) == (1.0, 1.0)  # no clear image is missed
    assert m.bootstrap_resamples == 2000 and m.confidence == 0.95
    again = pooled_metrics(OOF, _fixed(0.5), grouping="station-night")
    assert again.precision_ci == m.precision_ci  # seeded


def test_bootstrap_draws_groups_not_images():
    # Copying every frame five times inside its group adds no information: same interval.
    copies = pd.concat([OOF.assign(image_filename=OOF["image_filename"] + str(i))
                        for i in range(5)], ignore_index=True)
    once = pooled_metrics(OOF, _fixed(0.5), grouping="station-night")
    five = pooled_metrics(copies, _fixed(0.5), grouping="station-night")
    assert five.precision_ci == once.precision_ci and five.n_groups == 4


def test_bootstrap_matches_the_binomial_interval_for_independent_images():
    # 1000 predicted-clear images, each its own group, 800 truly clear: precision 0.8 with a
    # standard error of sqrt(0.8 * 0.2 / 1000).
    n = 1000
    tp = np.arange(n) < 800
    precision, recall = bootstrap_precision_recall(np.arange(n), tp, ~tp, np.zeros(n, bool))
    half_width = 1.96 * math.sqrt(0.8 * 0.2 / n)
    assert precision.low == pytest.approx(0.8 - half_width, abs=0.005)
    assert precision.high == pytest.approx(0.8 + half_width, abs=0.005)
    assert (recall.low, recall.high) == (1.0, 1.0)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="lacks column\\(s\\) group"):
        pooled_metrics(OOF.drop(columns="group"), _fixed(0.5), grouping="station-night")
    with pytest.raises(ValueError, match="lacks column\\(s\\) edge_bin"):
        by(OOF, "edge_bin", 0.5)


def test_breakdown_per_station_and_night():
    stations = by(OOF, "station", 0.5)
    assert stations.column == "station" and stations.threshold == 0.5
    s1, s2 = stations.rows
    assert (s1.value, s1.n_images, s1.n_clear, s1.clear_share, s1.ap) == ("S1", 4, 2, 0.5, 1.0)
    assert (s1.precision, s1.recall, s1.tp, s1.fp, s1.fn) == (1.0, 1.0, 2, 0, 0)
    assert (s2.value, s2.n_clear, s2.ap) == ("S2", 1, 0.5)
    assert (s2.precision, s2.recall, s2.tp, s2.fp, s2.fn) == (0.5, 1.0, 1, 1, 0)

    nights = by(OOF, "night", 0.5).to_dict()
    json.dumps(nights, allow_nan=False)
    cloudy_night = nights["rows"][1]
    assert cloudy_night["value"] == "20251102" and cloudy_night["n_clear"] == 0
    # one class only and nothing predicted clear: AP, precision, recall undefined
    assert cloudy_night["ap"] is None and cloudy_night["precision"] is None
    assert cloudy_night["recall"] is None and cloudy_night["fn"] == 0

    frame = by(OOF, "station", 0.5).to_frame()
    assert list(frame["station"]) == ["S1", "S2"] and list(frame["tp"]) == [2, 1]
