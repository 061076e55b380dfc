"""Clear-night discovery: the pure selection and table code, the all-cloudy move, and
`find` end to end over SFTP from a real sshd."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import date

import fixtures_sshd
import pytest
from fixtures_sshd import make_detected, make_small_archive, prep_config

from data_prep import filter_cloudy, find
from data_prep.nights.detected_folders import select_detected
from data_prep.nights.interval_files import move_all_cloudy

sshd_server = fixtures_sshd.sshd_server  # the module's loopback sshd (a pytest fixture)


@pytest.fixture(autouse=True)
def no_agent(monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


NAMES = ["CAWEC2_20251103_225900_000000_detected", "CAWEC2_20251104_010000_123456_detected",
         "CAWEC2_20251105_225900_000000_detected", "US0001_20251105_225900_000000_detected",
         "notes", "CAWEC2_20251105_225900_000000_detected.tar.bz2"]


def test_select_detected_filters_station_range_and_last_n():
    picked = [f.name for f in select_detected(NAMES, "CAWEC2")]
    assert picked == NAMES[:3]
    # 01:00 UTC on the 4th belongs to the night of the 3rd.
    assert [f.night for f in select_detected(NAMES, "CAWEC2", since=date(2025, 11, 4))] == \
        [date(2025, 11, 5)]
    assert [f.name for f in select_detected(NAMES, "CAWEC2", until=date(2025, 11, 3))] == NAMES[:2]
    assert [f.name for f in select_detected(NAMES, "CAWEC2", last_n=2)] == NAMES[1:3]


def test_filter_cloudy_moves_only_empty_interval_files(tmp_path):
    flux = tmp_path / "server"
    for night, intervals in (("20251105", [("20251105_233000", "20251106_013000")]),
                             ("20251106", [])):
        folder = make_detected(flux, "CAWEC2", f"{night}_225900", intervals)
        (tmp_path / f"{folder.name}_flux_time_intervals.json").write_bytes(
            (folder / "flux_time_intervals.json").read_bytes())
    (tmp_path / "broken_flux_time_intervals.json").write_text("{not json")
    result = move_all_cloudy(tmp_path)
    assert [p.name for p in result.moved] == \
        ["CAWEC2_20251106_225900_000000_detected_flux_time_intervals.json"]
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "CAWEC2_20251105_225900_000000_detected_flux_time_intervals.json",
        "broken_flux_time_intervals.json"]
    assert (tmp_path / "all_cloudy_time_intervals" / result.moved[0].name).is_file()
    assert len(result.errors) == 1 and "broken_flux_time_intervals.json" in result.errors[0]


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

    intervals = data / "flux_time_intervals"
    kept = sorted(p.name for p in intervals.glob("*.json"))
    cloudy = sorted(p.name for p in (intervals / "all_cloudy_time_intervals").glob("*.json"))
    assert kept == sorted(f"{st}_{n}_225900_000000_detected_flux_time_intervals.json"
                          for st, n in expected["good"])
    assert cloudy == sorted(f"{st}_{n}_225900_000000_detected_flux_time_intervals.json"
                            for st, n in expected["cloudy"])
    good = json.loads((data / "good_weather_dates.json").read_text())
    assert good == {"CAWEC2": ["20251105", "20251107"], "US0001": ["20251106", "20251108"]}
    with (data / "nights.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["station"], r["night"]) for r in rows} == expected["good"] | expected["cloudy"]
    by_key = {(r["station"], r["night"]): r for r in rows}
    assert by_key[("CAWEC2", "20251105")]["clear_minutes"] == "120.0"
    assert by_key[("CAWEC2", "20251106")]["all_cloudy"] == "true"
    assert by_key[("CAWEC2", "20251106")]["interval_files"].startswith("all_cloudy_time_intervals/")

    # A rerun fetches nothing and writes the same tables.
    before = (data / "nights.csv").read_text()
    again = find.run(cfg)
    assert again.ok and again.counts.get("fetched", 0) == 0 and again.counts["already_fetched"] == 6
    assert (data / "nights.csv").read_text() == before


def test_find_last_n_and_missing_interval_file(sshd_server, tmp_path):
    make_small_archive(sshd_server.root)
    flux = sshd_server.root / "home/extracted_data/CA"
    make_detected(flux, "US0001", "20251120_225900", None)  # RMS wrote no interval file
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    cfg = prep_config(tmp_path / "data", sshd_server.source_overrides(known) + [
        "source.stations=[US0001]", "find.last_n=2"])
    summary = find.run(cfg)
    assert summary.ok, summary.failures
    assert summary.counts["detected_folders"] == 2 and summary.counts["no_interval_file"] == 1
    good = json.loads((tmp_path / "data/good_weather_dates.json").read_text())
    assert good == {"US0001": ["20251108"]}


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
