"""gmn_base: GMN names and formats, with real-shaped examples and each malformed case."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from gmn_base.errors import GMNFormatError
from gmn_base.frame_times import (
    format_frame_time,
    format_frame_times,
    load_frame_times,
    parse_frame_time,
    parse_frame_times,
)
from gmn_base.image_names import format_image_name, parse_image_name, parse_target_list
from gmn_base.interval_files import (
    INTERVAL_FILE_NAME,
    format_interval_file,
    format_interval_time,
    load_interval_file,
    parse_interval_file,
    parse_interval_time,
)
from gmn_base.night_folders import find_night_folder, format_night_folder, parse_night_folder
from gmn_base.station_time import as_utc, format_night, frame_time_at, parse_night, parse_station
from gmn_base.timelapse_names import (
    VIDEO_SUFFIX,
    format_timelapse_folder,
    frame_times_candidates,
    frame_times_name,
    parse_timelapse_name,
    timelapse_video_name,
)

UTC = timezone.utc


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- station ids and nights ---------------------------------------------------------------


@pytest.mark.parametrize("station", ["CAWEC2", "US0001", "CA000A", "HR0010"])
def test_station_ids(station):
    assert parse_station(station) == station


@pytest.mark.parametrize("bad", ["cawec2", "CAWEC", "CAWEC22", "C1WEC2", "CA-EC2", "", None, 42])
def test_malformed_station_ids_name_the_value(bad):
    with pytest.raises(GMNFormatError, match=r"station id") as err:
        parse_station(bad, "stations.txt")
    assert "stations.txt" in str(err.value) and repr(bad) in str(err.value)
    assert err.value.source == "stations.txt" and err.value.value == bad


def test_nights_and_utc():
    assert format_night(date(2025, 11, 6)) == "20251106"
    assert parse_night("20251106") == date(2025, 11, 6)
    assert parse_night(20251106) == date(2025, 11, 6)
    assert as_utc(datetime(2025, 1, 1)).tzinfo is UTC
    for bad, hint in (("2025-11-06", ""), ("20251306", "no such date"), ("2025110", "")):
        with pytest.raises(GMNFormatError, match=r"good_weather_dates\.json.*night") as err:
            parse_night(bad, "good_weather_dates.json")
        assert hint in str(err.value) and repr(bad) in str(err.value)


# --- timelapse folders and files ----------------------------------------------------------

FOLDER = "CAWEC2_20251106_223015_to_20251107_053000"
VIDEO = "CAWEC2_20251106-223015_to_20251107-053000_frames_timelapse.mp4"
FRAMETIMES = "CAWEC2_20251106-223015_to_20251107-053000_frametimes.json"
LEGACY = "CAWEC2_20251106-223015_to_20251107-053000_timestamps.json"
DOY_FOLDER = "CAWEC2_310_20251106_223015_to_20251107_053000"
DOY_VIDEO = "CAWEC2_310_20251106-223015_to_20251107-053000_frames_timelapse.mp4"


@pytest.mark.parametrize("name, kind, doy", [
    (FOLDER, "folder", None), (VIDEO, "video", None), (FRAMETIMES, "frametimes", None),
    (LEGACY, "timestamps", None), (DOY_FOLDER, "folder", 310), (DOY_VIDEO, "video", 310),
    ("/home/contrails/CA/CAWEC2/" + FOLDER + "/" + VIDEO, "video", None),
])
def test_timelapse_names(name, kind, doy):
    t = parse_timelapse_name(name)
    assert (t.station, t.start, t.end, t.kind, t.doy) == (
        "CAWEC2", utc(2025, 11, 6, 22, 30, 15), utc(2025, 11, 7, 5, 30), kind, doy)
    assert t.folder_name == (DOY_FOLDER if doy else FOLDER)
    assert t.stem + VIDEO_SUFFIX == (DOY_VIDEO if doy else VIDEO)


def test_timelapse_names_round_trip():
    start, end = utc(2025, 11, 6, 22, 30, 15), utc(2025, 11, 7, 5, 30)
    assert format_timelapse_folder("CAWEC2", start, end) == FOLDER
    assert format_timelapse_folder("CAWEC2", start, end, doy=310) == DOY_FOLDER
    assert timelapse_video_name("CAWEC2", start, end) == VIDEO
    assert timelapse_video_name("CAWEC2", start, end, 310) == DOY_VIDEO
    assert frame_times_name("CAWEC2", start, end) == FRAMETIMES
    assert frame_times_name("CAWEC2", start, end, legacy=True) == LEGACY
    # Sub-second parts are not part of the names.
    assert format_timelapse_folder("CAWEC2", start.replace(microsecond=5), end) == FOLDER


def test_frame_times_candidates():
    video = f"/data/raw/{VIDEO}"
    assert [p.name for p in frame_times_candidates(video)] == [FRAMETIMES, LEGACY]
    with pytest.raises(GMNFormatError, match=r"clip\.mp4.*timelapse video name"):
        frame_times_candidates("/data/raw/clip.mp4")


@pytest.mark.parametrize("bad, hint", [
    ("CAWEC2_20251106_223015", "expected"),                               # no end
    ("CAWEC2_20251106_223015_to_20251107_053000_frames.mp4", "expected"),  # unknown suffix
    ("CAWEC2_20251106_223015_to_20251107_053000.avi", "expected"),
    ("CAWEC2_20251306_223015_to_20251307_053000", "out of range"),        # month 13
    ("CAWEC2_20251106_253015_to_20251107_053000", "out of range"),        # hour 25
    ("CAWEC2_20251107_053000_to_20251106_223015", "end before start"),
    ("CAWEC2_400_20251106_223015_to_20251107_053000", "day of year"),
    ("cawec2_20251106_223015_to_20251107_053000", "expected"),
])
def test_malformed_timelapse_names(bad, hint):
    with pytest.raises(GMNFormatError, match="timelapse name") as err:
        parse_timelapse_name(bad, "listing of /home/contrails/CA/CAWEC2")
    message = str(err.value)
    assert message.startswith("listing of /home/contrails/CA/CAWEC2: ")
    assert repr(bad) in message and hint in message


# --- night folders ------------------------------------------------------------------------


def test_detected_folders():
    name = "CAWEC2_20251114_230105_018000_detected"
    folder = parse_night_folder(f"/home/extracted_data/CA/CAWEC2/{name}")
    assert folder.station == "CAWEC2" and folder.start == utc(2025, 11, 14, 23, 1, 5, 18000)
    assert folder.name == name and folder.capture_id == name.removesuffix("_detected")
    assert format_night_folder("CAWEC2", utc(2025, 11, 14, 23, 1, 5, 18000)) == name


@pytest.mark.parametrize("bad", [
    "CAWEC2_20251114_230105_detected", "CAWEC2_20251114_230105_018000",
    "CAWEC2_20251114_230105_01800_detected", "CAWEC2_20251132_230105_018000_detected",
])
def test_malformed_detected_folders(bad):
    with pytest.raises(GMNFormatError, match=r"listing: malformed night folder name") as err:
        parse_night_folder(bad, "listing")
    assert repr(bad) in str(err.value)


# --- frame times --------------------------------------------------------------------------


@pytest.mark.parametrize("value, suffix", [
    ("20251106_223015_012_n", "n"), ("20251106_223015_012_d", "d"), ("20251106_223015_012", None),
])
def test_frame_times(value, suffix):
    ts, found = parse_frame_time(value)
    assert ts == utc(2025, 11, 6, 22, 30, 15, 12000) and found == suffix
    assert format_frame_time(ts, suffix) == value


@pytest.mark.parametrize("bad", [
    "20251106_223015_12_n", "20251106_223015_012_x", "20251106-223015_012", "20251106_223015",
    "20251106_226015_012_n", 20251106, None,
])
def test_malformed_frame_times(bad):
    with pytest.raises(GMNFormatError, match=r"x_frametimes\.json: malformed frame time") as err:
        parse_frame_time(bad, "x_frametimes.json")
    assert repr(bad) in str(err.value)


def test_frame_time_maps_round_trip_and_truncate_to_milliseconds():
    times = [utc(2025, 11, 6, 22, 30, 15, 12345), utc(2025, 11, 6, 22, 30, 20, 4999)]
    mapping = format_frame_times(times)
    assert mapping == {"0": "20251106_223015_012_n", "1": "20251106_223020_004_n"}
    assert parse_frame_times(mapping) == [frame_time_at(t) for t in times]
    assert format_frame_times(times, None)["0"] == "20251106_223015_012"
    assert format_frame_times(times, "d")["1"].endswith("_d")
    # Keys in any order are fine; the list is indexed by frame number.
    assert parse_frame_times({"1": mapping["1"], "0": mapping["0"]}) == parse_frame_times(mapping)


@pytest.mark.parametrize("bad, what", [
    ({}, "frame-time map"),
    ([["0", "20251106_223015_012_n"]], "frame-time map"),
    ({"0": "20251106_223015_012_n", "2": "20251106_223025_012_n"}, "frame index 1 missing"),
    ({"1": "20251106_223015_012_n"}, "frame index 0 missing"),
    ({"0": "20251106_223015_012_n", "x": "20251106_223020_012_n"}, "frame-time map key"),
    ({"0": "20251106_223015_012_n", "01": "20251106_223020_012_n"}, "frame-time map key"),
    ({"0": "20251106_223015_012_n", "1": "20251106_223010_012_n"}, "earlier than frame 0"),
    ({"0": "20251106_223015_012_n", "1": "garbage"}, "frame time"),
])
def test_malformed_frame_time_maps(bad, what):
    with pytest.raises(GMNFormatError, match="frametimes.json") as err:
        parse_frame_times(bad, "frametimes.json")
    assert what in str(err.value)


def test_load_frame_times_names_the_file(tmp_path):
    path = tmp_path / FRAMETIMES
    path.write_text(json.dumps({"0": "20251106_223015_012_n"}))
    assert load_frame_times(path) == [utc(2025, 11, 6, 22, 30, 15, 12000)]
    path.write_text('{"0": "20251106_223015_012_n",')
    with pytest.raises(GMNFormatError, match=rf"{FRAMETIMES}: malformed JSON"):
        load_frame_times(path)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(GMNFormatError, match="not UTF-8"):
        load_frame_times(path)


# --- interval files -----------------------------------------------------------------------

RMS_INTERVALS = {
    "stationID": "CAWEC2",
    "time_intervals": [
        ["2025-11-15T01:30:00.000000", "2025-11-15T03:00:00.500000"],
        ["2025-11-14T23:01:05.018000", "2025-11-15T00:59:00.018000"],
    ],
}


def test_interval_files():
    parsed = parse_interval_file(RMS_INTERVALS)
    assert parsed.station == "CAWEC2" and not parsed.all_cloudy
    assert parsed.intervals[0] == (utc(2025, 11, 14, 23, 1, 5, 18000), utc(2025, 11, 15, 0, 59, 0, 18000))
    assert parsed.intervals[1][0] == utc(2025, 11, 15, 1, 30)  # sorted by start
    assert parsed.clear_minutes() == pytest.approx(117 + 55 / 60 + 90 + 0.5 / 60)
    again = format_interval_file("CAWEC2", parsed.intervals)
    assert again["time_intervals"][0] == RMS_INTERVALS["time_intervals"][1]
    assert parse_interval_file(again) == parsed
    cloudy = parse_interval_file({"stationID": "US0001", "time_intervals": []})
    assert cloudy.all_cloudy and cloudy.clear_minutes() == 0
    # Seconds without a fraction are accepted too.
    assert parse_interval_time("2025-11-14T23:01:05") == utc(2025, 11, 14, 23, 1, 5)
    assert format_interval_time(datetime(2025, 11, 14, 18, 1, tzinfo=timezone(timedelta(hours=-5)))
                                    ) == "2025-11-14T23:01:00.000000"


@pytest.mark.parametrize("bad, what", [
    ([], "interval file"),
    ({"time_intervals": []}, "missing key 'stationID'"),
    ({"stationID": "CAWEC2"}, "missing key 'time_intervals'"),
    ({"stationID": "cawec2", "time_intervals": []}, "station id"),
    ({"stationID": "CAWEC2", "time_intervals": "none"}, "time_intervals"),
    ({"stationID": "CAWEC2", "time_intervals": [["2025-11-14T23:01:05.018000"]]}, "time interval"),
    ({"stationID": "CAWEC2", "time_intervals": [["2025-11-14 23:01", "2025-11-15T00:59:00.0"]]},
     "interval time: '2025-11-14 23:01'"),
    ({"stationID": "CAWEC2", "time_intervals": [[1731625265, "2025-11-15T00:59:00.0"]]},
     "interval time: 1731625265"),
    ({"stationID": "CAWEC2", "time_intervals": [["2025-11-15T00:59:00.0", "2025-11-14T23:01:05.0"]]},
     "end before start"),
])
def test_malformed_interval_files(bad, what):
    source = "extracted_data/CA/CAWEC2/CAWEC2_20251114_230105_018000_detected/flux_time_intervals.json"
    with pytest.raises(GMNFormatError) as err:
        parse_interval_file(bad, source)
    assert str(err.value).startswith(source + ": ") and what in str(err.value)


def test_load_interval_file(tmp_path):
    path = tmp_path / INTERVAL_FILE_NAME
    path.write_text(json.dumps(RMS_INTERVALS))
    assert len(load_interval_file(path).intervals) == 2
    path.write_text("not json")
    with pytest.raises(GMNFormatError, match=r"flux_time_intervals\.json: malformed JSON"):
        load_interval_file(path)


# --- image names and target lists ---------------------------------------------------------


def test_image_names():
    image = parse_image_name("CAWEC2_20251106_234624_983.png")
    assert image.station == "CAWEC2" and image.timestamp == utc(2025, 11, 6, 23, 46, 24, 983000)
    assert image.name == "CAWEC2_20251106_234624_983.png"
    reference = parse_image_name("extracted_night/20251107_034624_983.png")
    assert reference.station is None and reference.timestamp == utc(2025, 11, 7, 3, 46, 24, 983000)
    assert reference.name == "20251107_034624_983.png"
    # Millisecond truncation, like RMS frame times, so names round-trip exactly.
    ts = utc(2025, 11, 6, 23, 46, 24, 983999)
    assert format_image_name("CAWEC2", ts) == "CAWEC2_20251106_234624_983.png"
    assert parse_image_name(format_image_name("CAWEC2", ts)).timestamp == frame_time_at(ts)


@pytest.mark.parametrize("bad", [
    "CAWEC2_20251106_234624_983.jpg", "CAWEC2_20251106_234624.png", "CAWEC2-20251106_234624_983.png",
    "CAWEC2_20251106_246024_983.png", "cawec2_20251106_234624_983.png", "20251106_234624_98.png",
])
def test_malformed_image_names(bad):
    with pytest.raises(GMNFormatError, match=r"labels\.csv: malformed image name") as err:
        parse_image_name(bad, "labels.csv")
    assert repr(bad) in str(err.value)


def test_target_lists():
    text = ("# images to extract\n\nimage_filename,label\n"
            "CAWEC2_20251106_234624_983.png,clear\n20251107_034624_983.png\n"
            "US0001_20251106_230000_000.png, cloudy \n")
    targets = parse_target_list(text, "targets.csv")
    assert [(t.station, label) for t, label in targets] == [
        ("CAWEC2", "clear"), (None, None), ("US0001", "cloudy")]
    assert parse_target_list("filename\n20251107_034624_983.png\n")[0][1] is None
    with pytest.raises(GMNFormatError, match=r"targets\.csv:3: malformed image name: 'bad\.png'"):
        parse_target_list("CAWEC2_20251106_234624_983.png\n\nbad.png,clear\n", "targets.csv")
    with pytest.raises(GMNFormatError, match=r"line 2: malformed image name: 'image_filename'"):
        parse_target_list("CAWEC2_20251106_234624_983.png\nimage_filename,label\n")


def test_find_night_folder_anywhere_in_a_path_nearest_the_file_wins():
    found = find_night_folder(
        "data/flux_time_intervals/CAWEC2_20251114_230105_018000_detected/"
        "CAWEC2_20251115_230105_018000_detected_flux_time_intervals.json"
    )
    assert found is not None
    assert found.capture_id == "CAWEC2_20251115_230105_018000"
    assert find_night_folder("data/flux_time_intervals/notes.json") is None
