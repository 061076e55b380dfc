"""Frame extraction end to end on real H.264 videos whose frames encode their own index:
the PNG named for time T holds exactly the frame the map gives for T; sampling by capture
session, night and day by flags or sessions, maps with gaps and shared times, packages."""

import json
import logging
import os
import subprocess
import sys
import tarfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from fixtures_video import (
    found_archive,
    prep_config,
    read_frame,
    remux_faststart,
    write_index_timelapse,
)
from PIL import Image

from data_prep import extract, label
from gmn_base.image_names import format_image_name, parse_image_name

UTC = timezone.utc
MIDNIGHT_START = datetime(2025, 11, 6, 23, 50, 0, tzinfo=UTC)  # 300 frames reach 00:15
CAPTURE = datetime(2025, 11, 6, 23, 45, 0, tzinfo=UTC)         # the night folders' start


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def assert_exact(images_dir: Path, maps: dict[str, tuple[int, list[datetime]]]) -> int:
    """Every PNG holds the frame its name's time maps to, from its own station's video."""
    count = 0
    for png in sorted(images_dir.glob("*.png")):
        name = parse_image_name(png.name)
        tag, times = maps[name.station]
        assert read_frame(read_png(png)) == (tag, times.index(name.timestamp)), png.name
        count += 1
    return count


@pytest.fixture(scope="module")
def two_stations(tmp_path_factory):
    """CAWEC2 and US0001 with identical frame times across midnight; 300 frames, GOP 120."""
    raw = tmp_path_factory.mktemp("archive") / "raw_data"
    maps = {}
    for tag, station in ((1, "CAWEC2"), (2, "US0001")):
        _, times = write_index_timelapse(raw / station, station, MIDNIGHT_START, 300, tag=tag)
        maps[station] = (tag, times)
    return raw, maps


def setup_data_dir(tmp_path, raw):
    (tmp_path / "raw_data").symlink_to(raw, target_is_directory=True)
    return tmp_path


def test_listed_frames_are_exact_first_last_adjacent_sparse_midnight_two_stations(
        tmp_path, two_stations):
    raw, maps = two_stations
    data = setup_data_dir(tmp_path, raw)
    times = maps["CAWEC2"][1]
    picks = [0, 1, 2, 119, 120, 121, 170, 240, 299]  # 170: 00:04:10 UTC, after midnight
    lines = [format_image_name(None, times[i]) + ",clear" for i in picks]
    lines.append(format_image_name("US0001", times[200]) + ",cloudy")  # this station only
    (data / "list.txt").write_text("\n".join(lines) + "\n")
    cfg = prep_config(data, extract__target_lists=[str(data / "list.txt")])

    summary = extract.run(cfg)

    assert summary.ok, summary.failures
    night_dir = data / "extracted_night"
    names = {p.name for p in night_dir.glob("*.png")}
    assert len(names) == 2 * len(picks) + 1
    assert format_image_name("US0001", times[200]) in names
    assert format_image_name("CAWEC2", times[200]) not in names
    assert assert_exact(night_dir, maps) == 19
    with Image.open(night_dir / format_image_name("CAWEC2", times[0])) as image:
        assert image.mode == "L" and image.size == (160, 96)
    assert not [p for p in night_dir.iterdir() if p.name.startswith(".")]

    # A rerun skips what is there; a removed image comes back identical.
    removed = night_dir / format_image_name("US0001", times[299])
    removed.unlink()
    again = extract.run(cfg)
    assert again.counts["skipped_existing"] == 18 and again.counts["written"] == 1
    assert assert_exact(night_dir, maps) == 19


