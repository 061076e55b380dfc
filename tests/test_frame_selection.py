"""Pure frame selection: list matching, frames by capture session, the night sampling rule,
the daytime spread, night and day frames told apart, and the decode planner."""

from datetime import datetime, timedelta, timezone

import pytest

from data_prep.nights.label_rules import CLEAR, classify_time
from data_prep.video.frame_decode import DecodeRun, decode_cost, plan_decode
from data_prep.video.frame_selection import (
    VideoFrames,
    frames_by_session,
    match_target_list,
    sample_night,
    spread_evenly,
    spread_over_videos,
)
from data_prep.video.night_or_day import split_night_day
from gmn_base.image_names import ImageName, parse_image_name
from gmn_base.night_folders import NightFolder
from gmn_base.sessions import CaptureSession, SessionLookup
from gmn_base.timelapse_names import parse_timelapse_name, timelapse_for_frames

UTC = timezone.utc
START = datetime(2025, 11, 6, 23, 0, 0, 12000, tzinfo=UTC)


def video(station, n, start=START, step_s=5.0, key=None):
    frames = tuple((i, start + timedelta(seconds=step_s * i)) for i in range(n))
    return VideoFrames(key or f"{station}.mp4", station, frames)


def session(station, start, hours=None):
    end = None if hours is None else start + timedelta(hours=hours)
    return CaptureSession(station, (NightFolder(station, start),), end)


def one_session(v):
    """The frames of ``v`` in one session started with it."""
    (_key, refs), = frames_by_session([v], SessionLookup([session(v.station, START)]))[0].items()
    return refs


def test_spread_evenly_takes_the_middle_of_each_share():
    assert spread_evenly(list(range(10)), 5) == [1, 3, 5, 7, 9]
    assert spread_evenly(list(range(10)), 1) == [5]
    assert spread_evenly(list(range(3)), 5) == [0, 1, 2]
    assert spread_evenly(list(range(3)), 0) == []


def test_list_name_without_station_matches_every_station_with_station_only_its_own():
    a, b = video("CAWEC2", 20), video("US0001", 20)
    t3 = a.frames[3][1]
    targets = [ImageName(None, t3), ImageName("US0001", a.frames[7][1]),
               ImageName("CAWEC2", t3 + timedelta(milliseconds=1))]  # no such frame
    chosen, unmatched = match_target_list([a, b], targets)
    assert sorted((f.station, f.index) for f in chosen) == [
        ("CAWEC2", 3), ("US0001", 3), ("US0001", 7)]
    assert unmatched == [targets[2]]
    assert {f.image_name for f in chosen} == {
        "CAWEC2_20251106_230015_012.png", "US0001_20251106_230015_012.png",
        "US0001_20251106_230035_012.png"}


def test_list_matching_is_exact_to_the_millisecond():
    a = video("CAWEC2", 5)
    name = parse_image_name("20251106_230005_012.png")
    chosen, unmatched = match_target_list([a], [name])
    assert [f.index for f in chosen] == [1] and not unmatched


def test_frames_group_by_capture_session_across_00_and_12_utc():
    bc = video("CABC01", 5, start=datetime(2025, 11, 8, 11, 59, 50, tzinfo=UTC))
    hr = video("HR000A", 5, start=datetime(2025, 11, 6, 23, 59, 50, tzinfo=UTC))
    late = video("HR000A", 2, start=datetime(2025, 11, 7, 15, 0, tzinfo=UTC), key="late")
    sessions = [session("CABC01", datetime(2025, 11, 8, 1, 10, tzinfo=UTC), 13.5),
                session("HR000A", datetime(2025, 11, 6, 16, 1, tzinfo=UTC), 13.3)]
    groups, outside = frames_by_session([bc, hr, late], SessionLookup(sessions))
    assert {k: [f.index for f in v] for k, v in groups.items()} == {
        "CABC01_20251108_011000_000000": [0, 1, 2, 3, 4],
        "HR000A_20251106_160100_000000": [0, 1, 2, 3, 4]}
    assert [f.video for f in outside] == ["late", "late"]  # after the end of capture


def test_sample_night_balanced_and_away_from_edges():
    refs = one_session(video("CAWEC2", 720))  # one hour at 5 s
    clear = ((START + timedelta(minutes=10), START + timedelta(minutes=20)),)
    chosen = sample_night(refs, 10, clear, balance=True, edge_margin_s=60)
    results = [classify_time(f.timestamp, clear) for f in chosen]
    assert len(chosen) == 10
    assert sum(r.label == CLEAR for r in results) == 5
    assert all(abs(r.edge_distance_s) >= 60 for r in results)
    assert [f.index for f in chosen] == sorted(f.index for f in chosen)


