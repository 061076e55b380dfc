"""Download planning: each targeting mode gives the expected manifest rows (local source,
the same layout the SFTP tests serve), timelapses told night or day by capture sessions (never
the UTC hour), packages and daily timelapses, plus the pure round-robin and listing code."""

from __future__ import annotations

import csv
import tarfile
from datetime import datetime, timezone

import pytest
from fixtures_sshd import make_detected, make_small_archive, make_timelapse, prep_config

from data_prep import find, plan
from data_prep.nights.night_listing import station_folders
from data_prep.nights.target_lists import read_target_lists
from data_prep.nights.timelapse_choice import (
    ChosenTimelapse,
    round_robin,
    station_timelapses,
    timelapse_files,
)
from data_prep.remote.source import RemoteEntry
from data_prep.summary import StepSummary
from gmn_base.night_folders import NightFolder
from gmn_base.sessions import CaptureSession
from gmn_base.timelapse_names import Timelapse


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    make_small_archive(root)
    return root


@pytest.fixture
def found(archive, tmp_path):
    """A data dir on which `find` has run against the local archive; returns its overrides."""
    overrides = ["source=local", f"source.root={archive}", "source.video_root=home/contrails/CA",
                 "source.flux_root=home/extracted_data/CA"]
    summary = find.run(prep_config(tmp_path, overrides))
    assert summary.ok, summary.failures
    return overrides


def manifest(tmp_path) -> list[dict]:
    with (tmp_path / "download_manifest.csv").open() as fh:
        return list(csv.DictReader(fh))


def folders(rows) -> list[tuple[str, str, str]]:
    """(station, night, video start) per video row."""
    return [(r["station"], r["night"], r["remote_path"].rsplit("/", 1)[1][7:22])
            for r in rows if r["remote_path"].endswith("_frames_timelapse.mp4")]


def test_default_targets_every_night_with_both_cloudy_included(found, tmp_path, archive):
    summary = plan.run(prep_config(tmp_path, found))
    assert summary.ok, summary.failures
    rows = manifest(tmp_path)
    assert len(rows) == 12 and summary.counts["timelapses"] == 6
    assert sorted(folders(rows)) == [
        ("CAWEC2", "20251105", "20251105-230000"), ("CAWEC2", "20251106", "20251106-230000"),
        ("CAWEC2", "20251107", "20251107-230000"), ("US0001", "20251105", "20251105-230000"),
        ("US0001", "20251106", "20251106-230000"), ("US0001", "20251108", "20251108-230000")]
    first = rows[0]
    name = "CAWEC2_20251105-230000_to_20251106-090000_frames_timelapse.mp4"
    assert first["remote_path"] == ("home/contrails/CA/CAWEC2/"
                                    "CAWEC2_20251105_230000_to_20251106_090000/" + name)
    assert first["local_path"] == f"raw_data/{name}" and first["kind"] == "night"
    on_disk = archive / first["remote_path"]
    assert int(first["size"]) == on_disk.stat().st_size
    assert int(first["mtime"]) == int(on_disk.stat().st_mtime)
    assert rows[1]["local_path"].endswith("_frametimes.json")


def test_only_good_nights(found, tmp_path):
    summary = plan.run(prep_config(tmp_path, found + ["plan.only_good_nights=true"]))
    assert summary.ok
    assert sorted((s, n) for s, n, _ in folders(manifest(tmp_path))) == [
        ("CAWEC2", "20251105"), ("CAWEC2", "20251107"), ("US0001", "20251106"),
        ("US0001", "20251108")]


def test_target_lists_pick_the_nights_they_imply(found, tmp_path):
    listing = tmp_path / "targets.txt"
    # A station-less reference name (any station that has that night) and a named station,
    # whose 01:00 UTC frame belongs to the previous night.
    listing.write_text("20251106_234624_983.png,clear\nCAWEC2_20251108_010000_000.png,cloudy\n")
    summary = plan.run(prep_config(tmp_path, found + [f"plan.target_lists=[{listing}]"]))
    assert summary.ok, summary.failures
    assert sorted((s, n) for s, n, _ in folders(manifest(tmp_path))) == [
        ("CAWEC2", "20251106"), ("CAWEC2", "20251107"), ("US0001", "20251106")]


