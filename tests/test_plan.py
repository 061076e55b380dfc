"""Download planning: each targeting mode gives the expected manifest rows (local source,
the same layout the SFTP tests serve), plus the pure pairing and round-robin code."""

from __future__ import annotations

import csv
from datetime import date, datetime, timezone

import pytest
from fixtures_sshd import make_small_archive, make_timelapse, prep_config

from data_prep import find, plan
from data_prep.nights.detected_folders import station_folders
from data_prep.nights.target_lists import read_target_lists
from data_prep.nights.timelapse_choice import (
    day_candidates,
    folder_files,
    round_robin,
    timelapse_folders,
)
from data_prep.remote.source import RemoteEntry
from data_prep.summary import StepSummary
from gmn_base.formats import Timelapse, format_night


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
    assert not summary.ok and "CAWEC2 night 20251201" in summary.failures[0]
    assert manifest(tmp_path) == []


def test_day_kind_round_robin_after_good_nights(found, tmp_path):
    summary = plan.run(prep_config(tmp_path, found + ["plan.kind=day", "plan.max_videos=4"]))
    assert summary.ok, summary.failures
    rows = manifest(tmp_path)
    assert {r["kind"] for r in rows} == {"day"}
    assert folders(rows) == [
        ("CAWEC2", "20251105", "20251106-100000"), ("US0001", "20251105", "20251106-100000"),
        ("CAWEC2", "20251106", "20251107-100000"), ("US0001", "20251106", "20251107-100000")]


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


def _lapse(station: str, day: int) -> Timelapse:
    start = datetime(2025, 11, day, 10, tzinfo=timezone.utc)
    return Timelapse(station, start, start)


def test_round_robin_interleaves_stations_and_caps():
    picked = round_robin({"US0001": [_lapse("US0001", 1)],
                          "CAWEC2": [_lapse("CAWEC2", 1), _lapse("CAWEC2", 2), _lapse("CAWEC2", 3)]},
                         limit=3)
    assert [(t.station, t.start.day) for t in picked] == [("CAWEC2", 1), ("US0001", 1), ("CAWEC2", 2)]
    assert day_candidates([_lapse("CAWEC2", 5), _lapse("CAWEC2", 7)], {date(2025, 11, 4)}) == \
        [_lapse("CAWEC2", 5)]


def test_listings_keep_the_names_of_their_kind_and_pass_over_the_rest():
    names = ["CAWEC2_20251105_230000_to_20251106_090000", "US0001_20251105_230000_to_20251106_090000",
             "CAWEC2_20251104_230000_to_20251105_090000", "CAWEC2", "notes.txt", "CA-1",
             "CAWEC2_20251105_230000_to_20251106_090000_frames_timelapse.mp4"]
    assert [f.folder_name for f in timelapse_folders(names, "CAWEC2")] == [names[2], names[0]]
    assert station_folders(names) == ["CAWEC2"]
    entries = [RemoteEntry(n, 1, 0, False) for n in (
        "CAWEC2_20251105-230000_to_20251106-090000_frames_timelapse.mp4", "thumbs.db",
        "CAWEC2_20251105-230000_to_20251106-090000_timestamps.json")]
    video, frame_times = folder_files(entries)
    assert (video.name, frame_times.name) == (entries[0].name, entries[2].name)  # legacy map


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
    assert [(i.station, format_night(i.night)) for i in images] == [("CAWEC2", "20251105")]
    assert summary.failures == [f"extract.target_lists: {tmp_path / 'nowhere.csv'} not found"]
    (tmp_path / "bad.csv").write_text("not an image name,clear\n")
    read_target_lists([str(tmp_path / "bad.csv")], "plan.target_lists", summary)
    assert str(tmp_path / "bad.csv") in summary.failures[-1]
