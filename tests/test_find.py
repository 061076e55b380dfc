"""Capture-session discovery: the all-cloudy sorting, `find` end to end over SFTP from a real
sshd (refetching a changed interval file), and on local archives: sessions selected whole,
night folder suffixes, per-country roots, files that cannot be tied to a session."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys

import fixtures_sshd
import pytest
from fixtures_sshd import make_detected, make_small_archive, make_timelapse, prep_config

from data_prep import filter_cloudy, find
from data_prep.nights.interval_files import sort_all_cloudy
from gmn_base.sessions import NIGHT_RULE

sshd_server = fixtures_sshd.sshd_server  # the module's loopback sshd (a pytest fixture)


@pytest.fixture(autouse=True)
def no_agent(monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def read_nights(data) -> dict[tuple[str, str], dict]:
    with (data / "nights.csv").open() as fh:
        return {(r["station"], r["night"]): r for r in csv.DictReader(fh)}


def local_source(root, flux="extracted_data/CA", video="contrails/CA") -> list[str]:
    # Quoted: "{country}" in an unquoted override would read as a dictionary.
    return ["source=local", f"source.root={root}", f"source.flux_root='{flux}'",
            f"source.video_root='{video}'"]


def test_filter_cloudy_moves_only_empty_interval_files(tmp_path):
    flux = tmp_path / "server"
    for night, intervals in (("20251105", [("20251105_233000", "20251106_013000")]),
                             ("20251106", [])):
        folder = make_detected(flux, "CAWEC2", f"{night}_225900", intervals)
        (tmp_path / f"{folder.name}_flux_time_intervals.json").write_bytes(
            (folder / "flux_time_intervals.json").read_bytes())
    (tmp_path / "broken_flux_time_intervals.json").write_text("{not json")
    result = sort_all_cloudy(tmp_path)
    assert [p.name for p in result.moved] == \
        ["CAWEC2_20251106_225900_000000_detected_flux_time_intervals.json"]
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "CAWEC2_20251105_225900_000000_detected_flux_time_intervals.json",
        "broken_flux_time_intervals.json"]
    assert (tmp_path / "all_cloudy_time_intervals" / result.moved[0].name).is_file()
    assert len(result.errors) == 1 and "broken_flux_time_intervals.json" in result.errors[0]
    # A file of the all-cloudy folder that has intervals again (fixed, fetched again) moves back.
    moved = tmp_path / "all_cloudy_time_intervals" / result.moved[0].name
    moved.write_text(json.dumps({"stationID": "CAWEC2", "time_intervals": [
        ["2025-11-06T23:00:00.000000", "2025-11-07T01:00:00.000000"]]}))
    again = sort_all_cloudy(tmp_path)
    assert [p.name for p in again.moved_back] == [moved.name] and (tmp_path / moved.name).is_file()


def test_filter_cloudy_command_works_on_any_folder(tmp_path):
    folder = make_detected(tmp_path / "server", "US0001", "20251105_225900", [])
    target = tmp_path / "some" / "folder"
    target.mkdir(parents=True)
    name = "US0001_20251105_225900_000000_detected_flux_time_intervals.json"
    (target / name).write_bytes((folder / "flux_time_intervals.json").read_bytes())
    result = subprocess.run([sys.executable, "-m", "data_prep.filter_cloudy",
                             f"paths.data_dir={tmp_path / 'data'}", f"filter_cloudy.folder={target}"],
                            check=False, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "filter_cloudy: moved_all_cloudy=1, kept_with_intervals=0" in output
    assert (target / "all_cloudy_time_intervals" / name).is_file() and not (target / name).exists()


def test_filter_cloudy_defaults_to_find_interval_dir(tmp_path):
    summary = filter_cloudy.run(prep_config(tmp_path, [f"find.interval_dir={tmp_path / 'nowhere'}"]))
    assert summary.exit_code == 1
    assert summary.failures == [(f"{tmp_path / 'nowhere'}: interval folder not found "
                                 "(set filter_cloudy.folder)")]


def test_find_over_sftp_end_to_end(sshd_server, tmp_path):
    expected = make_small_archive(sshd_server.root)
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    data = tmp_path / "data"
    cfg = prep_config(data, sshd_server.source_overrides(known))
    summary = find.run(cfg)
    assert summary.ok, summary.failures
    assert summary.counts["fetched"] == 6 and summary.counts["moved_all_cloudy"] == 2
    assert summary.counts["sessions"] == 6 and summary.counts["restarts"] == 0

    intervals = data / "flux_time_intervals"
    kept = sorted(p.name for p in intervals.glob("*.json"))
    cloudy = sorted(p.name for p in (intervals / "all_cloudy_time_intervals").glob("*.json"))
    assert kept == sorted(f"{st}_{n}_225900_000000_detected_flux_time_intervals.json"
                          for st, n in expected["good"])
    assert cloudy == sorted(f"{st}_{n}_225900_000000_detected_flux_time_intervals.json"
                            for st, n in expected["cloudy"])
    good = json.loads((data / "good_weather_dates.json").read_text())
    assert good == {"night_rule": NIGHT_RULE, "CAWEC2": ["20251105", "20251107"],
                    "US0001": ["20251106", "20251108"]}
    rows = read_nights(data)
    assert set(rows) == expected["good"] | expected["cloudy"]
    first = rows[("CAWEC2", "20251105")]
    assert first["clear_minutes"] == "120.0" and first["night_rule"] == NIGHT_RULE
    assert first["session"] == "CAWEC2_20251105_225900_000000"
    assert first["start"] == "2025-11-05T22:59:00.000000+00:00"
    # The end of capture comes from the timelapse names: the night one ends at 09:00.
    assert first["end"] == "2025-11-06T09:00:00.000000+00:00"
    assert rows[("CAWEC2", "20251106")]["all_cloudy"] == "true"
    assert rows[("CAWEC2", "20251106")]["interval_files"].startswith("all_cloudy_time_intervals/")

    # A rerun fetches nothing (each copy still matches the server's size and mtime) and writes
    # the same tables.
    before = (data / "nights.csv").read_text()
    again = find.run(cfg)
    assert again.ok and again.counts.get("fetched", 0) == 0 and again.counts["already_fetched"] == 6
    assert (data / "nights.csv").read_text() == before


def test_find_fetches_again_an_interval_file_fixed_on_the_server(sshd_server, tmp_path):
    make_small_archive(sshd_server.root)
    server_file = (sshd_server.root / "home/extracted_data/CA/US0001/"
                   "US0001_20251106_225900_000000_detected/flux_time_intervals.json")
    good_text = server_file.read_text()
    server_file.write_text('{"stationID": "US0001", "time_intervals": [[')  # malformed
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    data = tmp_path / "data"
    cfg = prep_config(data, sshd_server.source_overrides(known))
    broken = find.run(cfg)
    local = data / "flux_time_intervals" / "US0001_20251106_225900_000000_detected_flux_time_intervals.json"
    assert broken.exit_code == 1 and any(str(local) in f for f in broken.failures)
    assert ("US0001", "20251106") not in {k for k, r in read_nights(data).items()
                                          if r["interval_files"]}

    server_file.write_text(good_text)  # fixed on the server: other size, newer mtime
    os.utime(server_file, (1_900_000_000, 1_900_000_000))
    fixed = find.run(cfg)
    assert fixed.ok, fixed.failures
    assert fixed.counts["fetched_again"] == 1 and fixed.counts["already_fetched"] == 5
    assert local.read_text() == good_text
    assert read_nights(data)[("US0001", "20251106")]["clear_minutes"] == "120.0"


def test_find_last_n_and_missing_interval_file(sshd_server, tmp_path, caplog):
    make_small_archive(sshd_server.root)
    flux = sshd_server.root / "home/extracted_data/CA"
    make_detected(flux, "US0001", "20251120_225900", None)  # RMS wrote no interval file
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    cfg = prep_config(tmp_path / "data", sshd_server.source_overrides(known) + [
        "source.stations=[US0001]", "find.last_n=2"])
    with caplog.at_level(logging.WARNING):
        summary = find.run(cfg)
    assert summary.ok, summary.failures
    assert summary.counts["sessions"] == 2 and summary.counts["captures_without_interval_file"] == 1
    assert "no interval file for capture US0001_20251120_225900_000000" in caplog.text
    good = json.loads((tmp_path / "data/good_weather_dates.json").read_text())
    assert good == {"night_rule": NIGHT_RULE, "US0001": ["20251108"]}
    missing = read_nights(tmp_path / "data")[("US0001", "20251120")]
    assert missing["missing_interval_files"] == "US0001_20251120_225900_000000"
    assert missing["interval_files"] == "" and missing["all_cloudy"] == "false"


def test_find_rejects_hostile_remote_names(sshd_server, tmp_path):
    make_small_archive(sshd_server.root)
    flux = sshd_server.root / "home/extracted_data/CA"
    hostile = flux / "CAWEC2" / "..\\..\\CAWEC2_20251130_225900_000000_detected"
    hostile.mkdir()
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    cfg = prep_config(tmp_path / "data", sshd_server.source_overrides(known))
    summary = find.run(cfg)
    hostile.rmdir()
    assert not summary.ok and summary.counts["rejected_names"] == 1
    assert any(repr(hostile.name) in f and "rejected remote name" in f for f in summary.failures)
    written = [p for p in tmp_path.rglob("*") if "20251130" in p.name]
    assert written == []  # nothing of it reached the disk
    # The good nights were still found.
    assert json.loads((tmp_path / "data/good_weather_dates.json").read_text())["CAWEC2"] == \
        ["20251105", "20251107"]


def test_find_unknown_host_is_one_clear_failure(sshd_server, tmp_path):
    make_small_archive(sshd_server.root)
    cfg = prep_config(tmp_path / "data", sshd_server.source_overrides(tmp_path / "known_hosts"))
    summary = find.run(cfg)
    assert len(summary.failures) == 1 and "ssh-keyscan" in summary.failures[0]


def test_find_wrong_flux_root_is_named(tmp_path):
    (tmp_path / "archive").mkdir()
    cfg = prep_config(tmp_path, ["source=local", f"source.root={tmp_path / 'archive'}",
                                 "source.flux_root=nowhere/CA"])
    summary = find.run(cfg)
    assert summary.failures == [f"source.flux_root 'nowhere/CA' not found on local:{tmp_path / 'archive'}"]


def test_last_n_counts_sessions_and_keeps_a_restart_whole(tmp_path):
    # The night of the 7th restarted at 03:10 (two folders); the 8th is one capture.
    root = tmp_path / "archive"
    flux, video = root / "extracted_data/CA", root / "contrails/CA"
    make_detected(flux, "CAWEC2", "20251106_231500", [("20251106_233000", "20251107_013000")])
    make_detected(flux, "CAWEC2", "20251107_231502", [("20251107_233000", "20251108_010000")])
    make_detected(flux, "CAWEC2", "20251108_031000", [("20251108_033000", "20251108_050000")])
    make_detected(flux, "CAWEC2", "20251108_231500", [])
    for start in ("20251106_231510", "20251107_231510", "20251108_231510"):
        make_timelapse(video, "CAWEC2", start, hours=12)
    summary = find.run(prep_config(tmp_path, local_source(root) + ["find.last_n=2"]))
    assert summary.ok, summary.failures
    assert summary.counts["sessions"] == 2 and summary.counts["restarts"] == 1
    rows = read_nights(tmp_path)
    assert sorted(rows) == [("CAWEC2", "20251107"), ("CAWEC2", "20251108")]
    restarted = rows[("CAWEC2", "20251107")]
    assert restarted["night_folders"] == ("CAWEC2_20251107_231502_000000_detected;"
                                          "CAWEC2_20251108_031000_000000_detected")
    assert len(restarted["interval_files"].split(";")) == 2
    assert restarted["interval_count"] == "2" and restarted["clear_minutes"] == "180.0"
    assert rows[("CAWEC2", "20251108")]["all_cloudy"] == "true"
    # find.since/until compare night ids: the restart's folder date (the 8th) does not count.
    only = find.run(prep_config(tmp_path / "b", local_source(root) + [
        "find.since=20251107", "find.until=20251107"]))
    assert only.ok and sorted(read_nights(tmp_path / "b")) == [("CAWEC2", "20251107")]


def test_split_upload_folders_and_the_suffix_setting(tmp_path):
    root = tmp_path / "archive"
    flux = root / "extracted_data/CA"
    make_detected(flux, "CAWEC2", "20251106_231500", [("20251106_233000", "20251107_013000")],
                  suffix="_metadata")
    make_detected(flux, "CAWEC2", "20251106_231500", None, suffix="_imgdata")
    make_detected(flux, "CAWEC2", "20251107_231500", [], suffix="_detected")
    summary = find.run(prep_config(tmp_path, local_source(root)))
    assert summary.ok, summary.failures
    rows = read_nights(tmp_path)
    assert rows[("CAWEC2", "20251106")]["night_folders"] == (
        "CAWEC2_20251106_231500_000000_imgdata;CAWEC2_20251106_231500_000000_metadata")
    assert rows[("CAWEC2", "20251106")]["interval_files"] == \
        "CAWEC2_20251106_231500_000000_metadata_flux_time_intervals.json"
    only_detected = find.run(prep_config(tmp_path / "b", local_source(root) + [
        "source.night_folder_suffixes=[_detected]"]))
    assert only_detected.ok and sorted(read_nights(tmp_path / "b")) == [("CAWEC2", "20251107")]
    with pytest.raises(ValueError, match="source.night_folder_suffixes"):
        find.run(prep_config(tmp_path / "c", local_source(root) + [
            "source.night_folder_suffixes=[detected]"]))


def test_country_folders_follow_the_station(tmp_path):
    root = tmp_path / "archive"
    make_detected(root / "extracted_data/HR", "HR000A", "20251106_160130", [])
    make_detected(root / "extracted_data/CA", "CABC01", "20251107_011130", [])
    (root / "extracted_data/notes").mkdir()
    summary = find.run(prep_config(tmp_path, local_source(
        root, "extracted_data/{country}", "contrails/{country}")))
    assert summary.ok, summary.failures
    assert sorted(read_nights(tmp_path)) == [("CABC01", "20251107"), ("HR000A", "20251106")]
    assert summary.counts["stations_without_timelapses"] == 2


def test_an_interval_file_of_another_station_is_a_warning_naming_it(tmp_path, caplog):
    root = tmp_path / "archive"
    folder = make_detected(root / "extracted_data/CA", "US0001", "20251106_231500", [])
    (folder / "flux_time_intervals.json").write_text(
        json.dumps({"stationID": "CAWEC2", "time_intervals": []}))
    with caplog.at_level(logging.WARNING):
        summary = find.run(prep_config(tmp_path, local_source(root)))
    assert summary.ok and summary.counts["untied_interval_files"] == 1
    assert summary.counts["captures_without_interval_file"] == 1
    assert "US0001_20251106_231500_000000_detected_flux_time_intervals.json" in caplog.text
    assert "stationID CAWEC2 differs" in caplog.text
