"""Daytime score: predicted image names mapped back to truth.csv rows, metrics recounted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gmn_demo import daytime_score as ds

REPO = Path(__file__).resolve().parents[1]


def _truth() -> pd.DataFrame:
    return pd.DataFrame({
        "station": ["CAWEC2", "CAWEC2", "CAWEC2", "US0001", "US0001"],
        "timestamp": ["2025-11-07T14:00:00.012000+00:00", "2025-11-07T14:00:05.020000+00:00",
                      "2025-11-07T14:00:10.031000+00:00", "2025-11-07T14:00:00.012000+00:00",
                      "2025-11-07T14:00:05.999000+00:00"],
        "label": ["", "", "", "", ""],
        "physical_label": ["clear", "cloudy", "clear", "cloudy", "cloudy"],
    })


def _predictions(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["filename", "prediction", "confidence", "prob_clear"])


def test_names_map_to_their_own_station_and_instant():
    predictions = _predictions([
        ("day/CAWEC2_20251107_140000_012.png", "clear", 0.9, 0.9),    # tp
        ("day/CAWEC2_20251107_140005_020.png", "clear", 0.6, 0.6),    # fp
        ("day/CAWEC2_20251107_140010_031.png", "cloudy", 0.7, 0.3),   # fn
        ("day/US0001_20251107_140000_012.png", "cloudy", 0.9, 0.1),   # tn (same instant, other station)
        ("day/US0001_20251107_140005_999.png", "cloudy", 0.8, 0.2),   # tn
        ("day/US0001_20251107_150000_000.png", "clear", 0.9, 0.9),    # no truth row
        ("day/US0001_20251107_140010_000.png", "error", None, None),  # unreadable
    ])
    matched, unmatched, unscored = ds.match_truth(predictions, _truth())
    assert list(matched.truth) == ["clear", "cloudy", "clear", "cloudy", "cloudy"]
    assert (unmatched, unscored) == (1, 1)

    result = ds.score(matched, unmatched, unscored)
    assert (result.tp, result.fp, result.tn, result.fn) == (1, 1, 2, 1)
    assert result.precision == pytest.approx(0.5)
    assert result.recall == pytest.approx(0.5)
    # prob_clear ranks: clear {0.9, 0.3}, cloudy {0.6, 0.1, 0.2}: 5 of 6 pairs ordered right
    assert result.auroc == pytest.approx(5 / 6)
    assert "precision 0.500" in result.line() and "1 without truth, 1 unreadable" in result.line()


def test_one_class_truth_gives_no_auroc_and_bad_names_are_named():
    predictions = _predictions([("CAWEC2_20251107_140005_020.png", "cloudy", 0.9, 0.1)])
    result = ds.score(*ds.match_truth(predictions, _truth()))
    assert result.auroc is None and result.precision is None and result.recall is None
    with pytest.raises(ds.DaytimeScoreError, match="not_a_frame.png"):
        ds.match_truth(_predictions([("not_a_frame.png", "clear", 0.9, 0.9)]), _truth())
    with pytest.raises(ds.DaytimeScoreError, match="physical_label"):
        ds.match_truth(predictions, _truth().drop(columns=["physical_label"]))


def test_command_line_prints_the_score(tmp_path):
    _truth().to_csv(tmp_path / "truth.csv", index=False)
    _predictions([("CAWEC2_20251107_140000_012.png", "clear", 0.9, 0.9),
                  ("CAWEC2_20251107_140005_020.png", "cloudy", 0.8, 0.2)]).to_csv(
        tmp_path / "p.csv", index=False)
    out = subprocess.run(
        [sys.executable, "-m", "gmn_demo.daytime_score", f"predictions={tmp_path / 'p.csv'}",
         f"truth={tmp_path / 'truth.csv'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert "precision 1.000, recall 1.000, AUROC 1.000" in out.stdout
    assert not list(tmp_path.glob("outputs"))


def test_line_says_when_nothing_was_predicted_clear():
    predictions = _predictions([("CAWEC2_20251107_140000_012.png", "cloudy", 0.6, 0.4),
                                ("CAWEC2_20251107_140005_020.png", "cloudy", 0.9, 0.1)])
    result = ds.score(*ds.match_truth(predictions, _truth()))
    assert result.auroc == pytest.approx(1.0)
    assert "precision n/a, recall 0.000" in result.line()
    assert "nothing predicted clear at the model's threshold" in result.line()