def test_sample_night_fills_up_when_one_kind_is_short():
    refs = one_session(video("CAWEC2", 100))
    clear = ((START + timedelta(seconds=100), START + timedelta(seconds=110)),)  # frames 20-22
    chosen = sample_night(refs, 10, clear, balance=True, edge_margin_s=0)
    labels = [classify_time(f.timestamp, clear).label for f in chosen]
    assert len(chosen) == 10 and labels.count(CLEAR) == 3


def test_sample_night_all_cloudy_and_without_intervals():
    refs = one_session(video("CAWEC2", 100))
    assert len(sample_night(refs, 8, (), balance=True, edge_margin_s=600)) == 8
    assert [f.index for f in sample_night(refs, 4, None, balance=True, edge_margin_s=600)] == [
        12, 37, 62, 87]


def test_spread_over_videos_gives_even_shares_and_redistributes_short_ones():
    videos = [video("CAWEC2", 100, key="a"), video("US0001", 2, key="b"),
              video("US0002", 100, key="c")]
    chosen = spread_over_videos(videos, 11)
    per_video = {k: sum(f.video == k for f in chosen) for k in "abc"}
    assert per_video == {"a": 5, "b": 2, "c": 4}
    assert len(spread_over_videos(videos, 1000)) == 202


def test_night_and_day_frames_by_flags_else_by_sessions_never_by_the_hour():
    hr = session("HR000A", datetime(2025, 11, 7, 16, 6, tzinfo=UTC), 13)
    lookup = SessionLookup([hr])
    night = video("HR000A", 4, start=datetime(2025, 11, 7, 16, 6, 5, tzinfo=UTC))
    lapse = timelapse_for_frames("HR000A", [ts for _, ts in night.frames])
    # Unflagged: the capture session decides (a 16:06 UTC start used to read as day).
    split = split_night_day(night, lapse, {}, [hr], lookup)
    assert (len(split.night.frames), len(split.day.frames), split.verdict.kind) == (4, 0, "night")
    flagged = split_night_day(night, lapse, {i: "d" for i in range(4)}, [hr], lookup)
    assert flagged.verdict.kind == "day" and len(flagged.day.frames) == 4
    # A one-UTC-day timelapse holding a session start: frames told apart one by one.
    daily = parse_timelapse_name("HR000A_20251107-311_frames_timelapse.mp4")
    both = VideoFrames("d.mp4", "HR000A", ((0, datetime(2025, 11, 7, 12, tzinfo=UTC)),
                                          (1, datetime(2025, 11, 7, 20, tzinfo=UTC))))
    mixed = split_night_day(both, daily, {}, [hr], lookup)
    assert mixed.verdict.kind == "mixed"
    assert [i for i, _ in mixed.night.frames] == [1] and [i for i, _ in mixed.day.frames] == [0]
    unknown = split_night_day(night, lapse, {}, [], SessionLookup([]))
    assert unknown.verdict.kind == "unknown" and not unknown.night.frames + unknown.day.frames


KEYS = list(range(0, 1200, 120))


def test_plan_sparse_targets_seek_to_their_keyframes():
    runs = plan_decode([5, 500, 1000], KEYS)
    assert runs == [DecodeRun(0, (5,)), DecodeRun(480, (500,)), DecodeRun(960, (1000,))]
    assert decode_cost(runs) == 6 + 21 + 41


def test_plan_same_gop_targets_share_one_run():
    assert plan_decode([130, 121, 239], KEYS) == [DecodeRun(120, (121, 130, 239))]


def test_plan_next_gop_target_continues_when_cheaper_than_a_seek():
    # 119 -> 121: decoding 2 more frames beats seeking to 120 (2 frames + overhead).
    assert plan_decode([119, 121], KEYS, seek_overhead_frames=8) == [DecodeRun(0, (119, 121))]
    # 10 -> 200: continuing costs 190 frames, a seek 81 + 8.
    assert len(plan_decode([10, 200], KEYS, seek_overhead_frames=8)) == 2


def test_plan_dense_targets_become_one_pass():
    targets = list(range(3, 1200, 7))
    runs = plan_decode(targets, KEYS)
    assert runs == [DecodeRun(0, tuple(targets))]


@pytest.mark.parametrize("targets", [[0], [1199], [0, 1199], list(range(0, 1200, 97))])
def test_plan_never_decodes_more_than_a_full_pass(targets):
    runs = plan_decode(targets, KEYS)
    assert sorted(t for r in runs for t in r.targets) == sorted(targets)
    assert decode_cost(runs) <= max(targets) + 1 + 8 * len(runs)