def test_sampling_rule_balances_by_intervals_and_labels_agree(tmp_path, two_stations):
    raw, maps = two_stations
    data = setup_data_dir(tmp_path, raw)
    times = maps["CAWEC2"][1]
    clear = [(times[60], times[180])]  # 23:55 .. 00:05
    found_archive(data, [("CAWEC2", CAPTURE, clear), ("US0001", CAPTURE, [])])
    cfg = prep_config(data, extract__per_night=8, extract__edge_margin_s=60,
                      extract__mask_overlay=True)

    summary = extract.run(cfg)
    assert summary.ok, summary.failures
    assert summary.counts["nights"] == 2 and summary.counts["written"] == 16
    night_dir = data / "extracted_night"
    assert assert_exact(night_dir, maps) == 16
    # The RMS text bar at bottom-left is masked; the index blocks at top-left are not.
    image = read_png(next(night_dir.glob("CAWEC2_*.png")))
    assert image[-5:-1, 2:60].max() < 30

    labelled = label.run(cfg)
    assert labelled.ok, labelled.failures
    rows = (data / "extracted_night_labels.csv").read_text().splitlines()
    assert rows[0] == "image_filename,label,station,night,timestamp,edge_distance_s,night_rule"
    by_station = {}
    for row in rows[1:]:
        _name, lab, station, night, _ts, edge, _rule = row.split(",")
        assert night == "20251106"
        by_station.setdefault(station, []).append((lab, float(edge)))
    assert sorted(lab for lab, _ in by_station["CAWEC2"]) == ["clear"] * 4 + ["cloudy"] * 4
    assert all(abs(edge) >= 60 for _, edge in by_station["CAWEC2"])
    assert [lab for lab, _ in by_station["US0001"]] == ["cloudy"] * 8


def test_night_without_interval_file_is_reported_and_skipped(tmp_path, two_stations):
    raw, _maps = two_stations
    data = setup_data_dir(tmp_path, raw)
    found_archive(data, [("CAWEC2", CAPTURE, None), ("US0001", CAPTURE, None)])
    summary = extract.run(prep_config(data, extract__per_night=3))
    assert summary.exit_code == 1 and summary.counts["nights_without_intervals"] == 2
    assert any("CAWEC2_20251106_234500_000000" in f and "night 20251106" in f
               for f in summary.failures)
    assert not list((data / "extracted_night").glob("*.png"))
    relaxed = extract.run(prep_config(data, extract__per_night=3,
                                      extract__require_intervals=False))
    assert relaxed.ok and relaxed.counts["written"] == 6


def test_day_kind_spreads_total_over_daytime_videos_keeping_colour(tmp_path):
    raw = tmp_path / "raw_data"
    noon = datetime(2025, 11, 7, 10, 0, tzinfo=UTC)
    maps = {}
    for tag, station, color in ((1, "CAWEC2", True), (2, "US0001", False)):
        _, times = write_index_timelapse(raw, station, noon, 40, tag=tag, color=color, flag="d")
        maps[station] = (tag, times)
    write_index_timelapse(raw, "US0002", MIDNIGHT_START, 10, tag=3)  # a night video: ignored
    # No _n/_d flags and no capture session known: neither kind; counted, not silently dropped.
    write_index_timelapse(raw, "US0003", datetime(2025, 11, 7, 7, 10, tzinfo=UTC), 10, tag=4,
                          flag=None)
    summary = extract.run(prep_config(tmp_path, extract__kind="day", extract__total=5))
    assert summary.ok, summary.failures
    assert summary.counts["videos_neither_night_nor_day"] == 1
    day = tmp_path / "extracted_day"
    names = sorted(p.name for p in day.glob("*.png"))
    assert [n[:6] for n in names] == ["CAWEC2"] * 3 + ["US0001"] * 2
    assert assert_exact(day, maps) == 5
    modes = {}
    for name in names:
        with Image.open(day / name) as image:
            modes[name[:6]] = image.mode
    assert modes == {"CAWEC2": "RGB", "US0001": "L"}  # color=auto follows the video
    forced = extract.run(prep_config(tmp_path, extract__kind="day", extract__total=5,
                                     extract__color=False, extract__day_dir=str(tmp_path / "g")))
    assert forced.ok and {Image.open(p).mode for p in (tmp_path / "g").glob("*.png")} == {"L"}