def test_target_list_night_not_found_is_a_failure(found, tmp_path):
    listing = tmp_path / "targets.txt"
    listing.write_text("CAWEC2_20251201_220000_000.png,clear\n")
    summary = plan.run(prep_config(tmp_path, found + [f"plan.target_lists=[{listing}]"]))
    assert not summary.ok and "CAWEC2_20251201_220000_000.png" in summary.failures[0]
    assert "no capture session" in summary.failures[0]
    assert manifest(tmp_path) == []


def test_day_kind_round_robin_after_good_nights(found, tmp_path):
    summary = plan.run(prep_config(tmp_path, found + ["plan.kind=day", "plan.max_videos=4"]))
    assert summary.ok, summary.failures
    rows = manifest(tmp_path)
    assert {r["kind"] for r in rows} == {"day"}
    # Each the daytime after a clear session, taken in turn across stations.
    assert folders(rows) == [
        ("CAWEC2", "20251105", "20251106-090010"), ("US0001", "20251106", "20251107-090010"),
        ("CAWEC2", "20251107", "20251108-090010"), ("US0001", "20251108", "20251109-090010")]


def test_folder_without_frame_times_is_left_out(tmp_path):
    root = tmp_path / "archive"
    make_small_archive(root)
    folder = make_timelapse(root / "home/contrails/CA", "US0001", "20251108_230000")
    for f in folder.glob("*_frametimes.json"):
        f.unlink()
    overrides = ["source=local", f"source.root={root}", "source.video_root=home/contrails/CA",
                 "source.flux_root=home/extracted_data/CA"]
    assert find.run(prep_config(tmp_path, overrides)).ok
    summary = plan.run(prep_config(tmp_path, overrides))
    assert summary.counts["incomplete_folders"] == 1 and summary.counts["timelapses"] == 5


def _chosen(station: str, day: int) -> ChosenTimelapse:
    start = datetime(2025, 11, day, 10, tzinfo=timezone.utc)
    session = CaptureSession(station, (NightFolder(station, start),))
    return ChosenTimelapse(Timelapse(station, start, start), session, "x")


def test_round_robin_interleaves_stations_and_caps():
    picked = round_robin({"US0001": [_chosen("US0001", 1)],
                          "CAWEC2": [_chosen("CAWEC2", 1), _chosen("CAWEC2", 2),
                                     _chosen("CAWEC2", 3)]}, limit=3)
    assert [(c.lapse.station, c.lapse.start.day) for c in picked] == [
        ("CAWEC2", 1), ("US0001", 1), ("CAWEC2", 2)]


def test_listings_keep_the_names_of_their_kind_and_pass_over_the_rest():
    names = ["CAWEC2_20251105_230000_to_20251106_090000", "US0001_20251105_230000_to_20251106_090000",
             "CAWEC2_20251104_230000_to_20251105_090000", "CAWEC2", "notes.txt", "CA-1",
             "CAWEC2_20251107-311_frames_timelapse.mp4",
             "CAWEC2_20251105_230000_to_20251106_090000_frametimes.json"]
    found = station_timelapses([RemoteEntry(n, 1, 0, False) for n in names], "CAWEC2")
    assert [name for _, name in found] == [names[2], names[0], names[6]]
    assert found[2][0].daily and found[2][0].kind == "video"
    assert station_folders(names) == ["CAWEC2"]
    lapse = found[1][0]
    entries = [RemoteEntry(n, 1, 0, False) for n in (
        "CAWEC2_20251105-230000_to_20251106-090000_frames_timelapse.mp4", "thumbs.db",
        "CAWEC2_20251105-230000_to_20251106-090000_timestamps.json")]
    video, frame_times = timelapse_files(entries, lapse)
    assert (video.name, frame_times.name) == (entries[0].name, entries[2].name)  # legacy map
    package = RemoteEntry("CAWEC2_20251105-230000_to_20251106-090000_frames_timelapse.tar", 1, 0,
                          False)
    assert timelapse_files([entries[0], package], lapse) == [package]  # no map: the package
    assert timelapse_files([entries[1]], lapse) == []


