"""The synthetic GMN archive: names, videos, capture sessions, labels, star counts, contact
sheet, determinism, stations around the world.

Everything here reads one small archive (tests/fixtures_synthetic.py) through gmn_base and real
ffmpeg decoding (PyAV), the way the pipeline steps will.
"""

from __future__ import annotations

import json
import re
import tarfile
from datetime import datetime
from pathlib import Path

import av
import fixtures_synthetic
import numpy as np
import pandas as pd
import pytest
from fixtures_synthetic import SMALL_ARCHIVE
from PIL import Image
from scipy.ndimage import maximum_filter, median_filter

from data_prep.synthetic.archive import GENERATOR_VERSION, generate_archive
from data_prep.synthetic.archive_plan import plan_archive
from data_prep.synthetic.contact_sheet import write_contact_sheet
from data_prep.synthetic.settings import SyntheticSettings, station_ids
from data_prep.synthetic.truth import TRUTH_COLUMNS, truth_table
from gmn_base.frame_times import load_frame_time_map, load_frame_times, parse_frame_time
from gmn_base.image_names import format_image_name, parse_image_name
from gmn_base.interval_files import INTERVAL_FILE_NAME, load_interval_file
from gmn_base.night_folders import parse_night_folder, parse_night_folders
from gmn_base.session_intervals import tie_interval_files
from gmn_base.sessions import SessionLookup, group_sessions
from gmn_base.timelapse_names import (
    FRAMETIMES_SUFFIX,
    LEGACY_TIMESTAMPS_SUFFIX,
    PACKAGE_SUFFIX,
    VIDEO_SUFFIX,
    frame_times_candidates,
    parse_timelapse_name,
    timelapse_for_frames,
)

synthetic_archive = fixtures_synthetic.synthetic_archive  # the session's small archive (a fixture)

# DESIGN.md's names, spelled out independently of gmn_base.
FOLDER_RE = re.compile(r"^(?P<st>[A-Z]{2}[A-Z0-9]{4})_(?P<s>\d{8}_\d{6})_to_(?P<e>\d{8}_\d{6})$")
FILE_RE = r"^{st}_{s}_to_{e}_(frames_timelapse\.mp4|frametimes\.json)$"
DETECTED_RE = re.compile(r"^(?P<st>[A-Z]{2}[A-Z0-9]{4})_\d{8}_\d{6}_\d{6}_detected$")
INTERVAL_TIME_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}000"  # RMS: FF times, milliseconds
FRAME_TIME_RE = re.compile(r"^\d{8}_\d{6}_\d{3}_(?P<suffix>[nd])$")


def _night_videos(archive) -> list:
    return [t for t in archive.timelapses if t.kind == "night"]


def test_tree_matches_design_names(synthetic_archive):
    root = synthetic_archive.out_dir
    stations = sorted(p.name for p in (root / "contrails" / "CA").iterdir())
    assert stations == ["CA0001", "CA0002"]
    folders = sorted((root / "contrails" / "CA").glob("*/*"))
    assert len(folders) == 8  # 2 stations x 2 nights x (night + day)
    kinds = []
    for folder in folders:
        m = FOLDER_RE.match(folder.name)
        assert m and m["st"] == folder.parent.name, folder
        parsed = parse_timelapse_name(folder.name)
        assert parsed.kind == "folder" and parsed.folder_name == folder.name
        file_re = FILE_RE.format(st=m["st"], s=m["s"].replace("_", "-"), e=m["e"].replace("_", "-"))
        names = sorted(p.name for p in folder.iterdir())
        assert len(names) == 2 and all(re.match(file_re, n) for n in names), names
        video = next(folder.glob("*" + VIDEO_SUFFIX))
        assert parse_timelapse_name(video.name).kind == "video"
        assert frame_times_candidates(video)[0].exists()
        values = json.loads(frame_times_candidates(video)[0].read_text()).values()
        suffixes = {FRAME_TIME_RE.match(v)["suffix"] for v in values}
        assert len(suffixes) == 1
        kinds.append(suffixes.pop())
        # Named after its first and last frame, cut to seconds, as RMS names it.
        times = load_frame_times(frame_times_candidates(video)[0])
        assert timelapse_for_frames(m["st"], times).folder_name == folder.name
    assert sorted(kinds) == ["d"] * 4 + ["n"] * 4

    detected = sorted((root / "extracted_data" / "CA").glob("*/*"))
    assert len(detected) == 5  # 4 sessions, one of them restarted
    for folder in detected:
        m = DETECTED_RE.match(folder.name)
        assert m and m["st"] == folder.parent.name
        assert parse_night_folder(folder.name).name == folder.name
        assert [p.name for p in folder.iterdir()] == [INTERVAL_FILE_NAME]
        intervals = load_interval_file(folder / INTERVAL_FILE_NAME)
        assert intervals.station == m["st"]
        raw = json.loads((folder / INTERVAL_FILE_NAME).read_text())
        for start, end in raw["time_intervals"]:
            for value in (start, end):
                assert re.fullmatch(INTERVAL_TIME_RE, value)

    truth = synthetic_archive.truth()
    assert list(truth.columns) == TRUTH_COLUMNS
    assert set(truth["image_filename"]) == {
        format_image_name(st, datetime.fromisoformat(ts))
        for st, ts in zip(truth["station"], truth["timestamp"])}
    for name in truth["image_filename"].head(20):
        assert parse_image_name(name).name == name


