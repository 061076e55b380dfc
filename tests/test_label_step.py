"""`data_prep.label` on hand-written archives (night folders, interval files, timelapse names,
found by `find`): each frame against its own capture session's intervals for stations in four
regions around 00:00 and 12:00 UTC, a restart, an all-cloudy session, a missing interval file;
bad inputs; a rerun that cannot read an interval file keeps its labels; the old night rule."""

import csv
import json
import logging
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fixtures_video import found_archive, prep_config

from data_prep import label
from data_prep.nights.nights_table import NightRuleError
from gmn_base.sessions import NIGHT_RULE

UTC = timezone.utc


def t(h, m, s=0, ms=0, day=6):
    return datetime(2025, 11, day, h, m, s, ms * 1000, tzinfo=UTC)


def touch_images(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")  # labelling reads names only


def read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_labels_per_session_with_inclusive_ends(tmp_path):
    found_archive(tmp_path, [
        ("CAWEC2", t(22, 0), [(t(22, 0), t(23, 0, 0, 500)), (t(0, 30, day=7), t(1, 0, day=7))]),
        ("US0001", t(22, 15), [(t(23, 30), t(23, 45))]),
        ("US0002", t(22, 15), [])])
    touch_images(tmp_path / "extracted_night",
                 "CAWEC2_20251106_220000_000.png",   # start instant
                 "CAWEC2_20251106_230000_500.png",   # end instant
                 "CAWEC2_20251106_230000_501.png",   # a millisecond after the end
                 "CAWEC2_20251107_004500_000.png",   # after midnight: the same session
                 "US0001_20251106_230000_000.png",   # same instant, other station: cloudy
                 "US0001_20251106_234000_000.png",
                 "US0002_20251106_234000_000.png")   # all-cloudy session
    summary = label.run(prep_config(tmp_path))
    assert summary.ok, summary.failures
    rows = read_rows(tmp_path / "extracted_night_labels.csv")
    assert list(rows[0]) == ["image_filename", "label", "station", "night", "timestamp",
                             "edge_distance_s", "night_rule"]
    got = {r["image_filename"]: (r["label"], r["night"], float(r["edge_distance_s"]))
           for r in rows}
    assert got == {
        "CAWEC2_20251106_220000_000.png": ("clear", "20251106", 0.0),
        "CAWEC2_20251106_230000_500.png": ("clear", "20251106", 0.0),
        "CAWEC2_20251106_230000_501.png": ("cloudy", "20251106", -0.001),
        "CAWEC2_20251107_004500_000.png": ("clear", "20251106", 900.0),
        "US0001_20251106_230000_000.png": ("cloudy", "20251106", -1800.0),
        "US0001_20251106_234000_000.png": ("clear", "20251106", 300.0),
        "US0002_20251106_234000_000.png": ("cloudy", "20251106", float("-inf")),
    }
    assert rows[0]["timestamp"] == "2025-11-06T22:00:00.000+00:00"
    assert {r["night_rule"] for r in rows} == {NIGHT_RULE}
    assert summary.counts["clear"] == 4 and summary.counts["cloudy"] == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def ms_before(ts):
    return ts - timedelta(milliseconds=1)


def ms_after(ts):
    return ts + timedelta(milliseconds=1)


def name(station, ts):
    return f"{station}_{ts:%Y%m%d_%H%M%S}_{ts.microsecond // 1000:03d}.png"


WORLD_CAPTURES = [
    # Croatia: dusk 16:01 UTC, RMS restarted at 23:39 (two folders, one night).
    ("HR000A", t(16, 1, 28), [(t(16, 30), t(23, 30))]),
    ("HR000A", t(23, 39, 22), [(t(23, 59), t(0, 30, day=7))]),
    # Western Canada: 01:10 to 14:43 UTC, across 12:00 UTC.
    ("CABC01", t(1, 10, 30, day=7), [(t(10, 0, day=7), t(13, 0, day=7))]),
    # Western Australia: 11:11 to 20:49 UTC, across 12:00 UTC; cloudy all night.
    ("AU000A", t(11, 11, 6), []),
    # Ontario: 22:35 to 11:44 UTC, across 00:00 UTC; a restart at 03:00 whose file is missing.
    ("CAWEC2", t(22, 35, 9), [(t(23, 0), t(0, 30, day=7))]),
    ("CAWEC2", t(3, 0, 0, day=7), None),
]
WORLD_TIMELAPSES = [
    ("HR000A", t(16, 1, 29), t(5, 20, 0, day=7)),
    ("CABC01", t(1, 10, 31, day=7), t(14, 43, 47, day=7)),
    ("AU000A", t(11, 11, 7), t(20, 48, 59)),
    ("CAWEC2", t(22, 35, 10), t(11, 44, 20, day=7)),
]


def test_frames_around_00_and_12_utc_in_four_regions(tmp_path, caplog):
    found_archive(tmp_path, WORLD_CAPTURES, WORLD_TIMELAPSES)
    midnight, noon = t(0, 0, day=7), t(12, 0, day=7)
    expected = {
        # Both sides of 00:00 UTC, in the restart's capture: the same Croatian night.
        name("HR000A", ms_before(midnight)): ("clear", "20251106"),
        name("HR000A", ms_after(midnight)): ("clear", "20251106"),
        name("HR000A", t(23, 35)): ("cloudy", "20251106"),         # first capture, no interval
        # Both sides of 12:00 UTC: one Canadian night (the clock rule split it in two), and
        # 14:00 UTC still belongs to it (the clock rule labelled it from the next night).
        name("CABC01", ms_before(noon)): ("clear", "20251107"),
        name("CABC01", ms_after(noon)): ("clear", "20251107"),
        name("CABC01", t(14, 0, day=7)): ("cloudy", "20251107"),
        # Australia: across 12:00 UTC on the 6th, an all-cloudy session.
        name("AU000A", ms_before(t(12, 0))): ("cloudy", "20251106"),
        name("AU000A", ms_after(t(12, 0))): ("cloudy", "20251106"),
        # Ontario: across 00:00 UTC.
        name("CAWEC2", ms_before(midnight)): ("clear", "20251106"),
        name("CAWEC2", ms_after(midnight)): ("clear", "20251106"),
    }
    in_missing_capture = name("CAWEC2", t(4, 0, day=7))
    touch_images(tmp_path / "extracted_night", *expected, in_missing_capture)
    with caplog.at_level(logging.WARNING):
        summary = label.run(prep_config(tmp_path))
    rows = read_rows(tmp_path / "extracted_night_labels.csv")
    assert {r["image_filename"]: (r["label"], r["night"]) for r in rows} == expected
    edge = {r["image_filename"]: float(r["edge_distance_s"]) for r in rows}
    assert edge[name("CABC01", t(14, 0, day=7))] == -3600.0
    assert edge[name("AU000A", ms_after(t(12, 0)))] == float("-inf")
    # The frame in the capture without interval file is reported, never guessed cloudy.
    assert summary.exit_code == 1 and summary.counts["left_out"] == 1
    assert in_missing_capture in summary.failures[0]
    assert "no interval file for capture CAWEC2_20251107_030000_000000" in summary.failures[0]


def test_missing_session_and_stationless_names_are_left_out_and_fail(tmp_path):
    found_archive(tmp_path, [("CAWEC2", t(22, 0), [(t(22, 0), t(23, 0))])],
                  [("CAWEC2", t(22, 0, 5), t(9, 0, day=7))])
    touch_images(tmp_path / "extracted_night",
                 "CAWEC2_20251106_223000_000.png",
                 "CAWEC2_20251107_223000_000.png",   # the next evening: no session found
                 "20251106_223000_000.png")          # reference name, no station
    summary = label.run(prep_config(tmp_path))
    assert summary.exit_code == 1 and summary.counts["left_out"] == 2
    text = "\n".join(summary.failures)
    assert "CAWEC2_20251107_223000_000.png" in text and "no capture session" in text
    assert "20251106_223000_000.png" in text and "label.station" in text
    rows = read_rows(tmp_path / "extracted_night_labels.csv")
    assert [r["image_filename"] for r in rows] == ["CAWEC2_20251106_223000_000.png"]

    with_station = label.run(prep_config(tmp_path, label__station="CAWEC2"))
    rows = read_rows(tmp_path / "extracted_night_labels.csv")
    assert {r["image_filename"]: r["station"] for r in rows} == {
        "CAWEC2_20251106_223000_000.png": "CAWEC2", "20251106_223000_000.png": "CAWEC2"}
    assert with_station.counts["left_out"] == 1


def test_malformed_and_untied_interval_files_are_named_and_the_rest_labelled(tmp_path, caplog):
    root = found_archive(tmp_path, [("CAWEC2", t(22, 0), [(t(22, 0), t(23, 0))]),
                                    ("US0001", t(22, 0), []), ("US0002", t(22, 0), [])])
    flux = tmp_path / "flux_time_intervals"
    broken = flux / "all_cloudy_time_intervals" / \
        "US0001_20251106_220000_000000_detected_flux_time_intervals.json"
    broken.write_text('{"stationID": "US0001", "time_intervals": [[')
    wrong = flux / "all_cloudy_time_intervals" / \
        "US0002_20251106_220000_000000_detected_flux_time_intervals.json"
    wrong.write_text(json.dumps({"stationID": "US0003", "time_intervals": []}))
    stray = flux / "notes.json"
    stray.write_text("{}")
    assert root.is_dir()
    touch_images(tmp_path / "extracted_night", "CAWEC2_20251106_223000_000.png",
                 "US0001_20251106_223000_000.png", "US0002_20251106_223000_000.png")
    with caplog.at_level(logging.WARNING):
        summary = label.run(prep_config(tmp_path))
    text = "\n".join(summary.failures)
    assert summary.exit_code == 1 and str(broken) in text
    # Files no session takes are warnings naming them, counted.
    assert summary.counts["untied_interval_files"] == 2
    assert str(wrong) in caplog.text and "stationID US0003" in caplog.text
    assert str(stray) in caplog.text
    rows = read_rows(tmp_path / "extracted_night_labels.csv")
    assert [(r["image_filename"], r["label"]) for r in rows] == [
        ("CAWEC2_20251106_223000_000.png", "clear")]


def test_a_rerun_keeps_the_labels_of_a_capture_whose_file_turned_unreadable(tmp_path):
    found_archive(tmp_path, [("CAWEC2", t(22, 0), [(t(22, 0), t(23, 0))]),
                             ("US0001", t(22, 0), [(t(23, 0), t(23, 30))])])
    names = [f"{st}_20251106_{hhmm}00_000.png" for st in ("CAWEC2", "US0001")
             for hhmm in ("2230", "2310", "2350")]
    touch_images(tmp_path / "extracted_night", *names)
    assert label.run(prep_config(tmp_path)).ok
    output = tmp_path / "extracted_night_labels.csv"
    before = read_rows(output)
    assert len(before) == 6
    damaged = tmp_path / "flux_time_intervals" / \
        "US0001_20251106_220000_000000_detected_flux_time_intervals.json"
    damaged.write_text('{"stationID": "US0001", "time_')

    again = label.run(prep_config(tmp_path))
    assert again.exit_code == 1 and again.counts["kept_previous"] == 3
    kept = next(f for f in again.failures if "kept the previous labels" in f)
    assert "US0001_20251106_220000_000000" in kept and str(damaged) in kept
    assert read_rows(output) == before  # nothing shrank


def test_a_nights_csv_of_the_old_clock_rule_is_refused_with_what_to_rerun(tmp_path):
    found_archive(tmp_path, [("CAWEC2", t(22, 0), [(t(22, 0), t(23, 0))])])
    touch_images(tmp_path / "extracted_night", "CAWEC2_20251106_223000_000.png")
    (tmp_path / "nights.csv").write_text(
        "station,night,detected_folders,interval_files,interval_count,clear_minutes,all_cloudy\n"
        "CAWEC2,20251106,CAWEC2_20251106_220000_000000_detected,x.json,1,60.0,false\n")
    with pytest.raises(NightRuleError, match=r"nights\.csv was written by an older night rule.*"
                                             r"rerun `python -m data_prep\.find`"):
        label.run(prep_config(tmp_path))
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "data_prep.label", f"paths.data_dir={tmp_path}"],
        check=False, capture_output=True, text=True, timeout=120, cwd=root,
        env=dict(os.environ, PYTHONPATH=str(root)))
    assert result.returncode == 2 and "older night rule" in result.stdout + result.stderr


