"""Which nights the archive holds: each station's ``_detected`` folders and their interval files.

RMS writes a ``{ST}_{YYYYMMDD}_{HHMMSS}_{ffffff}_detected`` folder per capture, with the
night's ``flux_time_intervals.json`` in it, under ``source.flux_root/{ST}/``. ``find`` lists
the stations (:func:`list_stations`) and their folders, keeping those in the night window
(:func:`select_detected`, :func:`find_detected`), fetches the interval files it does not have
yet (:func:`interval_jobs`) and reads them back (:func:`read_interval_files`). A folder without
an interval file is counted, not failed.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from data_prep.nights.archive_listing import list_folder, parse_each
from data_prep.nights.interval_files import ALL_CLOUDY_DIR, interval_file_name
from data_prep.remote.fetch import DownloadJob
from data_prep.remote.source import RemoteSource
from data_prep.summary import StepSummary
from gmn_base.formats import (
    INTERVAL_FILE_NAME,
    ClearIntervals,
    DetectedFolder,
    GMNFormatError,
    load_interval_file,
    parse_detected_folder,
    parse_station,
)

log = logging.getLogger(__name__)

FoundNight = tuple[DetectedFolder, str, ClearIntervals]  # folder, file (relative), intervals


@dataclass(frozen=True)
class NightWindow:
    """The nights to consider: from ``since`` to ``until`` (either open), then the newest
    ``last_n`` folders of each station (None: all)."""

    since: date | None = None
    until: date | None = None
    last_n: int | None = None


def station_folders(names: list[str]) -> list[str]:
    """The names that are GMN station ids (other folders on the server are ignored)."""
    return sorted(parse_each(names, parse_station, "station folder"))


def select_detected(names: list[str], station: str, since: date | None = None,
                    until: date | None = None, last_n: int | None = None) -> list[DetectedFolder]:
    """The station's ``_detected`` folders among ``names``, oldest first, within the night range,
    then the newest ``last_n`` of them. Names of other shapes or stations are ignored."""
    folders = [f for f in parse_each(names, parse_detected_folder, "_detected folder")
               if f.station == station and not (since and f.night < since)
               and not (until and f.night > until)]
    folders.sort(key=lambda f: f.start)
    if last_n is not None:
        folders = folders[-last_n:] if last_n > 0 else []
    return folders


def list_stations(source: RemoteSource, flux_root: str, configured: list[str],
                  summary: StepSummary) -> list[str]:
    """``source.stations`` when given, else every station folder under ``flux_root``."""
    if configured:
        return [parse_station(str(s), "source.stations") for s in configured]
    try:
        entries = list_folder(source, flux_root, summary)
    except FileNotFoundError:
        summary.add_failure(f"source.flux_root {flux_root!r} not found on {source.description}")
        return []
    stations = station_folders([e.name for e in entries])
    if not stations:
        summary.add_failure(f"no station folders under {flux_root} on {source.description}: "
                            f"check source.flux_root, or list them in source.stations")
    return stations


def find_detected(source: RemoteSource, flux_root: str, configured: list[str],
                  window: NightWindow, summary: StepSummary) -> list[DetectedFolder]:
    """Every station's ``_detected`` folders in ``window``; a missing station folder is a
    failure naming it."""
    selected: list[DetectedFolder] = []
    for station in list_stations(source, flux_root, configured, summary):
        station_dir = posixpath.join(flux_root, station)
        try:
            entries = list_folder(source, station_dir, summary)
        except FileNotFoundError:
            summary.add_failure(f"{station_dir} not found on {source.description} "
                                f"(station {station} in source.stations?)")
            continue
        chosen = select_detected([e.name for e in entries], station, window.since,
                                 window.until, window.last_n)
        summary.count("detected_folders", len(chosen))
        selected.extend(chosen)
    return selected


def _local_interval_file(interval_dir: Path, folder: DetectedFolder) -> Path | None:
    name = interval_file_name(folder.name)
    return next((p for p in (interval_dir / name, interval_dir / ALL_CLOUDY_DIR / name)
                 if p.exists()), None)


def interval_jobs(selected: list[DetectedFolder], flux_root: str, interval_dir: Path,
                  summary: StepSummary) -> list[DownloadJob]:
    """Downloads of the interval files not fetched yet (kept or moved to all-cloudy)."""
    jobs = []
    for folder in selected:
        if _local_interval_file(interval_dir, folder) is not None:
            summary.count("already_fetched")
            continue
        remote = posixpath.join(flux_root, folder.station, folder.name, INTERVAL_FILE_NAME)
        jobs.append(DownloadJob(remote, interval_dir / interval_file_name(folder.name)))
    return jobs


def read_interval_files(selected: list[DetectedFolder], interval_dir: Path,
                        summary: StepSummary) -> list[FoundNight]:
    """The fetched interval file of each folder, parsed; a folder without one is counted, a
    malformed file or one of another station is a failure naming it."""
    found = []
    for folder in selected:
        path = _local_interval_file(interval_dir, folder)
        if path is None:
            summary.count("no_interval_file")
            continue
        try:
            intervals = load_interval_file(path)
        except GMNFormatError as exc:
            summary.add_failure(str(exc))
            continue
        if intervals.station != folder.station:
            summary.add_failure(f"{path}: stationID {intervals.station!r} does not match the "
                                f"folder's station {folder.station!r}")
            continue
        found.append((folder, str(path.relative_to(interval_dir)), intervals))
    return found