def archive_sessions(root: Path, country: str = "CA"):
    """The archive's capture sessions and their intervals, as gmn_base reads a server tree."""
    folders = parse_night_folders(p.name for p in (root / "extracted_data" / country).glob("*/*"))[0]
    lapses = [parse_timelapse_name(p.name) for p in (root / "contrails" / country).glob("*/*")]
    sessions = group_sessions(folders, lapses)
    files = [(p, load_interval_file(p))
             for p in (root / "extracted_data" / country).glob(f"*/*/{INTERVAL_FILE_NAME}")]
    tied, untied = tie_interval_files(sessions, files)
    assert untied == []
    return SessionLookup(sessions), tied


def test_videos_are_rms_like_and_match_their_frame_time_maps(synthetic_archive):
    root = synthetic_archive.out_dir
    for timelapse in synthetic_archive.timelapses:
        times = load_frame_times(root / timelapse.frame_times_file)
        with av.open(str(root / timelapse.video)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.codec_context.pix_fmt == "yuv420p"
            assert stream.average_rate == 30
            assert (stream.width, stream.height) == (SMALL_ARCHIVE["width"], SMALL_ARCHIVE["height"])
            frames = list(container.decode(stream))
        assert len(frames) == len(times) == timelapse.frame_count
        assert [i for i, f in enumerate(frames) if f.key_frame] == list(range(0, len(frames), 120))
        colour = []
        for f in frames[::10]:
            rgb = f.to_ndarray(format="rgb24").astype(int)
            colour.append(np.abs(rgb[..., 2] - rgb[..., 0]).mean())
        if timelapse.kind == "night":
            assert max(colour) < 2  # grayscale content
        else:
            assert max(colour) > 20  # blue sky between the clouds
        # Frames come frame_interval_s apart with millisecond jitter, in bursts over the night.
        steps = np.diff([t.timestamp() for t in times])
        within = steps[steps < 60]
        assert np.all(np.abs(within - 5.0) <= 0.05)
        assert len(np.unique(np.round((within % 1) * 1000))) > 3  # jitter is there
        assert (steps >= 60).sum() == 5  # 6 bursts


def test_labels_and_sessions_recomputed_from_the_tree_match_truth(synthetic_archive):
    root = synthetic_archive.out_dir
    lookup, tied = archive_sessions(root)
    assert sum(len(found.session.capture_ids) > 1 for found in tied.values()) == 1  # a restart
    truth = synthetic_archive.truth()
    recomputed = []
    for timelapse in _night_videos(synthetic_archive):
        times = load_frame_times(root / timelapse.frame_times_file)
        station = parse_timelapse_name(Path(timelapse.video).name).station
        for index, ts in enumerate(times):
            session = lookup.session_for(station, ts)
            intervals = tied[session.session_id].intervals_at(ts)
            label = "clear" if any(s <= ts <= e for s, e in intervals) else "cloudy"
            recomputed.append((timelapse.video, index, ts, label, session.night_id,
                               session.session_id))
    frame = pd.DataFrame(recomputed, columns=["video", "frame_index", "ts", "recomputed",
                                              "night_id", "session_id"])
    night = truth[truth["kind"] == "night"].merge(frame, on=["video", "frame_index"], validate="1:1")
    assert len(night) == len(frame) == 4 * SMALL_ARCHIVE["frames_per_night"]
    assert (night["label"] == night["recomputed"]).all()
    assert (night["night"] == night["night_id"]).all()
    assert (night["session"] == night["session_id"]).all()
    assert all(datetime.fromisoformat(a) == b for a, b in zip(night["timestamp"], night["ts"]))
    assert set(night["label"]) == {"clear", "cloudy"}
    # Daytime rows carry physical truth only: no star-based label exists in daylight.
    day = truth[truth["kind"] == "day"]
    assert len(day) == 4 * SMALL_ARCHIVE["frames_per_night"] and (day["label"] == "").all()
    assert set(day["physical_label"]) == {"clear", "cloudy"}
    # No day frame lies in a capture: none would get intervals to be labelled against.
    for st, ts in zip(day["station"], day["timestamp"]):
        session = lookup.session_for(st, datetime.fromisoformat(ts))
        assert session is None or tied[session.session_id].intervals_at(
            datetime.fromisoformat(ts)) is None


def test_stations_around_the_world_capture_from_local_dusk_to_dawn():
    """Americas, Europe, Australia, western Canada: sessions across 00:00 and 12:00 UTC."""
    settings = SyntheticSettings(stations=("CAWEC2", "HR000A", "AU000A", "CABC01"), nights=2,
                                 frames_per_night=12, frames_per_day=4, width=64, height=36,
                                 restarts=2, seed=1)
    plans = {(p.station, p.kind, p.night.isoformat()): p for p in plan_archive(settings)}
    nights = [p for p in plans.values() if p.kind == "night"]
    spans = {p.station: (p.start, p.end) for p in nights if p.night.day in (6, 7)
             and p.station != "CABC01" or p.station == "CABC01" and p.night.day == 7}

    def crosses(station, hour):
        start, end = spans[station]
        boundary = start.replace(hour=hour, minute=0, second=0, microsecond=0)
        boundary = boundary if boundary > start else boundary + pd.Timedelta(days=1)
        return boundary < end

    assert crosses("CAWEC2", 0) and crosses("HR000A", 0)
    assert crosses("AU000A", 12) and crosses("CABC01", 12)
    assert 15 <= spans["HR000A"][0].hour <= 16 and 10 <= spans["AU000A"][0].hour <= 11
    # A night id is the UTC date capture starts: the 6th's evening in Vancouver is the 7th.
    assert sorted(p.night.day for p in nights if p.station == "CABC01") == [7, 8]
    assert sum(len(p.capture_starts) == 2 for p in nights) == 2
    truth = truth_table(settings)
    assert set(truth[truth["station"] == "CABC01"]["night"]) == {"20251107", "20251108"}
    assert all(datetime.fromisoformat(ts).microsecond % 1000 == 0 for ts in truth["timestamp"])
    for plan in nights:
        for intervals in plan.capture_intervals:
            assert all(t.microsecond % 1000 == 0 for pair in intervals for t in pair)
        assert plan.frame_times[0] - plan.start < pd.Timedelta(seconds=2)   # from dusk
        assert plan.end - plan.frame_times[-1] < pd.Timedelta(seconds=2)    # to dawn


def test_country_folders_follow_the_station_or_one_folder(tmp_path):
    tiny = {"stations": ["HR000A", "CAWEC2"], "nights": 1, "frames_per_night": 4,
            "frames_per_day": 2, "width": 32, "height": 18, "seed": 2}
    generate_archive(tmp_path / "own", **tiny)
    assert sorted(p.relative_to(tmp_path / "own").as_posix()
                  for p in (tmp_path / "own").glob("*/*/*")) == [
        "contrails/CA/CAWEC2", "contrails/HR/HR000A",
        "extracted_data/CA/CAWEC2", "extracted_data/HR/HR000A"]
    generate_archive(tmp_path / "one", country_folder="GMN", **tiny)
    assert sorted(p.name for p in (tmp_path / "one" / "contrails" / "GMN").iterdir()) == [
        "CAWEC2", "HR000A"]
    with pytest.raises(ValueError, match="synthetic.locations: no site for station XX0001"):
        generate_archive(tmp_path / "bad", **{**tiny, "stations": ["XX0001"]})


def test_some_nights_are_all_cloudy_and_labels_carry_edge_noise():
    # Many nights, no rendering: the truth table is computed the way the archive computes it.
    settings = SyntheticSettings(stations=station_ids(4), nights=6, frames_per_night=120,
                                 width=160, height=90, day_timelapses=False, seed=3)
    truth = truth_table(settings)
    per_night = truth.groupby(["station", "night"])["label"].agg(lambda s: set(s))
    assert (per_night == {"cloudy"}).sum() >= 6          # overcast_fraction 0.25 of 24 nights
    assert (per_night == {"clear", "cloudy"}).sum() >= 10  # most other nights have both
    agree = (truth["label"] == truth["physical_label"]).mean()
    assert 0.8 < agree < 1.0  # RMS's 5-minute bins and 60-minute rule blur the edges
    clear = truth[truth["physical_label"] == "clear"]
    assert clear["visible_star_fraction"].min() >= 0.5
    assert truth.groupby("physical_label")["cloud_fraction"].mean()["cloudy"] > 0.4


def _point_sources(gray: np.ndarray) -> int:
    """Local maxima standing 12 DN above their 7x7 neighbourhood, in the upper sky."""
    sky = gray[: int(0.6 * gray.shape[0])].astype(np.float32)
    peaks = (sky == maximum_filter(sky, size=3)) & (sky > median_filter(sky, size=7) + 12)
    return int(peaks[1:-1, 1:-1].sum())


def test_clear_frames_show_many_more_stars_than_cloudy_ones(synthetic_archive):
    root = synthetic_archive.out_dir
    counts = []
    for timelapse in _night_videos(synthetic_archive):
        with av.open(str(root / timelapse.video)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index % 5 == 0:
                    counts.append((timelapse.video, index, _point_sources(frame.to_ndarray(format="gray"))))
    frame = pd.DataFrame(counts, columns=["video", "frame_index", "sources"])
    merged = synthetic_archive.truth().merge(frame, on=["video", "frame_index"])
    by_label = merged.groupby("label")["sources"].median()
    assert by_label["clear"] > 50
    assert by_label["clear"] > 5 * by_label["cloudy"]
    by_physical = merged.groupby("physical_label")["sources"].median()
    assert by_physical["clear"] > 5 * by_physical["cloudy"]


def test_contact_sheet_of_night_and_day_frames(synthetic_archive, tmp_path):
    sheet = tmp_path / "contact_sheet.png"
    tiles = write_contact_sheet(synthetic_archive.out_dir, sheet, tile_width=160, columns=4)
    assert tiles == 12
    image = np.asarray(Image.open(sheet).convert("RGB")).astype(int)
    tile_h = 90 + 14
    assert image.shape == (3 * tile_h, 4 * 160, 3)
    night_rows, day_row = image[: 2 * tile_h - 14], image[2 * tile_h: 3 * tile_h - 14]
    assert np.abs(night_rows[..., 2] - night_rows[..., 0]).mean() < 2   # gray night frames
    assert (day_row[..., 2] - day_row[..., 0]).mean() > 20               # blue daytime sky
    assert night_rows[: tile_h - 14].mean() < day_row.mean()


def test_same_seed_gives_identical_maps_intervals_and_truth(tmp_path):
    tiny = {"stations": ["CAWEC2"], "nights": 2, "frames_per_night": 12, "width": 64,
            "height": 36, "frames_per_day": 4, "seed": 5}
    a = generate_archive(tmp_path / "a", **tiny)
    b = generate_archive(tmp_path / "b", **tiny)
    c = generate_archive(tmp_path / "c", **{**tiny, "seed": 6})

    def contents(archive):
        files = sorted(p for p in archive.out_dir.rglob("*.json") if p.name != "synthetic_settings.json")
        return {str(p.relative_to(archive.out_dir)): p.read_bytes() for p in files} | {
            "truth.csv": archive.truth_csv.read_bytes()}

    assert contents(a) == contents(b)
    # Night and day maps, interval files (one night restarted: 3), truth.
    assert len(contents(a)) == 2 + 2 + 3 + 1
    assert contents(a)["truth.csv"] != contents(c)["truth.csv"]


def test_rerun_skips_complete_timelapses_and_refuses_other_settings(tmp_path):
    tiny = {"stations": 1, "nights": 1, "frames_per_night": 6, "width": 64, "height": 36, "seed": 1}
    first = generate_archive(tmp_path, **tiny)
    assert first.rendered == 2
    video = first.path(first.timelapses[0].video)
    mtime = video.stat().st_mtime_ns
    again = generate_archive(tmp_path, **tiny)
    assert again.rendered == 0 and video.stat().st_mtime_ns == mtime
    assert again.truth().equals(first.truth())
    # A run killed while encoding leaves a temporary and no video: the rerun redoes that one.
    day_video = first.path(first.timelapses[1].video)
    day_video.unlink()
    stale = day_video.with_name(f".{day_video.name}.x1y2.tmp")
    stale.write_bytes(b"half a video")
    third = generate_archive(tmp_path, **tiny)
    assert third.rendered == 1 and day_video.exists() and not stale.exists()
    assert video.stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match=r"synthetic_settings\.json.*seed"):
        generate_archive(tmp_path, **{**tiny, "seed": 2})
    # An archive made by another generator version (or before versions were recorded) is
    # refused, not topped up: its videos would not match the rewritten intervals and truth.
    settings_file = tmp_path / "synthetic_settings.json"
    stored = json.loads(settings_file.read_text())
    assert stored["generator_version"] == GENERATOR_VERSION
    for old in ({**stored, "generator_version": GENERATOR_VERSION - 1},
                {k: v for k, v in stored.items() if k != "generator_version"}):
        settings_file.write_text(json.dumps(old))
        with pytest.raises(ValueError, match=rf"generator version \d+, this code is version "
                                             rf"{GENERATOR_VERSION}.*Delete {tmp_path}"):
            generate_archive(tmp_path, **tiny)
        assert video.stat().st_mtime_ns == mtime


def test_legacy_names_mix_in_the_other_variants(tmp_path):
    archive = generate_archive(tmp_path, stations=["US0001"], nights=2, frames_per_night=6,
                               width=64, height=36, legacy_names=True, seed=0)
    files = [p for p in (tmp_path / "contrails").rglob("*") if p.is_file()]
    names = [p.name for p in files]
    assert any(n.endswith(LEGACY_TIMESTAMPS_SUFFIX) for n in names)
    assert any(n.endswith(FRAMETIMES_SUFFIX) for n in names)
    assert any(n.endswith(PACKAGE_SUFFIX) for n in names)
    doy = [parse_timelapse_name(p.name).doy for p in files]
    assert any(d is not None for d in doy) and any(d is None for d in doy)
    night_folders = [p.name for p in (tmp_path / "extracted_data").rglob("US0001_*")]
    assert {n.rsplit("_", 1)[1] for n in night_folders} == {"detected", "metadata", "imgdata"}
    suffixes = set()
    for timelapse in archive.timelapses:
        if timelapse.package:
            with tarfile.open(tmp_path / timelapse.package) as tar:
                assert sorted(tar.getnames()) == sorted(
                    [Path(timelapse.video).name, Path(timelapse.frame_times_file).name])
            continue
        video = tmp_path / timelapse.video
        found = [p for p in frame_times_candidates(video) if p.exists()]
        assert len(found) == 1
        for value in json.loads(found[0].read_text()).values():
            suffixes.add(parse_frame_time(value)[1])
        assert load_frame_time_map(found[0]).frame_count == timelapse.frame_count
        folder = parse_timelapse_name(Path(timelapse.folder).name)
        assert folder.station == "US0001"
    assert suffixes == {"n", None}  # the flagged day span is the packed one


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match=r"synthetic.width.*161"):
        generate_archive("/nonexistent/never-written", width=161)
    with pytest.raises(ValueError, match=r"synthetic.stations.*'C1'"):
        station_ids(["C1"])
    with pytest.raises(TypeError, match="frames_per_nite"):
        generate_archive("/nonexistent/never-written", frames_per_nite=3)
