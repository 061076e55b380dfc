"""The old clock rule for nights, kept only for the callers not yet moved to capture sessions.

Old rule: a night is "the UTC date, or the previous date before 12:00 UTC", and a timelapse is
a night one when it starts 18-06 h UTC. Both are wrong for every station whose capture runs
past 12:00 UTC (western Canada in winter, Alaska, Hawaii, Asia, Oceania) or starts before
18:00 UTC (Europe, Africa). Use :mod:`gmn_base.sessions` and :mod:`gmn_base.day_night`
instead; this module goes once find/plan/extract/label/synthetic use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from gmn_base.night_folders import (
    DETECTED_SUFFIX,
    NightFolder,
    find_night_folder,
    format_night_folder,
    parse_night_folder,
)
from gmn_base.station_time import UTC, as_utc

# Old rule: start hours that make a timelapse a night one (evening or early morning) or a day one.
NIGHT_START_HOURS = frozenset(list(range(18, 24)) + list(range(7)))
DAY_START_HOURS = frozenset(range(8, 18))


def night_of(ts: datetime) -> date:
    """Old rule: the UTC date, or the previous date before 12:00 UTC. Wrong outside the
    Americas; use :func:`gmn_base.sessions.session_for` and the session's night id."""
    ts = as_utc(ts)
    return ts.date() - timedelta(days=1) if ts.hour < 12 else ts.date()


def night_start(night: date) -> datetime:
    """Old rule: noon UTC of the night's date, the earliest instant of that night."""
    return datetime.combine(night, time(12, 0), tzinfo=UTC)


@dataclass(frozen=True)
class DetectedFolder:
    """An RMS ``{ST}_{YYYYMMDD}_{HHMMSS}_{ffffff}_detected`` folder, with the old night rule.
    Replaced by :class:`gmn_base.night_folders.NightFolder` (every suffix, no clock night)."""

    station: str
    start: datetime

    @property
    def night(self) -> date:
        """Old rule (:func:`night_of`); a session's night id is :attr:`CaptureSession.night`."""
        return night_of(self.start)

    @property
    def name(self) -> str:
        return format_detected_folder(self.station, self.start)


def _detected(folder: NightFolder) -> DetectedFolder:
    return DetectedFolder(folder.station, folder.start)


def parse_detected_folder(name: str, source: str | Path | None = None) -> DetectedFolder:
    """A ``_detected`` folder name only; see :func:`gmn_base.night_folders.parse_night_folder`."""
    return _detected(parse_night_folder(name, source, suffixes=(DETECTED_SUFFIX,)))


def find_detected_folder(path: str | Path) -> DetectedFolder | None:
    """A ``_detected`` folder named anywhere in ``path`` (nearest the file name wins)."""
    found = find_night_folder(path, suffixes=(DETECTED_SUFFIX,))
    return None if found is None else _detected(found)


def format_detected_folder(station: str, start: datetime) -> str:
    return format_night_folder(station, start, DETECTED_SUFFIX)
