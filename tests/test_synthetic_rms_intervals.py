"""RMS's clear-sky interval rule (data_prep.rms_intervals), on hand-made star-fraction curves."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from data_prep.rms_intervals import CloudRule, clear_intervals, in_intervals

T0 = datetime(2025, 11, 14, 23, 1, 5, 18000, tzinfo=timezone.utc)


def curve(*spells: tuple[float, float | None]) -> tuple[list[datetime], list[float]]:
    """One sample a minute; each spell is (minutes, fraction), fraction None = no data (a gap)."""
    times, fractions, minute = [], [], 0
    for minutes, fraction in spells:
        for _ in range(int(minutes)):
            if fraction is not None:
                times.append(T0 + timedelta(minutes=minute))
                fractions.append(fraction)
            minute += 1
    return times, fractions


def minutes(interval: tuple[datetime, datetime]) -> tuple[float, float]:
    return tuple((t - T0).total_seconds() / 60 for t in interval)


def test_a_clear_night_is_one_interval_from_first_to_last_image():
    times, fractions = curve((180, 0.9))
    assert clear_intervals(times, fractions) == [(times[0], times[-1])]


def test_an_interval_closes_when_the_fraction_drops_and_short_ones_are_dropped():
    times, fractions = curve((80, 0.9), (30, 0.1), (50, 0.8), (30, 0.2), (70, 0.9))
    # 80 min: kept; 50 min: too short; last 70 min still open at the end: needs > 90 min.
    assert [minutes(i) for i in clear_intervals(times, fractions)] == [(0, 79)]


def test_open_interval_at_the_end_needs_ninety_minutes():
    times, fractions = curve((30, 0.1), (95, 0.9))
    assert [minutes(i) for i in clear_intervals(times, fractions)] == [(30, 124)]
    times, fractions = curve((30, 0.1), (85, 0.9))
    assert clear_intervals(times, fractions) == []


def test_a_gap_of_more_than_fifteen_minutes_splits_an_interval():
    times, fractions = curve((120, 0.9), (20, None), (120, 0.9), (10, 0.0))
    assert [minutes(i) for i in clear_intervals(times, fractions)] == [(0, 119), (140, 259)]
    times, fractions = curve((120, 0.9), (10, None), (120, 0.9), (10, 0.0))
    assert [minutes(i) for i in clear_intervals(times, fractions)] == [(0, 249)]


def test_five_minute_bins_average_out_single_bad_images():
    fractions = [0.9] * 150
    fractions[42] = 0.0     # one bad image in a bin of five: mean 0.72, still clear
    times, _ = curve((150, 0.9))
    assert [minutes(i) for i in clear_intervals(times, fractions)] == [(0, 149)]


def test_threshold_half_is_clear():
    times, fractions = curve((100, 0.5), (10, 0.0))
    assert len(clear_intervals(times, fractions)) == 1
    times, fractions = curve((100, 0.49), (10, 0.0))
    assert clear_intervals(times, fractions) == []


def test_custom_rule_and_edge_cases():
    times, fractions = curve((40, 0.9), (10, 0.0))
    assert clear_intervals(times, fractions, CloudRule(min_duration_s=30 * 60)) != []
    assert clear_intervals([], []) == []
    with pytest.raises(ValueError, match="2 times but 1 fractions"):
        clear_intervals(times[:2], fractions[:1])


def test_in_intervals_includes_both_ends():
    start, end = T0, T0 + timedelta(hours=1)
    assert in_intervals(start, [(start, end)]) and in_intervals(end, [(start, end)])
    assert not in_intervals(end + timedelta(milliseconds=1), [(start, end)])
    assert not in_intervals(start, [])