def test_a_labels_table_of_the_old_rule_is_relabelled_whole(tmp_path, caplog):
    found_archive(tmp_path, [("CAWEC2", t(22, 0), [(t(22, 0), t(23, 0))])])
    touch_images(tmp_path / "extracted_night", "CAWEC2_20251106_223000_000.png",
                 "CAWEC2_20251107_223000_000.png")
    output = tmp_path / "extracted_night_labels.csv"
    output.write_text("image_filename,label,station,night,timestamp,edge_distance_s\n"
                      "CAWEC2_20251107_223000_000.png,clear,CAWEC2,20251107,x,5.0\n")
    with caplog.at_level(logging.WARNING):
        summary = label.run(prep_config(tmp_path))
    assert summary.counts["old_rule_table_replaced"] == 1
    assert "older night rule (no night_rule" in caplog.text
    rows = read_rows(output)
    assert [(r["image_filename"], r["night_rule"]) for r in rows] == [
        ("CAWEC2_20251106_223000_000.png", NIGHT_RULE)]  # none of the old rows kept


def test_command_line_prints_balance_per_station(tmp_path):
    found_archive(tmp_path, [("CAWEC2", t(22, 0), [(t(22, 0), t(23, 0))]),
                             ("US0001", t(22, 0), [])])
    touch_images(tmp_path / "extracted_night", "CAWEC2_20251106_223000_000.png",
                 "CAWEC2_20251106_233000_000.png", "US0001_20251106_223000_000.png")
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "data_prep.label", f"paths.data_dir={tmp_path}"],
        check=False, capture_output=True, text=True, timeout=120, cwd=root,
        env=dict(os.environ, PYTHONPATH=str(root)))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:4] == ["CAWEC2", "1", "1", "50.0"] for line in lines)
    assert any(line.split()[:4] == ["US0001", "0", "1", "0.0"] for line in lines)
    assert len(read_rows(tmp_path / "extracted_night_labels.csv")) == 3


