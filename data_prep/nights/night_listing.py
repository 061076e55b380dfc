"""Which capture sessions the archive holds: each station's night folders, grouped.

RMS writes one night folder ``{ST}_{YYYYMMDD}_{HHMMSS}_{ffffff}{suffix}`` per capture (a restart
opens a second one in the same night) under ``source.flux_root/{ST}/``. ``find`` lists the
stations (:func:`list_stations`), each station's night folders with the suffixes in
``source.night_folder_suffixes``, and the timelapse names under ``source.video_root/{ST}/``,
whose edges are the day/night switches that separate sessions and give their ends; it groups
them into capture sessions (:func:`gmn_base.sessions.group_sessions`) and keeps those
``find.since`` / ``find.until`` / ``find.last_n`` select, whole (:func:`find_sessions`).
A root may hold ``{country}``, replaced by the station id's first two letters
(``/home/contrails/{country}`` reads ``HR000A`` from ``/home/contrails/HR/HR000A``).
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from data_prep.nights.archive_listing import list_folder, parse_each
from data_prep.remote.source import RemoteSource
from data_prep.summary import StepSummary
from gmn_base.night_folders import parse_night_folders
from gmn_base.sessions import CaptureSession, group_sessions, select_sessions
from gmn_base.station_time import parse_station
from gmn_base.timelapse_names import Timelapse, parse_timelapse_name

log = logging.getLogger(__name__)

COUNTRY = "{country}"


@dataclass(frozen=True)
class NightWindow:
    """The nights to consider: night ids from ``since`` to ``until`` (either open), then the
    newest ``last_n`` capture sessions of each station (None: all)."""

    since: date | None = None
    until: date | None = None
    last_n: int | None = None


def station_dir(root: str, station: str) -> str:
    """``{root}/{station}``, ``{country}`` in ``root`` being the station's country letters."""
    return posixpath.join(root.replace(COUNTRY, station[:2]), station)


def station_folders(names: list[str]) -> list[str]:
    """The names that are GMN station ids (other folders on the server are ignored)."""
    return sorted(parse_each(names, parse_station, "station folder"))


def _station_roots(source: RemoteSource, root: str, summary: StepSummary
                   ) -> list[tuple[str, str]]:
    """``(root, country)`` pairs to list stations in: ``root`` itself (any country), or, when
    it holds ``{country}``, one per two-letter folder where ``{country}`` sits."""
    if COUNTRY not in root:
        return [(root, "")]
    parent, rest = root.split(COUNTRY, 1)
    names = [e.name for e in list_folder(source, parent.rstrip("/") or "/", summary)]
    return [(parent + name + rest, name) for name in sorted(names)
            if re.fullmatch(r"[A-Z]{2}", name)]


def list_stations(source: RemoteSource, flux_root: str, configured: list[str],
                  summary: StepSummary) -> list[str]:
    """``source.stations`` when given, else every station folder under ``flux_root`` (under
    each country folder when it holds ``{country}``)."""
    if configured:
        return [parse_station(str(s), "source.stations") for s in configured]
    stations = []
    try:
        for root, country in _station_roots(source, flux_root, summary):
            found = station_folders([e.name for e in list_folder(source, root, summary)])
            stations += [s for s in found if s.startswith(country)]
    except FileNotFoundError:
        summary.add_failure(f"source.flux_root {flux_root!r} not found on {source.description}")
        return []
    if not stations:
        summary.add_failure(f"no station folders under {flux_root} on {source.description}: "
                            f"check source.flux_root, or list them in source.stations")
    return sorted(stations)


def timelapse_switches(source: RemoteSource, video_root: str, station: str,
                       summary: StepSummary) -> list[Timelapse]:
    """The timelapse names (folders and loose files) the server shows for ``station``: their
    edges are the day/night switches that separate its sessions. None (and a note in the log)
    when it has no timelapse folder."""
    path = station_dir(video_root, station)
    try:
        names = [e.name for e in list_folder(source, path, summary)]
    except FileNotFoundError:
        log.info("%s not found on %s: sessions of %s are grouped by night folder names alone",
                 path, source.description, station)
        summary.count("stations_without_timelapses")
        return []
    return [t for t in parse_each(names, parse_timelapse_name, "timelapse name")
            if t.station == station]


def find_sessions(source: RemoteSource, flux_root: str, video_root: str, configured: list[str],
                  suffixes: Sequence[str], window: NightWindow,
                  summary: StepSummary) -> list[CaptureSession]:
    """Every station's capture sessions in ``window``; a missing station folder is a
    failure naming it."""
    selected: list[CaptureSession] = []
    for station in list_stations(source, flux_root, configured, summary):
        path = station_dir(flux_root, station)
        try:
            names = [e.name for e in list_folder(source, path, summary)]
        except FileNotFoundError:
            summary.add_failure(f"{path} not found on {source.description} "
                                f"(station {station} in source.stations?)")
            continue
        folders, _other = parse_night_folders(names, station, suffixes)
        sessions = group_sessions(folders, timelapse_switches(source, video_root, station,
                                                              summary))
        chosen = select_sessions(sessions, window.since, window.until, window.last_n)
        summary.count("sessions", len(chosen))
        summary.count("night_folders", sum(len(s.folders) for s in chosen))
        summary.count("restarts", sum(len(s.capture_ids) - 1 for s in chosen))
        selected.extend(chosen)
    return selected
