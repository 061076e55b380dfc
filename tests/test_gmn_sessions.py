"""Capture sessions for stations in four regions: grouping night folders, the night id,
frames around 00:00 and 12:00 UTC, restarts, selection by session, and session intervals."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from gmn_base.interval_files import parse_interval_file
from gmn_base.night_folders import parse_night_folder, parse_night_folders
from gmn_base.session_intervals import tie_interval_files
from gmn_base.sessions import (
    NIGHT_RULE,
    SessionLookup,
    SessionRule,
    group_sessions,
    is_current_night_rule,
    select_sessions,
    session_for,
)
from gmn_base.timelapse_names import parse_timelapse_name

UTC = timezone.utc


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Winter captures, hand-written as RMS names them (capture start to the microsecond).
FOLDERS = [
    # Americas: about 00:30-11:30 UTC.
    "CAWEC2_20251108_003012_123456_detected", "CAWEC2_20251109_002955_000001_metadata",
    # Europe: about 16:06-05:00 UTC, with a restart at 22:40 (two folders, one night).
    "HR000A_20251107_160604_511000_detected", "HR000A_20251107_224031_020000_detected",
    "HR000A_20251108_160512_004000_detected",
    # Australia: about 09:00-20:00 UTC, crossing 12:00 UTC; one capture under both split names.
    "AU000A_20251107_090112_000000_metadata", "AU000A_20251107_090112_000000_imgdata",
    "AU000A_20251108_090045_250000_metadata",
    # Western Canada: about 01:00-15:15 UTC.
    "CABC01_20251108_010230_000000_detected", "CABC01_20251109_010310_000000_detected",
]


@pytest.fixture(scope="module")
def sessions():
    folders, other = parse_night_folders(FOLDERS + ["notes.txt", "CAWEC2_20251108_003012"])
    assert other == ["notes.txt", "CAWEC2_20251108_003012"]
    return group_sessions(folders)


def by_station(sessions, station):
    return [s for s in sessions if s.station == station]


def test_sessions_per_station_and_their_night_ids(sessions):
    found = {(s.station, s.night_id): [f.name for f in s.folders] for s in sessions}
    assert found == {
        ("AU000A", "20251107"): ["AU000A_20251107_090112_000000_imgdata",
                                 "AU000A_20251107_090112_000000_metadata"],
        ("AU000A", "20251108"): ["AU000A_20251108_090045_250000_metadata"],
        ("CABC01", "20251108"): ["CABC01_20251108_010230_000000_detected"],
        ("CABC01", "20251109"): ["CABC01_20251109_010310_000000_detected"],
        ("CAWEC2", "20251108"): ["CAWEC2_20251108_003012_123456_detected"],
        ("CAWEC2", "20251109"): ["CAWEC2_20251109_002955_000001_metadata"],
        ("HR000A", "20251107"): ["HR000A_20251107_160604_511000_detected",
                                 "HR000A_20251107_224031_020000_detected"],
        ("HR000A", "20251108"): ["HR000A_20251108_160512_004000_detected"],
    }
    restart = by_station(sessions, "HR000A")[0]
    assert restart.session_id == "HR000A_20251107_160604_511000"
    assert len(restart.capture_starts) == 2 and restart.end is None
    assert by_station(sessions, "AU000A")[0].capture_ids == ("AU000A_20251107_090112_000000",)


@pytest.mark.parametrize("station, ts, night_id", [
    # Europe: just before and after 00:00 UTC, and 04:59 the next morning: one night.
    ("HR000A", utc(2025, 11, 7, 23, 59, 59, 900000), "20251107"),
    ("HR000A", utc(2025, 11, 8, 0, 0, 0, 100000), "20251107"),
    ("HR000A", utc(2025, 11, 8, 4, 59), "20251107"),
    # Australia: just before and after 12:00 UTC (the old rule split this night in two).
    ("AU000A", utc(2025, 11, 7, 11, 59, 59), "20251107"),
    ("AU000A", utc(2025, 11, 7, 12, 0, 1), "20251107"),
    ("AU000A", utc(2025, 11, 7, 19, 58), "20251107"),
    # Western Canada: 11:00, 11:59:59, 12:00:01 and 14:00 UTC are one capture.
    ("CABC01", utc(2025, 11, 8, 11, 0), "20251108"),
    ("CABC01", utc(2025, 11, 8, 11, 59, 59), "20251108"),
    ("CABC01", utc(2025, 11, 8, 12, 0, 1), "20251108"),
    ("CABC01", utc(2025, 11, 8, 14, 0), "20251108"),
    # Americas: just after 00:00 UTC, before the 00:30 start: within the tolerance.
    ("CAWEC2", utc(2025, 11, 8, 0, 0, 1), "20251108"),
    ("CAWEC2", utc(2025, 11, 8, 11, 29), "20251108"),
])
def test_frames_around_midnight_and_noon_utc_belong_to_their_capture(sessions, station, ts, night_id):
    found = session_for(sessions, station, ts)
    assert found is not None and found.night_id == night_id


def test_one_capture_across_12_utc_is_one_night(sessions):
    # The former UTC-noon clock rule gave these frames two nights: 20251107 and 20251108.
    lookup = SessionLookup(sessions)
    assert lookup.session_for("CABC01", utc(2025, 11, 8, 11, 0)) is \
        lookup.session_for("CABC01", utc(2025, 11, 8, 14, 0))


def test_frames_outside_every_capture_belong_to_no_session(sessions):
    lookup = SessionLookup(sessions)
    assert lookup.session_for("HR000A", utc(2025, 11, 7, 14, 0)) is None     # 2 h before dusk
    assert lookup.session_for("CAWEC2", utc(2025, 11, 7, 23, 0)) is None     # 90 min before
    assert lookup.session_for("XX0001", utc(2025, 11, 8, 1, 0)) is None      # unknown station
    # 15:30 UTC belongs to the next HR000A night (starts 16:05), within the tolerance.
    assert lookup.session_for("HR000A", utc(2025, 11, 8, 15, 30)).night_id == "20251108"


def test_timelapse_names_give_the_end_of_capture(sessions):
    folders, _ = parse_night_folders(FOLDERS)
    lapses = [parse_timelapse_name(n) for n in (
        "CAWEC2_20251108_003040_to_20251108_113010", "CAWEC2_20251108_113020_to_20251109_002940",
        "CABC01_20251108-010300_to_20251108-151500_frames_timelapse.mp4")]
    known = group_sessions(folders, lapses)
    cawec2 = by_station(known, "CAWEC2")[0]
    assert cawec2.end == utc(2025, 11, 8, 11, 30, 10)
    assert by_station(known, "CABC01")[0].end == utc(2025, 11, 8, 15, 15)
    assert by_station(known, "CABC01")[1].end is None       # no timelapse for that night
    lookup = SessionLookup(known)
    assert lookup.session_for("CAWEC2", utc(2025, 11, 8, 12, 0, 1)).night_id == "20251108"
    assert lookup.session_for("CAWEC2", utc(2025, 11, 8, 13, 0)) is None
    # Without the timelapse, only RMS's 23-hour limit bounds the capture.
    assert session_for(sessions, "CAWEC2", utc(2025, 11, 8, 13, 0)).night_id == "20251108"


def test_a_restart_is_told_from_the_next_night_by_rms_23_hour_limit():
    def sessions_of(*starts):
        folders = [parse_night_folder(f"HR000A_{s}_000000_detected") for s in starts]
        return [[f.start for f in s.folders] for s in group_sessions(folders)]
    # A restart 22 h 59 min after dusk is the same capture; the next dusk never comes that soon.
    assert len(sessions_of("20251107_160600", "20251108_145900")) == 1
    assert len(sessions_of("20251107_160600", "20251108_160500")) == 2
    assert len(sessions_of("20251107_160600", "20251107_224000", "20251108_160500")) == 2


def test_a_night_starting_with_a_restart_needs_timelapse_names():
    # The station came up at 03:10 UTC, before dawn; the next dusk is 13 h later. Names alone
    # cannot tell that from a restart (the documented limit); the dawn switch can.
    folders = [parse_night_folder(n) for n in (
        "HR000A_20251108_031000_000000_detected", "HR000A_20251108_160512_004000_detected")]
    assert len(group_sessions(folders)) == 1
    night = parse_timelapse_name("HR000A_20251107_160630_to_20251108_050010")
    day = parse_timelapse_name("HR000A_20251108_050020_to_20251108_160500")
    split = group_sessions(folders, [night, day])
    assert [(s.night_id, s.end) for s in split] == [
        ("20251108", utc(2025, 11, 8, 5, 0, 10)), ("20251108", None)]
    assert split[0].session_id != split[1].session_id   # one night id, two sessions


def test_last_n_since_until_select_sessions_not_folders():
    # The example: a restart must not push the night's first part out.
    folders, _ = parse_night_folders([
        "HR000A_20251107_231502_000000_detected", "HR000A_20251108_031000_000000_detected",
        "HR000A_20251108_231500_000000_detected"])
    sessions = group_sessions(folders)
    two = select_sessions(sessions, last_n=2)
    assert [(s.night_id, len(s.folders)) for s in two] == [("20251107", 2), ("20251108", 1)]
    assert [s.night_id for s in select_sessions(sessions, last_n=1)] == ["20251108"]
    assert select_sessions(sessions, last_n=0) == []
    # since/until compare night ids: the 03:10 restart belongs to night 20251107.
    assert [s.night_id for s in select_sessions(sessions, since=date(2025, 11, 8))] == ["20251108"]
    only = select_sessions(sessions, until=date(2025, 11, 7))
    assert [len(s.folders) for s in only] == [2]
    with pytest.raises(ValueError, match=r"find.last_n=-1"):
        select_sessions(sessions, last_n=-1)


def test_last_n_counts_per_station(sessions):
    newest = select_sessions(sessions, last_n=1)
    assert [(s.station, s.night_id) for s in newest] == [
        ("AU000A", "20251108"), ("CABC01", "20251109"), ("CAWEC2", "20251109"), ("HR000A", "20251108")]


def intervals_file(station, *pairs):
    return parse_interval_file({"stationID": station, "time_intervals": [list(p) for p in pairs]})


def test_session_intervals_restart_all_cloudy_and_missing_files(sessions):
    files = [
        ("flux/HR000A/HR000A_20251107_160604_511000_detected/flux_time_intervals.json",
         intervals_file("HR000A", ("2025-11-07T17:00:00.018000", "2025-11-07T19:00:00.018000"))),
        # The restart's file is missing; the next night was cloudy throughout.
        ("flux/HR000A_20251108_160512_004000_detected_flux_time_intervals.json",
         intervals_file("HR000A")),
    ]
    tied, untied = tie_interval_files(sessions, files)
    assert untied == []
    first, second = (tied[s.session_id] for s in by_station(sessions, "HR000A"))
    assert first.missing == ("HR000A_20251107_224031_020000",) and not first.complete
    assert first.intervals_at(utc(2025, 11, 7, 18, 0)) == first.intervals      # clear part
    assert first.intervals_at(utc(2025, 11, 7, 21, 0)) == first.intervals      # cloudy part
    # After the restart nothing is known: never cloudy, never clear.
    assert first.intervals_at(utc(2025, 11, 8, 1, 0)) is None
    assert first.intervals_at(utc(2025, 11, 7, 16, 0)) is None    # before capture started
    assert first.clear_minutes() == pytest.approx(120)
    assert second.all_cloudy and second.intervals_at(utc(2025, 11, 8, 23, 0)) == ()
    # A station with no file at all: no intervals known anywhere.
    cabc = tied[by_station(sessions, "CABC01")[0].session_id]
    assert cabc.files == {} and cabc.intervals_at(utc(2025, 11, 8, 14, 0)) is None


def test_interval_files_that_cannot_be_tied_are_returned_with_why(sessions):
    files = [
        ("flux/HR000A/flux_time_intervals.json", intervals_file("HR000A")),
        ("flux/HR000A_20251101_160000_000000_detected/flux_time_intervals.json", intervals_file("HR000A")),
        ("flux/HR000A_20251108_160512_004000_detected/flux_time_intervals.json", intervals_file("HR0001")),
        ("a/AU000A_20251107_090112_000000_metadata/flux_time_intervals.json", intervals_file("AU000A")),
        ("b/AU000A_20251107_090112_000000_detected/flux_time_intervals.json",
         intervals_file("AU000A", ("2025-11-07T10:00:00.000000", "2025-11-07T12:00:00.000000"))),
    ]
    tied, untied = tie_interval_files(sessions, files)
    reasons = [reason for _, reason in untied]
    assert [path.split("/")[1] for path, _ in untied] == [
        "HR000A", "HR000A_20251101_160000_000000_detected",
        "HR000A_20251108_160512_004000_detected", "AU000A_20251107_090112_000000_detected"]
    assert "no night folder" in reasons[0]
    assert "capture HR000A_20251101_160000_000000 is in no selected session" == reasons[1]
    assert "stationID HR0001 differs from the folder's HR000A" == reasons[2]
    assert "a different interval file" in reasons[3]
    assert tied[by_station(sessions, "AU000A")[0].session_id].all_cloudy


def test_session_rule_and_night_rule_tag():
    rule = SessionRule(tolerance=timedelta(minutes=10))
    folders = [parse_night_folder("CAWEC2_20251108_003012_123456_detected")]
    assert session_for(group_sessions(folders), "CAWEC2", utc(2025, 11, 8, 0, 5), rule) is None
    assert session_for(group_sessions(folders), "CAWEC2", utc(2025, 11, 8, 0, 25), rule) is not None
    assert is_current_night_rule(NIGHT_RULE) and not is_current_night_rule(None)