def test_extract_and_label_read_the_interval_folder_and_sessions_find_writes(tmp_path):
    elsewhere = tmp_path / "my_intervals"
    cfg = prep_config(tmp_path, find__interval_dir=str(elsewhere),
                      find__nights_csv=str(tmp_path / "n.csv"))
    assert cfg.extract.intervals_dir == cfg.label.intervals_dir == str(elsewhere)
    assert cfg.extract.nights_csv == cfg.label.nights_csv == str(tmp_path / "n.csv")
    default = prep_config(tmp_path)
    assert default.label.intervals_dir == str(tmp_path / "flux_time_intervals")


def test_label_table_written_by_label_is_read_back_by_the_local_converter(tmp_path):
    from data_prep.nights.label_rules import LabelRow
    from data_prep.nights.label_table import (
        LABEL_COLUMNS,
        clear_frames_by_station,
        labels_csv_text,
        read_previous_labels,
    )

    rows = [LabelRow("AA0001_20251106_223000_000.png", "clear", "AA0001", "20251106",
                     "2025-11-06T22:30:00.000+00:00", 30.0),
            LabelRow("AA0001_20251106_233000_000.png", "cloudy", "AA0001", "20251106",
                     "2025-11-06T23:30:00.000+00:00", float("-inf")),
            LabelRow("BB0002_20251106_223000_000.png", "clear", "BB0002", "20251106",
                     "2025-11-06T22:30:00.000+00:00", 0.0)]
    table = tmp_path / "extracted_night_labels.csv"
    table.write_text(labels_csv_text(rows))
    with table.open() as fh:
        read = list(csv.DictReader(fh))
    assert tuple(read[0]) == LABEL_COLUMNS and read[1]["edge_distance_s"] == "-inf"
    assert list(read_previous_labels(table).rows.values()) == rows
    assert clear_frames_by_station(table) == {"AA0001": [rows[0].image_filename],
                                              "BB0002": [rows[2].image_filename]}
    table.write_text("image_filename,label\nx.png,clear\n")
    with pytest.raises(ValueError, match="no column.*station.*expected the label step's output"):
        clear_frames_by_station(table)
