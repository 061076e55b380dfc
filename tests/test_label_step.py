"""`data_prep.label` on files: interval lookup by station-night, boundaries, bad inputs."""

import csv
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fixtures_video import prep_config

from data_prep import label
from gmn_base.formats import format_interval_file

UTC = timezone.utc


def t(h, m, s=0, ms=0, day=6):
    return datetime(2025, 11, day, h, m, s, ms * 1000, tzinfo=UTC)


def write_intervals(folder, name, station, intervals):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(format_interval_file(station, intervals)))


def touch_images(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")  # labelling reads names only


def read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_labels_per_station_night_with_inclusive_ends(tmp_path):
    flux = tmp_path / "flux_time_intervals"
    write_intervals(flux, "CAWEC2_20251106_220000_000000_detected_flux_time_intervals.json",
                    "CAWEC2", [(t(22, 0), t(23, 0, 0, 500)), (t(0, 30, day=7), t(1, 0, day=7))])
    write_intervals(flux, "US0001_20251106_221500_000000_detected_flux_time_intervals.json",
                    "US0001", [(t(23, 30), t(23, 45))])
    write_intervals(flux / "all_cloudy_time_intervals",
                    "US0002_20251106_221500_000000_detected_flux_time_intervals.json",
                    "US0002", [])
    touch_images(tmp_path / "extracted_night",
                 "CAWEC2_20251106_220000_000.png",   # start instant
                 "CAWEC2_20251106_230000_500.png",   # end instant
                 "CAWEC2_20251106_230000_501.png",   # a millisecond after the end
                 "CAWEC2_20251107_004500_000.png",   # after midnight: night of the 6th
                 "US0001_20251106_230000_000.png",   # same instant, other station: cloudy
                 "US0001_20251106_234000_000.png",
                 "US0002_20251106_234000_000.png")   # all-cloudy night
    summary = label.run(prep_config(tmp_path))
    assert summary.ok, summary.failures
    rows = read_rows(tmp_path / "extracted_night_labels.csv")
    assert list(rows[0]) == ["image_filename", "label", "station", "night", "timestamp",
                             "edge_distance_s"]
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
    assert summary.counts["clear"] == 4 and summary.counts["cloudy"] == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_missing_night_and_stationless_names_are_left_out_and_fail(tmp_path):
    flux = tmp_path / "flux_time_intervals"
    write_intervals(flux, "CAWEC2_20251106_220000_000000_detected.json", "CAWEC2",
                    [(t(22, 0), t(23, 0))])
    touch_images(tmp_path / "extracted_night",
                 "CAWEC2_20251106_223000_000.png",
                 "CAWEC2_20251107_223000_000.png",   # night of the 7th: no file
                 "20251106_223000_000.png")          # reference name, no station
    summary = label.run(prep_config(tmp_path))
    assert summary.exit_code == 1 and summary.counts["left_out"] == 2
    text = "\n".join(summary.failures)
    assert "CAWEC2_20251107_223000_000.png" in text and "20251107" in text
    assert "20251106_223000_000.png" in text and "label.station" in text
    rows = read_rows(tmp_path / "extracted_night_labels.csv")
    assert [r["image_filename"] for r in rows] == ["CAWEC2_20251106_223000_000.png"]

    with_station = label.run(prep_config(tmp_path, label__station="CAWEC2"))
    rows = read_rows(tmp_path / "extracted_night_labels.csv")
    assert {r["image_filename"]: r["station"] for r in rows} == {
        "CAWEC2_20251106_223000_000.png": "CAWEC2", "20251106_223000_000.png": "CAWEC2"}
    assert with_station.counts["left_out"] == 1


def test_malformed_interval_file_is_named_and_the_rest_labelled(tmp_path):
    flux = tmp_path / "flux_time_intervals"
    write_intervals(flux, "CAWEC2_20251106_220000_000000_detected.json", "CAWEC2",
                    [(t(22, 0), t(23, 0))])
    broken = flux / "US0001_20251106_220000_000000_detected.json"
    broken.write_text('{"stationID": "US0001", "time_intervals": [[')
    wrong = flux / "US0002_20251106_220000_000000_detected.json"
    wrong.write_text(json.dumps(format_interval_file("US0003", [])))
    touch_images(tmp_path / "extracted_night", "CAWEC2_20251106_223000_000.png",
                 "US0001_20251106_223000_000.png", "US0002_20251106_223000_000.png")
    summary = label.run(prep_config(tmp_path))
    text = "\n".join(summary.failures)
    assert summary.exit_code == 1
    assert str(broken) in text and str(wrong) in text and "US0003" in text
    rows = read_rows(tmp_path / "extracted_night_labels.csv")
    assert [(r["image_filename"], r["label"]) for r in rows] == [
        ("CAWEC2_20251106_223000_000.png", "clear")]


def test_command_line_prints_balance_per_station(tmp_path):
    flux = tmp_path / "flux_time_intervals"
    write_intervals(flux, "CAWEC2_20251106_220000_000000_detected.json", "CAWEC2",
                    [(t(22, 0), t(23, 0))])
    write_intervals(flux, "US0001_20251106_220000_000000_detected.json", "US0001", [])
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


def test_extract_and_label_read_the_interval_folder_find_writes(tmp_path):
    elsewhere = tmp_path / "my_intervals"
    cfg = prep_config(tmp_path, find__interval_dir=str(elsewhere))
    assert cfg.extract.intervals_dir == cfg.label.intervals_dir == str(elsewhere)
    default = prep_config(tmp_path)
    assert default.label.intervals_dir == str(tmp_path / "flux_time_intervals")


def test_label_table_written_by_label_is_read_back_by_the_local_converter(tmp_path):
    from data_prep.nights.label_rules import LabelRow
    from data_prep.nights.label_table import LABEL_COLUMNS, clear_frames_by_station, labels_csv_text

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
    assert clear_frames_by_station(table) == {"AA0001": [rows[0].image_filename],
                                              "BB0002": [rows[2].image_filename]}
    table.write_text("image_filename,label\nx.png,clear\n")
    with pytest.raises(ValueError, match="no column.*station.*expected the label step's output"):
        clear_frames_by_station(table)
