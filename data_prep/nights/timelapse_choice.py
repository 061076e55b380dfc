"""Which timelapses to download: night ones for the station-nights wanted, or daytime ones.

Night timelapse folders (start hour 18-06 UTC) are paired with the station-nights of
``nights.csv`` that are wanted (:func:`target_nights`: all, the good ones, or those target
lists imply); daytime folders (start hour 08-17) on the date of a good night or the day after
are candidates for the test set, taken round-robin across stations up to a limit. Each chosen
folder's video and frame-time map become rows of ``download_manifest.csv``
(:func:`download_rows`). Pure choices first, then the two listings of the source.
"""

from __future__ import annotations

import logging
import posixpath
from datetime import date, timedelta
from itertools import zip_longest

from data_prep.nights.archive_listing import list_folder, parse_each
from data_prep.nights.nights_table import NightRow
from data_prep.nights.target_lists import Target
from data_prep.remote.download_manifest import DownloadRow
from data_prep.remote.source import RemoteEntry, RemoteSource
from data_prep.summary import StepSummary
from gmn_base.formats import (
    FRAMETIMES_SUFFIX,
    LEGACY_TIMESTAMPS_SUFFIX,
    VIDEO_SUFFIX,
    Timelapse,
    format_night,
    parse_timelapse_name,
)

log = logging.getLogger(__name__)

StationNight = tuple[str, str]  # (station, YYYYMMDD)


# --- pure core ------------------------------------------------------------------------------


def timelapse_folders(names: list[str], station: str) -> list[Timelapse]:
    """The station's timelapse folders among ``names``, oldest first (other names ignored)."""
    found = [lapse for lapse in parse_each(names, parse_timelapse_name, "timelapse folder")
             if lapse.kind == "folder" and lapse.station == station]
    return sorted(found, key=lambda t: t.start)


def target_nights(rows: list[NightRow], only_good_nights: bool = False,
                  targets: set[Target] | None = None) -> set[StationNight]:
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
    named = parse_each(entries, lambda e: (e, parse_timelapse_name(e.name).kind), "timelapse file")
    for entry, kind in named:
        if kind == "video" and entry.name.endswith(VIDEO_SUFFIX):
            video = entry
        elif kind == "frametimes" and entry.name.endswith(FRAMETIMES_SUFFIX):
            frame_times = entry
        elif kind == "timestamps" and entry.name.endswith(LEGACY_TIMESTAMPS_SUFFIX):
            legacy = entry
    return video, frame_times or legacy


def _station_choice(folders: list[Timelapse], station: str, kind: str,
                    wanted: set[StationNight], summary: StepSummary) -> list[Timelapse]:
    station_nights = {night for st, night in wanted if st == station}
    if kind == "night":
        chosen = pair_night_folders(folders, wanted)
        paired = {format_night(f.night) for f in chosen}
        summary.count("nights_without_timelapse", len(station_nights - paired))
        return chosen
    good = {date(int(n[:4]), int(n[4:6]), int(n[6:])) for n in station_nights}
    return day_candidates(folders, good)


# --- listings of the source -----------------------------------------------------------------


def choose_timelapses(source: RemoteSource, video_root: str, wanted: set[StationNight],
                      kind: str, max_videos: int | None, summary: StepSummary) -> list[Timelapse]:
    """The timelapse folders to fetch: per station (sorted) for ``kind=night``; round-robin
    across stations up to ``max_videos`` for ``kind=day``."""
    chosen_by_station: dict[str, list[Timelapse]] = {}
    for station in sorted({station for station, _ in wanted}):
        station_dir = posixpath.join(video_root, station)
        try:
            entries = list_folder(source, station_dir, summary)
        except FileNotFoundError:
            summary.add_failure(f"{station_dir} not found on {source.description}")
            continue
        folders = timelapse_folders([e.name for e in entries], station)
        chosen_by_station[station] = _station_choice(folders, station, kind, wanted, summary)
    if kind == "day":
        return round_robin(chosen_by_station, max_videos)
    return [f for s in sorted(chosen_by_station) for f in chosen_by_station[s]]


def download_rows(source: RemoteSource, video_root: str, selected: list[Timelapse], kind: str,
                  raw_dir: str, summary: StepSummary) -> list[DownloadRow]:
    """Each selected folder's video and frame-time map, to ``{raw_dir}/{name}``; a folder
    missing either is left out and counted."""
    rows: list[DownloadRow] = []
    for folder in selected:
        folder_dir = posixpath.join(video_root, folder.station, folder.folder_name)
        video, frame_times = folder_files(list_folder(source, folder_dir, summary))
        if video is None or frame_times is None:
            what = "video" if video is None else "frame-time map"
            log.warning("%s has no %s; left out", folder_dir, what)
            summary.count("incomplete_folders")
            continue
        night = format_night(folder.night)
        for entry in (video, frame_times):
            rows.append(DownloadRow(folder.station, night, kind,
                                    posixpath.join(folder_dir, entry.name),
                                    f"{raw_dir}/{entry.name}", entry.size, entry.mtime))
        summary.count("timelapses")
    return rows
