"""Night or day timelapses by frame flags, else by capture sessions; never by the UTC hour."""

from __future__ import annotations

from collections import Counter

import pytest

from gmn_base.day_night import DAY, MIXED, NIGHT, UNKNOWN, classify_timelapse
from gmn_base.night_folders import parse_night_folders
from gmn_base.sessions import group_sessions
from gmn_base.timelapse_names import parse_timelapse_name

SESSIONS = group_sessions(parse_night_folders([
    "HR000A_20251107_160604_511000_detected", "HR000A_20251108_160512_004000_detected",
    "AU000A_20251107_090112_000000_metadata", "AU000A_20251108_090045_250000_metadata",
])[0])


@pytest.mark.parametrize("name, flags, kind", [
    # A Croatian winter night starts 16:06 UTC: the old rule called it day.
    ("HR000A_20251107-160630_to_20251108-045930_frames_timelapse.mp4", ["n"] * 5, NIGHT),
    # An Australian night starts 09:01 UTC (old rule: day), its day 20:00 UTC (old rule: night).
    ("AU000A_20251107-090130_to_20251107-195950_frames_timelapse.mp4", ["n"] * 3, NIGHT),
    ("AU000A_20251107-200000_to_20251108-090000_frames_timelapse.mp4", ["d"] * 3, DAY),
    ("AU000A_20251107-200000_to_20251108-090000_frames_timelapse.mp4", ["d", "d", None], DAY),
    ("AU000A_20251107-200000_to_20251108-090000_frames_timelapse.mp4", ["d", "n"], MIXED),
])
def test_frame_flags_decide(name, flags, kind):
    lapse = parse_timelapse_name(name)
    assert classify_timelapse(lapse, flags).kind == kind
    assert classify_timelapse(lapse, Counter(flags), SESSIONS).kind == kind


@pytest.mark.parametrize("name, kind", [
    ("HR000A_20251107_160630_to_20251108_045930", NIGHT),       # starts as the capture starts
    ("HR000A_20251108_050000_to_20251108_160500", DAY),         # ends as the next one starts
    ("AU000A_20251107_090130_to_20251107_195950", NIGHT),
    ("AU000A_20251107_200000_to_20251108_090000", DAY),
    ("HR000A_20251108-312_frames_timelapse.mp4", MIXED),         # one UTC day: both
    ("HR000A_20251110_160000_to_20251111_050000", UNKNOWN),      # no capture known then
    ("CAWEC2_20251108_003040_to_20251108_113010", UNKNOWN),      # no session of that station
])
def test_without_flags_the_capture_sessions_decide(name, kind):
    lapse = parse_timelapse_name(name)
    verdict = classify_timelapse(lapse, [None, None], SESSIONS)
    assert verdict.kind == kind, verdict.reason


def test_what_the_former_start_hour_rule_got_wrong():
    # By UTC start hour (night 18-06 h, day 08-17 h) this night was a day and this day a night.
    hr = parse_timelapse_name("HR000A_20251107_160630_to_20251108_045930")
    au_day = parse_timelapse_name("AU000A_20251107_200000_to_20251108_090000")
    assert classify_timelapse(hr, sessions=SESSIONS).kind == NIGHT
    assert classify_timelapse(au_day, sessions=SESSIONS).kind == DAY


def test_a_known_end_of_capture_also_decides():
    lapses = [parse_timelapse_name("HR000A_20251107_160630_to_20251108_050010")]
    known = group_sessions(parse_night_folders(["HR000A_20251107_160604_511000_detected"])[0], lapses)
    tail = parse_timelapse_name("HR000A_20251108_010000_to_20251108_050000")   # the night's end part
    assert classify_timelapse(tail, sessions=known).kind == NIGHT
    morning = parse_timelapse_name("HR000A_20251108_050020_to_20251108_120000")
    verdict = classify_timelapse(morning, sessions=known)
    assert verdict.kind == DAY and "HR000A_20251107_160604_511000" in verdict.reason
