"""Decide which timelapses to download and write ``download_manifest.csv``.

Reads ``nights.csv`` (from ``data_prep.find``), lists each station's timelapse folders under
``source.video_root`` and pairs the night ones (start hour 18-06) with the station-nights
found. Targets: every station-night with both (all-cloudy nights too: they are the overcast
examples); with ``plan.only_good_nights`` only nights with a clear interval; with
``plan.target_lists`` the nights that reference-format image lists imply; with
``plan.kind=day`` daytime timelapses (start hour 08-17) on the date of a good night or the
day after, round-robin across stations up to ``plan.max_videos``. Each chosen folder's video
and frame-time map become manifest rows: station, night, kind, remote path, local path
(relative to ``paths.data_dir``), size and mtime.
"""

from __future__ import annotations

import csv
import io
import logging
import posixpath
import time
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import zip_longest
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.download import MANIFEST_COLUMNS
from data_prep.find import NightRow, read_nights_csv, report_rejected, safe_names
from data_prep.host_keys import HostKeyError
from data_prep.source import RemoteEntry, SourceError, SourceUnreachable, source_factory
from data_prep.summary import StepSummary, run_step
from gmn_base.atomic import write_text
from gmn_base.formats import (
    FRAMETIMES_SUFFIX,
    LEGACY_TIMESTAMPS_SUFFIX,
    VIDEO_SUFFIX,
    GMNFormatError,
    ImageName,
    Timelapse,
    format_night,
    parse_target_list,
    parse_timelapse_name,
)

log = logging.getLogger(__name__)

StationNight = tuple[str, str]  # (station, YYYYMMDD)


@dataclass(frozen=True)
class ManifestRow:
    station: str
    night: str
    kind: str  # night | day
    remote_path: str
    local_path: str
    size: int
    mtime: int


# --- pure core ------------------------------------------------------------------------------


def timelapse_folders(names: list[str], station: str) -> list[Timelapse]:
    """The station's timelapse folders among ``names``, oldest first (other names ignored)."""
    found = []
    for name in names:
        try:
            lapse = parse_timelapse_name(name)
        except GMNFormatError:
            log.debug("not a timelapse folder: %s", name)
            continue
        if lapse.kind == "folder" and lapse.station == station:
            found.append(lapse)
    return sorted(found, key=lambda t: t.start)


def target_nights(rows: list[NightRow], only_good_nights: bool = False,
                  targets: set[tuple[str | None, str]] | None = None) -> set[StationNight]:
    """Station-nights to fetch, from ``nights.csv`` rows. ``targets`` holds (station or None
    for any station, night) pairs from image lists and narrows the choice to them."""
    chosen = set()
    for row in rows:
        if only_good_nights and row.all_cloudy:
            continue
        if targets is not None and (row.station, row.night) not in targets \
                and (None, row.night) not in targets:
            continue
        chosen.add((row.station, row.night))
    return chosen


def nights_from_target_lists(images: list[ImageName]) -> set[tuple[str | None, str]]:
    """(station or None, night) pairs implied by listed image names."""
    return {(image.station, format_night(image.night)) for image in images}


def unmatched_targets(targets: set[tuple[str | None, str]], rows: list[NightRow]) -> list[str]:
    """Targets no station-night in ``nights.csv`` satisfies, as readable strings."""
    have = {(r.station, r.night) for r in rows}
    nights = {r.night for r in rows}
    missing = []
    for station, night in sorted(targets, key=lambda t: (t[1], t[0] or "")):
        if (station is None and night not in nights) or (station is not None
                                                         and (station, night) not in have):
            missing.append(f"{station or 'any station'} night {night}")
    return missing


def pair_night_folders(folders: list[Timelapse], wanted: set[StationNight]) -> list[Timelapse]:
    """Night timelapse folders whose station-night is wanted."""
    return [f for f in folders if f.is_night and (f.station, format_night(f.night)) in wanted]


def day_candidates(folders: list[Timelapse], good_nights: set[date]) -> list[Timelapse]:
    """Daytime folders whose UTC start date is a good night's date or the day after it."""
    return [f for f in folders if f.is_day and (f.start.date() in good_nights
                                                or f.start.date() - timedelta(days=1) in good_nights)]


def round_robin(by_station: dict[str, list[Timelapse]], limit: int | None) -> list[Timelapse]:
    """Take one from each station in turn (stations sorted, each list oldest first)."""
    picked = []
    for layer in zip_longest(*(by_station[s] for s in sorted(by_station))):
        picked.extend(f for f in layer if f is not None)
    return picked if limit is None else picked[:limit]


def folder_files(entries: list[RemoteEntry]) -> tuple[RemoteEntry | None, RemoteEntry | None]:
    """A timelapse folder's video and frame-time map (``_frametimes.json``, else legacy
    ``_timestamps.json``); None where absent."""
    video = frame_times = legacy = None
    for entry in entries:
        try:
            kind = parse_timelapse_name(entry.name).kind
        except GMNFormatError:
            continue
        if kind == "video" and entry.name.endswith(VIDEO_SUFFIX):
            video = entry
        elif kind == "frametimes" and entry.name.endswith(FRAMETIMES_SUFFIX):
            frame_times = entry
        elif kind == "timestamps" and entry.name.endswith(LEGACY_TIMESTAMPS_SUFFIX):
            legacy = entry
    return video, frame_times or legacy


