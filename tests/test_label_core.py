"""The pure labelling core: a frame against its own station-night's intervals."""

import math
from datetime import datetime, timezone
from pathlib import PurePath

import pytest

from data_prep.nights.label_rules import (
    CLEAR,
    CLOUDY,
    classify_time,
    format_balance,
    interval_file_key,
    label_balance,
    label_images,
)
from gmn_base.formats import ImageName, parse_image_name

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


@pytest.mark.parametrize("name, key", [
    ("CAWEC2_20251106_230105_018000_detected_flux_time_intervals.json", ("CAWEC2", 6)),
    ("flux_time_intervals_CAWEC2_20251107_010105_018000_detected.json", ("CAWEC2", 6)),
    ("CAWEC2_20251106_230105_018000_detected/flux_time_intervals.json", ("CAWEC2", 6)),
    ("all_cloudy_time_intervals/US0001_20251107_180000_000000_detected.json", ("US0001", 7)),
])
def test_interval_file_key_finds_the_detected_folder_anywhere(name, key):
    station, night = interval_file_key(PurePath(name))
    assert (station, night.day) == key


def test_interval_file_key_none_without_detected_name():
    assert interval_file_key("good_weather_dates.json") is None


def test_two_stations_same_night_each_use_their_own_intervals():
    night = t(12, 0).date()
    intervals = {("CAWEC2", night): ((t(22, 0), t(23, 0)),),
                 ("US0001", night): ((t(23, 30), t(23, 59)),)}
    images = [(n, parse_image_name(n)) for n in (
        "CAWEC2_20251106_223000_000.png", "US0001_20251106_223000_000.png",
        "CAWEC2_20251106_234500_000.png", "US0001_20251106_234500_000.png")]
    rows, left_out = label_images(images, intervals)
    assert {r.image_filename: r.label for r in rows} == {
        "CAWEC2_20251106_223000_000.png": CLEAR, "US0001_20251106_223000_000.png": CLOUDY,
        "CAWEC2_20251106_234500_000.png": CLOUDY, "US0001_20251106_234500_000.png": CLEAR}
    assert left_out == []


def test_after_midnight_uses_previous_dates_night_and_missing_night_is_left_out():
    n6 = t(12, 0).date()
    intervals = {("CAWEC2", n6): ((t(23, 0), t(1, 0, day=7)),)}
    names = ["CAWEC2_20251107_003000_500.png",   # night of the 6th: clear
             "CAWEC2_20251107_203000_000.png"]   # night of the 7th: no file
    rows, left_out = label_images([(n, parse_image_name(n)) for n in names], intervals)
    assert [(r.image_filename, r.label, r.night) for r in rows] == [
        ("CAWEC2_20251107_003000_500.png", CLEAR, "20251106")]
    assert rows[0].timestamp == "2025-11-07T00:30:00.500+00:00"
    assert len(left_out) == 1 and left_out[0].images == ("CAWEC2_20251107_203000_000.png",)
    assert "CAWEC2" in left_out[0].reason and "20251107" in left_out[0].reason


def test_reference_names_without_station_need_default_station():
    night = t(12, 0).date()
    intervals = {("CAWEC2", night): ((t(22, 0), t(23, 0)),)}
    image = ("20251106_223000_000.png", ImageName(None, t(22, 30)))
    rows, left_out = label_images([image], intervals)
    assert rows == [] and "label.station" in left_out[0].reason
    rows, left_out = label_images([image], intervals, default_station="CAWEC2")
    assert [(r.label, r.station) for r in rows] == [(CLEAR, "CAWEC2")] and left_out == []


def test_label_balance_per_station():
    night = t(12, 0).date()
    intervals = {("CAWEC2", night): ((t(22, 0), t(23, 0)),), ("US0001", night): ()}
    names = ["CAWEC2_20251106_223000_000.png", "CAWEC2_20251106_233000_000.png",
             "US0001_20251106_223000_000.png"]
    rows, _ = label_images([(n, parse_image_name(n)) for n in names], intervals)
    balance = label_balance(rows)
    assert balance["CAWEC2"] == {CLEAR: 1, CLOUDY: 1} and balance["US0001"] == {CLOUDY: 1}
    table = format_balance(balance)
    assert "CAWEC2" in table and "50.0" in table and "all" in table