def test_night_and_day_by_capture_sessions_packages_and_daily_names(tmp_path):
    """A Croatian night starts 16:06 UTC (the UTC start-hour rule called it day), an
    Australian day starts 20:50 UTC (called night); a package and a daily video on the server."""
    root = tmp_path / "archive"  # the default layout: a folder per country
    flux, video = root / "extracted_data/HR", root / "contrails/HR"
    make_detected(flux, "HR000A", "20251107_160604", [("20251107_170000", "20251107_190000")])
    make_timelapse(video, "HR000A", "20251107_160610", hours=13)                 # night
    day_folder = make_timelapse(video, "HR000A", "20251108_051020", hours=10.9, flag="d")
    flux_au, video_au = root / "extracted_data/AU", root / "contrails/AU"
    make_detected(flux_au, "AU000A", "20251107_111200", [("20251107_120000", "20251107_140000")])
    night_folder = make_timelapse(video_au, "AU000A", "20251107_111210", hours=9.5)
    make_timelapse(video_au, "AU000A", "20251107_205000", hours=14, flag="d")    # day
    loose = sorted(night_folder.iterdir())   # the video and map, packed as RMS may ship them
    with tarfile.open(night_folder / loose[0].name.replace("_frames_timelapse.mp4",
                                                           "_frames_timelapse.tar"), "w") as tar:
        for f in loose:
            tar.add(f, arcname=f.name)
            f.unlink()
    daily = video / "HR000A" / "HR000A_20251107-311_frames_timelapse.mp4"  # one UTC day
    daily.write_bytes(b"daily")
    daily.with_name("HR000A_20251107-311_frametimes.json").write_text("{}")
    overrides = ["source=local", f"source.root={root}"]
    assert find.run(prep_config(tmp_path, overrides)).ok
    assert plan.run(prep_config(tmp_path, overrides)).ok
    rows = manifest(tmp_path)
    names = sorted((r["station"], r["night"], r["local_path"].split("/")[1]) for r in rows)
    assert names == [
        ("AU000A", "20251107", "AU000A_20251107-111210_to_20251107-204210_frames_timelapse.tar"),
        ("HR000A", "20251107", "HR000A_20251107-160610_to_20251108-050610_frames_timelapse.mp4"),
        ("HR000A", "20251107", "HR000A_20251107-160610_to_20251108-050610_frametimes.json"),
        ("HR000A", "20251107", "HR000A_20251107-311_frames_timelapse.mp4"),
        ("HR000A", "20251107", "HR000A_20251107-311_frametimes.json")]
    assert plan.run(prep_config(tmp_path, overrides + ["plan.kind=day"])).ok
    day = sorted(r["remote_path"].split("/")[-2] for r in manifest(tmp_path))
    assert day_folder.name in day and "AU000A_20251107_205000_to_20251108_105000" in day
    assert all(r["kind"] == "day" for r in manifest(tmp_path))


def test_one_target_list_key_for_plan_and_extract(tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text("CAWEC2_20251106_000000_000.png,clear\n")
    cfg = prep_config(tmp_path, [f"plan.target_lists=[{listing}]"])
    assert list(cfg.extract.target_lists) == [str(listing)]  # extract follows plan's lists
    # ... unless set on its own
    assert list(prep_config(tmp_path, ["extract.target_lists=[]"]).extract.target_lists) == []
    summary = StepSummary("x")
    images = read_target_lists([str(listing), str(tmp_path / "nowhere.csv")],
                               "extract.target_lists", summary)
    assert [(i.station, i.timestamp.day) for i in images] == [("CAWEC2", 6)]
    assert summary.failures == [f"extract.target_lists: {tmp_path / 'nowhere.csv'} not found"]
    (tmp_path / "bad.csv").write_text("not an image name,clear\n")
    read_target_lists([str(tmp_path / "bad.csv")], "plan.target_lists", summary)
    assert str(tmp_path / "bad.csv") in summary.failures[-1]