def test_unflagged_videos_are_sorted_by_capture_sessions_never_the_hour(tmp_path):
    """A Croatian night from 16:06 UTC and an Australian day from 20:50 UTC, no flags."""
    raw = tmp_path / "raw_data"
    hr_start = datetime(2025, 11, 7, 16, 6, 10, tzinfo=UTC)
    au_day = datetime(2025, 11, 7, 20, 50, 0, tzinfo=UTC)
    # 20 frames each over the whole night (13 h) and the whole day (14 h), as RMS cuts them.
    _, hr_times = write_index_timelapse(raw, "HR000A", hr_start, 20, tag=1, flag=None,
                                        interval_s=2340)
    _, au_times = write_index_timelapse(raw, "AU000A", au_day, 20, tag=2, flag=None,
                                        interval_s=2520)
    found_archive(tmp_path, [("HR000A", hr_start - timedelta(seconds=6), []),
                             ("AU000A", datetime(2025, 11, 7, 11, 12, tzinfo=UTC), [])],
                  [("HR000A", hr_start, datetime(2025, 11, 8, 5, 6, tzinfo=UTC)),
                   ("AU000A", datetime(2025, 11, 7, 11, 12, 5, tzinfo=UTC),
                    datetime(2025, 11, 7, 20, 42, tzinfo=UTC)),
                   ("AU000A", au_day, au_day + timedelta(hours=14))])
    night = extract.run(prep_config(tmp_path, extract__per_night=4))
    assert night.ok, night.failures
    assert {p.name[:6] for p in (tmp_path / "extracted_night").glob("*.png")} == {"HR000A"}
    day = extract.run(prep_config(tmp_path, extract__kind="day", extract__total=4))
    assert day.ok, day.failures
    assert {p.name[:6] for p in (tmp_path / "extracted_day").glob("*.png")} == {"AU000A"}
    assert assert_exact(tmp_path / "extracted_night", {"HR000A": (1, hr_times)}) == 4
    assert assert_exact(tmp_path / "extracted_day", {"AU000A": (2, au_times)}) == 4


def test_a_map_with_a_gap_and_a_shared_time_keeps_its_known_frames(tmp_path, caplog):
    raw = tmp_path / "raw_data"
    start = datetime(2025, 11, 6, 22, 0, tzinfo=UTC)
    video, times = write_index_timelapse(raw, "CAWEC2", start, 10, tag=1)
    frame_map = video.with_name(video.name.replace("_frames_timelapse.mp4", "_frametimes.json"))
    mapping = json.loads(frame_map.read_text())
    del mapping["4"]                  # RMS could not parse that frame's name: no key
    mapping["7"] = mapping["6"]       # two frames given one time
    frame_map.write_text(json.dumps(mapping))
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(format_image_name("CAWEC2", times[i]) for i in (3, 4, 5, 6, 8))
                      + "\n")
    with caplog.at_level(logging.WARNING):
        summary = extract.run(prep_config(tmp_path, extract__target_lists=[str(listed)]))
    # Frame 4 has no time, so it cannot be found; the frames around it are exact.
    assert summary.counts["listed_not_found"] == 1 and summary.counts["written"] == 4
    assert summary.counts["frames_without_time"] == 1
    assert summary.counts["frames_sharing_a_time"] == 1
    night_dir = tmp_path / "extracted_night"
    assert assert_exact(night_dir, {"CAWEC2": (1, times)}) == 4
    assert f"{frame_map}: no time for frames 4 of 10" in caplog.text
    assert f"{frame_map}: frames 6, 7 share the time" in caplog.text
    assert f"only frame 6 becomes {format_image_name('CAWEC2', times[6])}" in caplog.text


def test_a_timelapse_package_is_unpacked_safely(tmp_path):
    raw = tmp_path / "raw_data"
    start = datetime(2025, 11, 6, 22, 0, tzinfo=UTC)
    video, times = write_index_timelapse(tmp_path / "loose", "CAWEC2", start, 12, tag=1)
    frame_map = video.with_name(video.name.replace("_frames_timelapse.mp4", "_frametimes.json"))
    raw.mkdir()
    package = raw / video.name.replace(".mp4", ".tar")
    with tarfile.open(package, "w") as tar:
        tar.add(video, arcname=video.name)
        tar.add(frame_map, arcname=frame_map.name)
    # A package whose member climbs out of its folder is refused by name.
    other, _ = write_index_timelapse(tmp_path / "loose2", "US0001", start, 4, tag=2)
    hostile = raw / other.name.replace(".mp4", ".tar")
    with tarfile.open(hostile, "w") as tar:
        tar.add(other, arcname="../../" + other.name)
    listed = tmp_path / "list.txt"
    listed.write_text(format_image_name("CAWEC2", times[5]) + "\n")
    summary = extract.run(prep_config(tmp_path, extract__target_lists=[str(listed)]))
    assert summary.counts["packages_unpacked"] == 1 and summary.counts["packages_failed"] == 1
    assert any(str(hostile) in f and "leaves the package's folder" in f
               for f in summary.failures)
    assert not (tmp_path / other.name).exists() and not (raw / other.name).exists()
    assert (raw / video.name).is_file() and (raw / frame_map.name).is_file()
    assert assert_exact(tmp_path / "extracted_night", {"CAWEC2": (1, times)}) == 1
    again = extract.run(prep_config(tmp_path, extract__target_lists=[str(listed)]))
    assert "packages_unpacked" not in again.counts  # already there


