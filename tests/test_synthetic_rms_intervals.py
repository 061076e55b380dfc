"""RMS's clear-sky interval rule (data_prep.synthetic.rms_intervals): hand-made star-ratio curves, and
identical results to a transcription of RMS's own code on several hundred random nights."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta, timezone

import pytest

from data_prep.synthetic.rms_intervals import (
    CloudRule,
    clear_intervals,
    first_image_of_each_bin,
    in_intervals,
)

T0 = datetime(2025, 11, 14, 23, 1, 5, 18000, tzinfo=timezone.utc)


def curve(*spells: tuple[float, float | None]) -> tuple[list[datetime], list[float]]:
    """One image a minute; each spell is (minutes, ratio), ratio None = no images (a gap)."""
    times, ratios, minute = [], [], 0
    for minutes, ratio in spells:
        for _ in range(int(minutes)):
            if ratio is not None:
                times.append(T0 + timedelta(minutes=minute))
                ratios.append(ratio)
            minute += 1
    return times, ratios


def minutes(interval: tuple[datetime, datetime]) -> tuple[float, float]:
    return tuple((t - T0).total_seconds() / 60 for t in interval)


def test_a_clear_night_runs_from_the_first_to_the_last_measured_image():
    # One image a minute, 5-minute bins: RMS measures minutes 0, 5, ... 175.
    times, ratios = curve((180, 0.9))
    assert [minutes(i) for i in clear_intervals(times, ratios)] == [(0, 175)]


def test_an_interval_ends_at_the_last_clear_image_and_short_ones_are_dropped():
    times, ratios = curve((80, 0.9), (30, 0.1), (50, 0.8), (30, 0.2), (70, 0.9))
    # 0-75: kept; 110-155 (45 min): too short; 190-255 still open at the end: needs > 90 min.
    assert [minutes(i) for i in clear_intervals(times, ratios)] == [(0, 75)]


def test_an_interval_open_at_the_end_needs_more_than_ninety_minutes():
    times, ratios = curve((30, 0.1), (100, 0.9))
    assert [minutes(i) for i in clear_intervals(times, ratios)] == [(30, 125)]
    times, ratios = curve((30, 0.1), (95, 0.9))   # measured 30-120: exactly 90, not more
    assert clear_intervals(times, ratios) == []


def test_a_gap_of_more_than_fifteen_minutes_splits_an_interval():
    times, ratios = curve((120, 0.9), (20, None), (120, 0.9), (10, 0.0))
    assert [minutes(i) for i in clear_intervals(times, ratios)] == [(0, 115), (140, 255)]
    times, ratios = curve((120, 0.9), (10, None), (120, 0.9), (10, 0.0))   # 115 -> 130: 15 min
    assert [minutes(i) for i in clear_intervals(times, ratios)] == [(0, 245)]


def test_only_the_first_image_of_each_bin_counts():
    times, ratios = curve((150, 0.9))
    ratios[42] = 0.0    # second image of the 40-44 bin: never looked at
    assert [minutes(i) for i in clear_intervals(times, ratios)] == [(0, 145)]
    ratios[40] = 0.0    # first image of that bin: the sky counts as cloudy there
    assert [minutes(i) for i in clear_intervals(times, ratios)] == [(45, 145)]


def test_an_unmeasured_first_image_leaves_its_bin_empty():
    times, ratios = curve((150, 0.9))
    ratios[40] = None   # Moon in view: the bin's next image does not stand in
    samples = first_image_of_each_bin(times, ratios)
    assert [minutes((s.time, s.time))[0] for s in samples][7:9] == [35, 45]
    assert [minutes(i) for i in clear_intervals(times, ratios)] == [(0, 145)]


def test_threshold_half_is_clear():
    times, ratios = curve((100, 0.5), (10, 0.0))
    assert [minutes(i) for i in clear_intervals(times, ratios)] == [(0, 95)]
    times, ratios = curve((100, 0.49), (10, 0.0))
    assert clear_intervals(times, ratios) == []


def test_custom_rule_and_bad_input():
    times, ratios = curve((40, 0.9), (10, 0.0))
    assert clear_intervals(times, ratios) == []
    assert [minutes(i) for i in clear_intervals(times, ratios, CloudRule(min_minutes=30))] == [(0, 35)]
    assert clear_intervals([], []) == []
    with pytest.raises(ValueError, match="2 times but 1 fractions"):
        clear_intervals(times[:2], ratios[:1])
    with pytest.raises(ValueError, match="image 1 is NaN: give None"):
        clear_intervals(times[:2], [0.9, float("nan")])


def test_in_intervals_includes_both_ends():
    start, end = T0, T0 + timedelta(hours=1)
    assert in_intervals(start, [(start, end)]) and in_intervals(end, [(start, end)])
    assert not in_intervals(end + timedelta(milliseconds=1), [(start, end)])
    assert not in_intervals(start, [])


# --- RMS's own rule, transcribed ---------------------------------------------------------
# Transcribed (not imported) from CroatianMeteorNetwork/RMS, Utils/Flux.py at commit
# 567f2f3ef5e087494acc80c499aa043f44d100f5 (the same code at 0051d3d2bc63a41a65551bbdf6aa60cbc7a63afb):
#  - detectClouds(): the loop under "# Get FF file every N minutes" (the issue cites it as
#    lines 1198-1211): walk the CALSTARS FF names in order, bin = int(minutes since the
#    first // N), keep a name when its bin is above the last bin kept;
#  - the ratio dict is built over the recalibrated files only, so an FF file RMS could not
#    measure (detectMoon, failed recalibration) is simply absent;
#  - computeClearSkyTimeIntervals(ratio, 0.5, time_gap_threshold=15, clearing_threshold=90).


def _ff_name(station: str, ts: datetime, frame: int) -> str:
    return (f"FF_{station}_{ts.year:04d}{ts.month:02d}{ts.day:02d}_{ts.hour:02d}{ts.minute:02d}"
            f"{ts.second:02d}_{ts.microsecond // 1000:03d}_{frame:07d}.fits")


def _ff_time(name: str) -> datetime:
    """What RMS.Formats.FFfile.filenameToDatetime gives for an FF_ST_date_time_ms_frame name."""
    _, _, day, clock, ms, _ = name.split("_")
    return datetime(int(day[:4]), int(day[4:6]), int(day[6:]), int(clock[:2]), int(clock[2:4]),
                    int(clock[4:]), int(ms) * 1000)


def rms_time_intervals(ff_names: list[str], measured: dict[str, float], n_minutes=5,
                       ratio_threshold=0.5, time_gap_threshold=15, clearing_threshold=90):
    first_time, used_bin, picked = None, -1, []
    for name in ff_names:
        when = _ff_time(name)
        if first_time is None:
            first_time = when
        bin_number = int(((when - first_time).total_seconds() / 60) // n_minutes)
        if bin_number > used_bin:
            picked.append(name)
            used_bin = bin_number
    ratio = {name: measured[name] for name in picked if name in measured}

    intervals, begin, last = [], None, None
    for name, value in ratio.items():
        when = _ff_time(name)
        if last is None:
            last = when
        if begin is None and value >= ratio_threshold:
            begin = when
        if (when - last).total_seconds() / 60 > time_gap_threshold or value < ratio_threshold:
            if begin is not None and (last - begin).total_seconds() / 60 > 60:
                intervals.append((begin, last))
            begin = None if value < ratio_threshold else when
        last = when
    if begin is not None and (last - begin).total_seconds() / 60 > clearing_threshold:
        intervals.append((begin, last))
    return intervals


def random_night(rng: random.Random) -> tuple[list[datetime], list[float | None]]:
    """Per-image times and ratios of one night: spells of clear and cloudy sky of any length,
    ratios near the threshold, data gaps, unmeasured images, an end in any state."""
    start = datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(
        days=rng.randrange(365), seconds=rng.uniform(0, 86400))
    start = start.replace(microsecond=start.microsecond // 1000 * 1000)
    cadence = rng.choice([10.24, 25.6, 60.0, 97.0])   # s between FF files
    length_s = rng.uniform(0.5, 12) * 3600
    times, ratios, t = [], [], 0.0
    clear, spell_end = rng.random() < 0.5, 0.0
    while t < length_s:
        if t >= spell_end:
            clear = not clear
            spell_end = t + 60 * rng.choice([rng.uniform(1, 20), rng.uniform(20, 80), rng.uniform(50, 240)])
        if rng.random() < 0.006:   # the camera stopped for a while: a gap in the data
            t += 60 * rng.uniform(3, 40)
            continue
        ts = start + timedelta(seconds=t + rng.uniform(-0.3, 0.3))
        times.append(ts.replace(microsecond=ts.microsecond // 1000 * 1000))
        if rng.random() < 0.03:
            ratios.append(None)
        elif rng.random() < 0.02:
            ratios.append(0.5)
        else:
            ratios.append(rng.uniform(0.5, 1.6) if clear else rng.uniform(0.0, 0.55))
        t += cadence
    return times, ratios


def _first_of_each_bin(times: list[datetime]) -> set[datetime]:
    """Which images open a 5-minute bin, measured or not (times in order)."""
    first, opened, last_bin = times[0], set(), -1
    for t in times:
        if int((t - first).total_seconds() / 60 // 5) > last_bin:
            last_bin = int((t - first).total_seconds() / 60 // 5)
            opened.add(t)
    return opened


def test_the_rule_matches_rms_on_several_hundred_random_nights():
    rng = random.Random(20251107)
    seen = {"several intervals": 0, "none kept": 0, "kept open at the end": 0,
            "unmeasured first image": 0, "gap split": 0}
    for night in range(300):
        times, ratios = random_night(rng)
        names = [_ff_name("HR000A", t, 256 * i) for i, t in enumerate(times)]
        measured = {n: r for n, r in zip(names, ratios) if r is not None}
        expected = [(s.replace(tzinfo=timezone.utc), e.replace(tzinfo=timezone.utc))
                    for s, e in rms_time_intervals(names, measured)]
        got = clear_intervals(times, ratios)
        assert got == expected, f"night {night}: {got} != RMS {expected}"
        opened = _first_of_each_bin(times)
        last_measured = max(t for t, r in zip(times, ratios) if t in opened and r is not None)
        seen["several intervals"] += len(got) > 1
        seen["none kept"] += not got
        seen["kept open at the end"] += bool(got) and got[-1][1] == last_measured
        seen["unmeasured first image"] += any(r is None and t in opened for t, r in zip(times, ratios))
        cloudy = [t for t, r in zip(times, ratios) if t in opened and r is not None and r < 0.5]
        seen["gap split"] += any(not any(a[1] < t < b[0] for t in cloudy) for a, b in itertools.pairwise(got))
    # The random nights reach every branch of the rule, not only the easy ones.
    assert all(count >= 10 for count in seen.values()), seen
