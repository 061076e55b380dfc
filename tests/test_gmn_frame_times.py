"""Frame-time maps as RMS writes them: gaps where a name did not parse, shared times, flags."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone

import pytest

from gmn_base.errors import GMNFormatError
from gmn_base.frame_times import load_frame_time_map, parse_frame_time_map

UTC = timezone.utc
SOURCE = "HR000A_20251107-160630_to_20251108-045930_frametimes.json"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_clean_map():
    parsed = parse_frame_time_map({"0": "20251107_160630_012_n", "1": "20251107_160640_252_n"}, SOURCE)
    assert parsed.clean and parsed.anomalies() == [] and parsed.frame_count == 2
    assert parsed.times == {0: utc(2025, 11, 7, 16, 6, 30, 12000), 1: utc(2025, 11, 7, 16, 6, 40, 252000)}
    assert parsed.flag_counts == Counter({"n": 2}) and parsed.time_of(5) is None


def test_a_missing_key_keeps_the_known_frames_and_reports_the_gap():
    # RMS could not parse frame 2's image name: no key "2", but frame 3 is still frame 3.
    mapping = {"0": "20251107_160630_012_n", "1": "20251107_160640_252_n",
               "3": "20251107_160700_732_n", "4": "20251107_160710_972_n"}
    parsed = parse_frame_time_map(mapping, SOURCE)
    assert sorted(parsed.times) == [0, 1, 3, 4] and parsed.missing == (2,)
    assert parsed.time_of(3) == utc(2025, 11, 7, 16, 7, 0, 732000)
    assert parsed.anomalies() == [(
        f"{SOURCE}: no time for frames 2 of 5 (RMS skips an image name it cannot parse); "
        "those frames are left out")]
    # With the video's own frame count, frames missing after the last key show too.
    longer = parse_frame_time_map(mapping, SOURCE, frame_count=8)
    assert longer.missing == (2, 5, 6, 7) and longer.unknown == (2, 5, 6, 7)
    assert "no time for frames 2, 5-7 of 8" in longer.anomalies()[0]


def test_two_frames_with_one_time_are_both_kept_and_reported_by_file_name():
    mapping = {"0": "20251107_160630_012_n", "1": "20251107_160640_252_n",
               "2": "20251107_160640_252_n", "3": "20251107_160700_732_n"}
    parsed = parse_frame_time_map(mapping, SOURCE)
    assert sorted(parsed.times) == [0, 1, 2, 3]
    assert parsed.shared_times == ((utc(2025, 11, 7, 16, 6, 40, 252000), (1, 2)),)
    assert parsed.anomalies() == [
        f"{SOURCE}: frames 1, 2 share the time 20251107_160640_252; all are kept"]


def test_unreadable_times_frames_past_the_video_and_times_going_backwards():
    mapping = {"0": "20251107_160630_012_n", "1": "garbage", "2": 20251107,
               "3": "20251107_160620_000_n", "4": "20251107_160700_732_n", "5": "20251107_160710_972_n"}
    parsed = parse_frame_time_map(mapping, SOURCE, frame_count=5)
    assert sorted(parsed.times) == [0, 3, 4]
    assert parsed.unreadable == ((1, "garbage"), (2, 20251107)) and parsed.unknown == (1, 2)
    assert parsed.out_of_order == (3,) and parsed.beyond_video == (5,)
    messages = parsed.anomalies()
    assert messages[0] == f"{SOURCE}: 2 unreadable frame times (1='garbage', 2=20251107); those frames are left out"
    assert messages[1] == f"{SOURCE}: frames 3 are earlier than the frame before them"
    assert messages[2] == f"{SOURCE}: keys 5 are past the video's 5 frames; left out"


def test_flags_are_counted_per_frame():
    parsed = parse_frame_time_map({"0": "20251108_045930_000_n", "1": "20251108_045940_000_d",
                                   "2": "20251108_045950_000"})
    assert parsed.flags == {0: "n", 1: "d", 2: None}
    assert parsed.flag_counts == Counter({"n": 1, "d": 1, None: 1})


@pytest.mark.parametrize("bad, what", [
    ({}, "frame-time map"), ([["0", "20251106_223015_012_n"]], "frame-time map"),
    ({"0": "20251106_223015_012_n", "x": "20251106_223020_012_n"}, "frame-time map key: 'x'"),
    ({"0": "20251106_223015_012_n", "01": "20251106_223020_012_n"}, "frame-time map key: '01'"),
])
def test_only_a_map_that_is_not_an_index_to_time_object_is_refused(bad, what):
    with pytest.raises(GMNFormatError, match=SOURCE) as err:
        parse_frame_time_map(bad, SOURCE)
    assert what in str(err.value)


def test_loading_names_the_file(tmp_path):
    path = tmp_path / SOURCE
    path.write_text(json.dumps({"0": "20251107_160630_012_n", "2": "20251107_160650_012_n"}))
    parsed = load_frame_time_map(path)
    assert parsed.missing == (1,) and parsed.source == str(path)
    assert parsed.anomalies()[0].startswith(f"{path}: no time for frames 1 of 3")
    path.write_text("{")
    with pytest.raises(GMNFormatError, match=rf"{SOURCE}: malformed JSON"):
        load_frame_time_map(path)
