"""Archive variants a user meets: night folder suffixes, timelapse packages and daily names,
timelapse names built from frame times, and interval times as RMS writes them."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from gmn_base.errors import GMNFormatError
from gmn_base.interval_files import format_interval_time, interval_file_text, parse_interval_file
from gmn_base.night_folders import (
    find_night_folder,
    format_night_folder,
    parse_night_folder,
    parse_night_folders,
)
from gmn_base.timelapse_names import parse_timelapse_name, timelapse_for_frames

UTC = timezone.utc


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("suffix", ["_detected", "_metadata", "_imgdata"])
def test_night_folders_with_every_known_suffix_name_one_capture(suffix):
    folder = parse_night_folder(f"/home/extracted_data/HR/HR000A/HR000A_20251107_160604_511000{suffix}")
    assert (folder.station, folder.start, folder.suffix) == (
        "HR000A", utc(2025, 11, 7, 16, 6, 4, 511000), suffix)
    assert folder.capture_id == "HR000A_20251107_160604_511000"
    assert folder.name == f"HR000A_20251107_160604_511000{suffix}"
    assert format_night_folder("HR000A", folder.start, suffix) == folder.name


def test_night_folder_suffixes_are_a_parameter():
    only = ("_detected",)
    with pytest.raises(GMNFormatError, match=r"listing: malformed night folder name: "
                                             r"'HR000A_20251107_160604_511000_imgdata'.*'_detected'"):
        parse_night_folder("HR000A_20251107_160604_511000_imgdata", "listing", suffixes=only)
    names = ["HR000A_20251107_160604_511000_imgdata", "HR000A_20251107_160604_511000_detected",
             "HR000A_20251107_160604_511000_detected.tar.bz2", "AU000A_20251107_090112_000000_metadata"]
    folders, other = parse_night_folders(names, station="HR000A", suffixes=only)
    assert [f.name for f in folders] == ["HR000A_20251107_160604_511000_detected"]
    assert other == ["HR000A_20251107_160604_511000_imgdata",
                     "HR000A_20251107_160604_511000_detected.tar.bz2",
                     "AU000A_20251107_090112_000000_metadata"]
    with pytest.raises(ValueError, match="non-empty list"):
        parse_night_folder("HR000A_20251107_160604_511000_detected", suffixes=())


def test_the_night_folder_nearest_the_file_name_wins():
    path = ("data/flux_time_intervals/HR000A_20251107_160604_511000_metadata/"
            "HR000A_20251107_224031_020000_detected_flux_time_intervals.json")
    assert find_night_folder(path).capture_id == "HR000A_20251107_224031_020000"
    assert find_night_folder(path, suffixes=("_metadata",)).suffix == "_metadata"
    assert find_night_folder("data/notes.json") is None


def test_a_timelapse_package_holds_the_video_and_its_frame_times():
    tar = parse_timelapse_name("AU000A_20251107-090130_to_20251107-195950_frames_timelapse.tar")
    assert tar.kind == "package" and (tar.start, tar.end) == (
        utc(2025, 11, 7, 9, 1, 30), utc(2025, 11, 7, 19, 59, 50))
    assert tar.package_members() == (
        "AU000A_20251107-090130_to_20251107-195950_frames_timelapse.mp4",
        "AU000A_20251107-090130_to_20251107-195950_frametimes.json")
    assert tar.folder_name == "AU000A_20251107_090130_to_20251107_195950"
    assert tar.file_name("timestamps").endswith("_timestamps.json")
    with pytest.raises(ValueError, match="expected video, frametimes"):
        tar.file_name("folder")


def test_source_frame_archives_are_not_timelapses():
    with pytest.raises(GMNFormatError, match="archive of RMS's source frames"):
        parse_timelapse_name("AU000A_20251107-090130_to_20251107-195950_frames_timelapse.tar.bz2")


def test_the_older_daily_timelapse_name():
    daily = parse_timelapse_name("HR000A_20251108-312_frames_timelapse.mp4")
    assert daily.daily and daily.kind == "video" and daily.doy == 312
    assert daily.start == utc(2025, 11, 8) and daily.end == utc(2025, 11, 8, 23, 59, 59, 999999)
    assert daily.stem == "HR000A_20251108-312" and daily.file_name("frametimes") == (
        "HR000A_20251108-312_frametimes.json")
    with pytest.raises(GMNFormatError, match="day of year 311 is not that of 20251108"):
        parse_timelapse_name("HR000A_20251108-311_frames_timelapse.mp4")
    # A regular name whose time starts like a day of year is not mistaken for a daily one.
    # (3 May is day 123: the time 12:30:15 begins with it.)
    regular = parse_timelapse_name("HR000A_20250503-123015_to_20250503-160500_frames_timelapse.mp4")
    assert not regular.daily and regular.start == utc(2025, 5, 3, 12, 30, 15)


def test_timelapse_names_come_from_the_first_and_last_frame_cut_to_seconds():
    frames = [utc(2025, 11, 7, 16, 6, 30, 987000), utc(2025, 11, 7, 23, 0), utc(2025, 11, 8, 4, 59, 59, 999000)]
    lapse = timelapse_for_frames("HR000A", frames)
    assert lapse.file_name("video") == "HR000A_20251107-160630_to_20251108-045959_frames_timelapse.mp4"
    assert lapse.folder_name == "HR000A_20251107_160630_to_20251108_045959"
    with pytest.raises(ValueError, match="out of order"):
        timelapse_for_frames("HR000A", frames[::-1])
    with pytest.raises(ValueError, match="at least one frame"):
        timelapse_for_frames("HR000A", [])


def test_interval_times_have_milliseconds_and_a_000_tail_as_rms_writes_them():
    assert format_interval_time(utc(2025, 11, 14, 23, 1, 5, 18456)) == "2025-11-14T23:01:05.018000"
    text = interval_file_text("HR000A", [(utc(2025, 11, 7, 17, 0, 0, 18999), utc(2025, 11, 7, 19, 0, 0, 18000))])
    assert text == ('{\n    "stationID": "HR000A",\n    "time_intervals": [\n        [\n'
                    '            "2025-11-07T17:00:00.018000",\n            "2025-11-07T19:00:00.018000"\n'
                    '        ]\n    ]\n}')
    assert parse_interval_file(json.loads(text)).intervals[0][0] == utc(2025, 11, 7, 17, 0, 0, 18000)
