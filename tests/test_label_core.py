"""The pure labelling core: a frame against its own capture session's intervals."""

import math
from datetime import datetime, timezone

import pytest

from data_prep.nights.label_rules import (
    CLEAR,
    CLOUDY,
    classify_time,
    format_balance,
    label_balance,
    label_images,
)
from gmn_base.image_names import ImageName, parse_image_name
from gmn_base.interval_files import ClearIntervals
from gmn_base.night_folders import NightFolder
from gmn_base.session_intervals import SessionIntervals
from gmn_base.sessions import CaptureSession, SessionLookup

UTC = timezone.utc


def t(h, m, s=0, ms=0, day=6):
    return datetime(2025, 11, day, h, m, s, ms * 1000, tzinfo=UTC)


INTERVALS = ((t(22, 0), t(23, 0)), (t(1, 0, day=7), t(2, 30, day=7)))


@pytest.mark.parametrize("ts, label, distance", [
    (t(22, 0), CLEAR, 0.0),                      # start instant: inclusive
    (t(23, 0), CLEAR, 0.0),                      # end instant: inclusive
    (t(22, 0, 0, 1), CLEAR, 0.001),
    (t(21, 59, 59, 999), CLOUDY, -0.001),        # a millisecond before the start
    (t(23, 0, 0, 1), CLOUDY, -0.001),            # a millisecond after the end
    (t(22, 30), CLEAR, 1800.0),
    (t(0, 0, day=7), CLOUDY, -3600.0),           # between intervals, equidistant
    (t(0, 30, day=7), CLOUDY, -1800.0),          # nearer the second interval's start
    (t(1, 10, day=7), CLEAR, 600.0),
])
def test_classify_time_boundaries_and_signed_distance(ts, label, distance):
    result = classify_time(ts, INTERVALS)
    assert result.label == label
    assert result.edge_distance_s == pytest.approx(distance, abs=1e-6)


def test_empty_interval_list_is_all_cloudy_with_no_edge():
    result = classify_time(t(23, 0), ())
    assert result.label == CLOUDY and result.edge_distance_s == -math.inf


def sessions_with(*captures):
    """One single-capture session per (station, capture start, intervals, or None for a missing
    interval file); returns the lookup and the intervals by session id."""
    sessions, files = [], {}
    for station, start, intervals in captures:
        folder = NightFolder(station, start)
        sessions.append(CaptureSession(station, (folder,)))
        found = {} if intervals is None else {folder.capture_id: ClearIntervals(station, intervals)}
        files[folder.capture_id] = SessionIntervals(sessions[-1], found)
    return SessionLookup(sessions), files


def images(*names):
    return [(n, parse_image_name(n)) for n in names]


def test_two_stations_same_night_each_use_their_own_intervals():
    lookup, intervals = sessions_with(("CAWEC2", t(21, 0), ((t(22, 0), t(23, 0)),)),
                                      ("US0001", t(21, 0), ((t(23, 30), t(23, 59)),)))
    rows, left_out = label_images(images(
        "CAWEC2_20251106_223000_000.png", "US0001_20251106_223000_000.png",
        "CAWEC2_20251106_234500_000.png", "US0001_20251106_234500_000.png"), lookup, intervals)
    assert {r.image_filename: r.label for r in rows} == {
        "CAWEC2_20251106_223000_000.png": CLEAR, "US0001_20251106_223000_000.png": CLOUDY,
        "CAWEC2_20251106_234500_000.png": CLOUDY, "US0001_20251106_234500_000.png": CLEAR}
    assert left_out == []


def test_after_midnight_belongs_to_the_session_and_frames_outside_are_left_out():
    lookup, intervals = sessions_with(("CAWEC2", t(22, 0), ((t(23, 0), t(1, 0, day=7)),)))
    names = ["CAWEC2_20251107_003000_500.png",   # the same capture: clear
             "CAWEC2_20251107_230000_000.png"]   # more than 23 h after its start: no session
    rows, left_out = label_images(images(*names), lookup, intervals)
    assert [(r.image_filename, r.label, r.night) for r in rows] == [
        ("CAWEC2_20251107_003000_500.png", CLEAR, "20251106")]
    assert rows[0].timestamp == "2025-11-07T00:30:00.500+00:00"
    assert len(left_out) == 1 and left_out[0].images == ("CAWEC2_20251107_230000_000.png",)
    assert "no capture session of station CAWEC2" in left_out[0].reason


def test_a_capture_without_interval_file_is_left_out_never_cloudy():
    lookup, intervals = sessions_with(("CAWEC2", t(22, 0), None))
    rows, left_out = label_images(images("CAWEC2_20251106_223000_000.png"), lookup, intervals)
    assert rows == [] and left_out[0].capture == "CAWEC2_20251106_220000_000000"
    assert "no interval file for capture CAWEC2_20251106_220000_000000" in left_out[0].reason


def test_reference_names_without_station_need_default_station():
    lookup, intervals = sessions_with(("CAWEC2", t(21, 0), ((t(22, 0), t(23, 0)),)))
    image = ("20251106_223000_000.png", ImageName(None, t(22, 30)))
    rows, left_out = label_images([image], lookup, intervals)
    assert rows == [] and "label.station" in left_out[0].reason
    rows, left_out = label_images([image], lookup, intervals, default_station="CAWEC2")
    assert [(r.label, r.station) for r in rows] == [(CLEAR, "CAWEC2")] and left_out == []


def test_label_balance_per_station():
    lookup, intervals = sessions_with(("CAWEC2", t(21, 0), ((t(22, 0), t(23, 0)),)),
                                      ("US0001", t(21, 0), ()))
    rows, _ = label_images(images("CAWEC2_20251106_223000_000.png",
                                  "CAWEC2_20251106_233000_000.png",
                                  "US0001_20251106_223000_000.png"), lookup, intervals)
    balance = label_balance(rows)
    assert balance["CAWEC2"] == {CLEAR: 1, CLOUDY: 1} and balance["US0001"] == {CLOUDY: 1}
    table = format_balance(balance)
    assert "CAWEC2" in table and "50.0" in table and "all" in table