def manifest_text(rows: list[ManifestRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for r in rows:
        writer.writerow([r.station, r.night, r.kind, r.remote_path, r.local_path, r.size, r.mtime])
    return out.getvalue()


# --- I/O edges ------------------------------------------------------------------------------


def _load_targets(paths: list[str], summary: StepSummary) -> set[tuple[str | None, str]] | None:
    if not paths:
        return None
    images: list[ImageName] = []
    for path in paths:
        p = Path(str(path))
        if not p.is_file():
            summary.add_failure(f"plan.target_lists: {p} not found")
            continue
        try:
            images.extend(image for image, _label in parse_target_list(p.read_text(), p))
        except GMNFormatError as exc:
            summary.add_failure(str(exc))
    summary.count("target_images", len(images))
    return nights_from_target_lists(images)


def run(cfg: DictConfig) -> StepSummary:
    started = time.monotonic()
    summary = StepSummary("plan")
    pcfg, scfg = cfg.plan, cfg.source
    kind = str(pcfg.kind)
    if kind not in ("night", "day"):
        summary.add_failure(f"plan.kind={kind!r}: expected night or day")
        return summary
    rows = read_nights_csv(Path(str(pcfg.nights_csv)))
    configured = {str(s) for s in (scfg.get("stations") or [])}
    if configured:
        rows = [r for r in rows if r.station in configured]
    targets = _load_targets(list(pcfg.get("target_lists") or []), summary)
    if targets is not None:
        for missing in unmatched_targets(targets, rows):
            summary.add_failure(f"plan.target_lists: {missing} is not in {pcfg.nights_csv} "
                                f"(widen find.since/until/last_n and rerun find)")
    if kind == "night":
        wanted = target_nights(rows, bool(pcfg.only_good_nights), targets)
    else:
        wanted = target_nights(rows, True, targets)
    stations = sorted({station for station, _ in wanted})
    video_root = str(scfg.video_root)
    raw_dir = str(pcfg.raw_dir).strip("/")
    max_videos = int(pcfg.max_videos) if pcfg.get("max_videos") is not None else None

    try:
        source = source_factory(scfg)()
    except (SourceError, HostKeyError, SourceUnreachable) as exc:
        summary.add_failure(str(exc))
        return summary
    manifest: list[ManifestRow] = []
    try:
        chosen_by_station: dict[str, list[Timelapse]] = {}
        for station in stations:
            station_dir = posixpath.join(video_root, station)
            try:
                entries, rejected = safe_names(source.listdir(station_dir), station_dir)
            except FileNotFoundError:
                summary.add_failure(f"{station_dir} not found on {source.description}")
                continue
            report_rejected(rejected, summary)
            folders = timelapse_folders([e.name for e in entries], station)
            station_nights = {night for st, night in wanted if st == station}
            if kind == "night":
                chosen = pair_night_folders(folders, wanted)
                paired = {format_night(f.night) for f in chosen}
                summary.count("nights_without_timelapse", len(station_nights - paired))
            else:
                good = {date(int(n[:4]), int(n[4:6]), int(n[6:])) for n in station_nights}
                chosen = day_candidates(folders, good)
            chosen_by_station[station] = chosen
        selected = (round_robin(chosen_by_station, max_videos) if kind == "day"
                    else [f for s in sorted(chosen_by_station) for f in chosen_by_station[s]])
        for folder in selected:
            folder_dir = posixpath.join(video_root, folder.station, folder.folder_name)
            entries, rejected = safe_names(source.listdir(folder_dir), folder_dir)
            report_rejected(rejected, summary)
            video, frame_times = folder_files(entries)
            if video is None or frame_times is None:
                what = "video" if video is None else "frame-time map"
                log.warning("%s has no %s; left out", folder_dir, what)
                summary.count("incomplete_folders")
                continue
            night = format_night(folder.night)
            for entry in (video, frame_times):
                manifest.append(ManifestRow(folder.station, night, kind,
                                            posixpath.join(folder_dir, entry.name),
                                            f"{raw_dir}/{entry.name}", entry.size, entry.mtime))
            summary.count("timelapses")
    finally:
        source.close()

    manifest_path = Path(str(pcfg.manifest))
    write_text(manifest_path, manifest_text(manifest))
    summary.count("files", len(manifest))
    summary.count("bytes", sum(r.size for r in manifest))
    summary.outputs["manifest"] = str(manifest_path)
    summary.seconds = time.monotonic() - started
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    run_step("plan", run, cfg, log, user_errors=(SourceError, HostKeyError,
                                                 FileNotFoundError, ValueError))


if __name__ == "__main__":
    main()