def test_bad_inputs_are_named_others_still_processed(tmp_path):
    raw = tmp_path / "raw_data"
    start = datetime(2025, 11, 6, 22, 0, tzinfo=UTC)
    _good, good_times = write_index_timelapse(raw, "CAWEC2", start, 60, tag=1)
    # Mismatched map: 50 entries for 60 frames.
    short, _ = write_index_timelapse(raw, "US0001", start, 60, tag=2, map_frames=50)
    # Malformed JSON map.
    bad_json, _ = write_index_timelapse(raw, "US0002", start, 20, tag=3)
    bad_map = bad_json.with_name(bad_json.name.replace("_frames_timelapse.mp4", "_frametimes.json"))
    bad_map.write_text('{"0": "20251106_220000_000_n",')
    # Truncated video (index at the front, tail cut): early frames must still come out right.
    full, trunc_times = write_index_timelapse(tmp_path / "src", "US0003", start, 240, tag=4,
                                              gop=30)
    cut = raw / full.name
    remux_faststart(full, cut)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    (raw / full.name.replace("_frames_timelapse.mp4", "_frametimes.json")).write_text(
        full.with_name(full.name.replace("_frames_timelapse.mp4", "_frametimes.json")).read_text())
    # No map at all.
    lonely, _ = write_index_timelapse(tmp_path / "src2", "US0004", start, 10, tag=5)
    lonely.rename(raw / lonely.name)
    # Some stale temporary from a killed run.
    night_dir = tmp_path / "extracted_night"
    night_dir.mkdir()
    (night_dir / ".CAWEC2_20251106_220000_000.png.abc123.tmp").write_bytes(b"half")

    found_archive(tmp_path, [(st, start - timedelta(minutes=1), None)
                             for st in ("CAWEC2", "US0001", "US0002", "US0003", "US0004")])
    summary = extract.run(prep_config(tmp_path, extract__per_night=60,
                                      extract__require_intervals=False))

    text = "\n".join(summary.failures)
    assert summary.exit_code == 1
    assert str(short.with_name(short.name.replace("_frames_timelapse.mp4", "_frametimes.json"))
               ) in text and "covers 50 frames" in text and "has 60 frames" in text
    assert str(bad_map) in text
    assert str(cut) in text and "not extracted" in text
    assert lonely.name in text and "no frame-time map" in text
    maps = {"CAWEC2": (1, good_times), "US0003": (4, trunc_times)}
    written = {p.name[:6] for p in night_dir.glob("*.png")}
    assert written == {"CAWEC2", "US0003"}
    assert len(list(night_dir.glob("CAWEC2_*.png"))) == 60
    n_trunc = len(list(night_dir.glob("US0003_*.png")))
    assert 0 < n_trunc < 240
    assert assert_exact(night_dir, maps) == 60 + n_trunc
    assert not [p.name for p in night_dir.iterdir() if p.name.startswith(".")]


def test_command_line_reports_a_mismatched_map_and_exits_non_zero(tmp_path):
    raw = tmp_path / "raw_data"
    start = datetime(2025, 11, 6, 22, 0, tzinfo=UTC)
    _, times = write_index_timelapse(raw, "CAWEC2", start, 30, tag=1)
    short, _ = write_index_timelapse(raw, "US0001", start, 30, tag=2, map_frames=31)
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(format_image_name(None, times[i]) for i in (0, 29)) + "\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    result = subprocess.run(
        [sys.executable, "-m", "data_prep.extract", f"paths.data_dir={tmp_path}",
         f"extract.target_lists=[{listed}]", "extract.workers=2"],
        check=False, capture_output=True, text=True, env=env, timeout=120,
        cwd=Path(__file__).resolve().parents[1])
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert short.name.replace("_frames_timelapse.mp4", "_frametimes.json") in output
    assert "covers 31 frames" in output and "has 30 frames" in output
    assert sorted(p.name for p in (tmp_path / "extracted_night").glob("*.png")) == [
        format_image_name("CAWEC2", times[0]), format_image_name("CAWEC2", times[29])]
