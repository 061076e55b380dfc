"""Capture sessions: what a night is, for every station on Earth.

A session is what RMS records from one start of capture to its end, in one or more night
folders ``{ST}_{YYYYMMDD}_{HHMMSS}_{ffffff}{suffix}`` (a restart opens a new folder). Its night
id is the UTC date of its first capture start. Never derive a night from the clock: a
capture runs from local dusk to dawn, which crosses 00:00 and 12:00 UTC somewhere on Earth.

How a restart is told from the next night (from RMS, ``RMS/CaptureDuration.py``):
capture starts at dusk (Sun 5.4 degrees below the horizon) and ends at the next dawn, never
more than 23 hours later (``max_hours=23``); a restart during the night starts capturing at
once and stops at that same dawn. So:

* a capture that starts less than ``max_capture`` (23 h) after the session's first capture
  start continues the session, unless
* a known day/night switch lies between it and the session's previous capture (more than
  ``tolerance`` from both starts): the start and end of every timelapse of the station (RMS
  cuts a frame timelapse where the frames switch between ``_n`` and ``_d``).

Limit, names only: when a night's first folder is itself a restart (the station came up in
the middle of the night) and the next dusk comes less than 23 h later, the two nights are one
session unless timelapse names give the dawn between them. With timelapses, the session's end
is also known (the first switch after its last capture start), else ``end`` is None.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gmn_base.night_folders import NightFolder
from gmn_base.station_time import as_utc, format_night
from gmn_base.timelapse_names import Timelapse

# RMS/CaptureDuration.py, captureDuration(max_hours=23): no capture runs longer.
MAX_CAPTURE = timedelta(hours=23)
# Recorded by label outputs. Files labelled by the old UTC-noon clock rule carry no tag.
NIGHT_RULE = "capture-session/2"


@dataclass(frozen=True)
class SessionRule:
    """``max_capture``: RMS's longest capture; ``tolerance``: how far a capture start, a
    frame or a timelapse edge may sit from the session edge it belongs to."""

    max_capture: timedelta = MAX_CAPTURE
    tolerance: timedelta = timedelta(hours=1)


DEFAULT_RULE = SessionRule()


@dataclass(frozen=True)
class CaptureSession:
    """One station's capture from dusk to dawn: its folders (all names of each capture, oldest
    first) and, when timelapses told it, the end of capture."""

    station: str
    folders: tuple[NightFolder, ...]
    end: datetime | None = None

    @property
    def start(self) -> datetime:
        return self.folders[0].start

    @property
    def night(self) -> date:
        """The UTC date of the session's first capture start."""
        return as_utc(self.start).date()

    @property
    def night_id(self) -> str:
        return format_night(self.night)

    @property
    def session_id(self) -> str:
        """The first capture's id: unique per session even where two share a night id."""
        return self.folders[0].capture_id

    @property
    def capture_starts(self) -> tuple[datetime, ...]:
        return tuple(sorted({f.start for f in self.folders}))

    @property
    def capture_ids(self) -> tuple[str, ...]:
        return tuple(sorted({f.capture_id for f in self.folders}))

    def capture_of(self, ts: datetime) -> str:
        """The id of the capture (folder) holding ``ts``: the last one started at or before it
        (the first, for a time before the session start)."""
        starts = self.capture_starts
        index = max(bisect.bisect_right(starts, as_utc(ts)) - 1, 0)
        return next(f.capture_id for f in self.folders if f.start == starts[index])

    def latest_end(self, rule: SessionRule = DEFAULT_RULE) -> datetime:
        """The known end of capture, else the latest RMS would have stopped."""
        return self.end if self.end is not None else self.start + rule.max_capture


def _switches(timelapses: Iterable[Timelapse]) -> dict[str, list[datetime]]:
    """Per station, the day/night switches timelapse names give (daily ones give none)."""
    found: dict[str, set[datetime]] = {}
    for lapse in timelapses:
        if not lapse.daily:
            found.setdefault(lapse.station, set()).update((lapse.start, lapse.end))
    return {station: sorted(times) for station, times in found.items()}


def _switch_between(switches: Sequence[datetime], after: datetime, before: datetime) -> datetime | None:
    """The first switch strictly inside (after, before), or None."""
    i = bisect.bisect_right(switches, after)
    return switches[i] if i < len(switches) and switches[i] < before else None


def _station_sessions(folders: list[NightFolder], switches: Sequence[datetime],
                      rule: SessionRule) -> list[CaptureSession]:
    groups: list[list[NightFolder]] = []
    for folder in sorted(folders, key=lambda f: (f.start, f.suffix)):
        current = groups[-1] if groups else None
        if current and folder.start == current[-1].start:
            current.append(folder)  # another name (suffix) of the same capture
            continue
        if current and folder.start - current[0].start < rule.max_capture and _switch_between(
                switches, current[-1].start + rule.tolerance, folder.start - rule.tolerance) is None:
            current.append(folder)
            continue
        groups.append([folder])
    sessions = []
    for group in groups:
        limit = group[0].start + rule.max_capture
        end = _switch_between(switches, group[-1].start + rule.tolerance, limit)
        sessions.append(CaptureSession(group[0].station, tuple(group), end))
    return sessions


def group_sessions(folders: Iterable[NightFolder], timelapses: Iterable[Timelapse] = (),
                   rule: SessionRule = DEFAULT_RULE) -> list[CaptureSession]:
    """Group night folders into capture sessions, per station (see the module doc for the rule).

    ``timelapses``: any timelapse names known for these stations (folders or files, night or
    day); their edges are the day/night switches that separate sessions. Returns the
    sessions sorted by station, then start.
    """
    by_station: dict[str, list[NightFolder]] = {}
    for folder in folders:
        by_station.setdefault(folder.station, []).append(folder)
    switches = _switches(timelapses)
    sessions = []
    for station in sorted(by_station):
        unique = list(dict.fromkeys(by_station[station]))
        sessions += _station_sessions(unique, switches.get(station, []), rule)
    return sessions


def select_sessions(sessions: Iterable[CaptureSession], since: date | None = None,
                    until: date | None = None, last_n: int | None = None) -> list[CaptureSession]:
    """``find.since`` / ``find.until`` / ``find.last_n`` by session, per station: the sessions
    whose night id lies in [since, until], then the newest ``last_n`` of each station. A
    restart never makes a night's first part drop out: a session is kept or dropped whole."""
    if last_n is not None and last_n < 0:
        raise ValueError(f"find.last_n={last_n}: expected a count of nights (0 or more) or null")
    by_station: dict[str, list[CaptureSession]] = {}
    for session in sessions:
        if (since and session.night < since) or (until and session.night > until):
            continue
        by_station.setdefault(session.station, []).append(session)
    chosen = []
    for station in sorted(by_station):
        kept = sorted(by_station[station], key=lambda s: s.start)
        if last_n is not None:
            kept = kept[-last_n:] if last_n > 0 else []
        chosen += kept
    return chosen


class SessionLookup:
    """Which capture session a frame time belongs to, for many frames.

    A frame belongs to the session of its station whose span holds it: from ``tolerance``
    before the first capture start to ``tolerance`` after the known end (else to the latest
    end RMS allows, 23 h after the start), and never within ``tolerance`` of the next
    session's start, which takes it.
    """

    def __init__(self, sessions: Iterable[CaptureSession], rule: SessionRule = DEFAULT_RULE):
        self.rule = rule
        self._by_station: dict[str, list[CaptureSession]] = {}
        for session in sessions:
            self._by_station.setdefault(session.station, []).append(session)
        self._opens: dict[str, list[datetime]] = {}
        for station, found in self._by_station.items():
            found.sort(key=lambda s: s.start)
            self._opens[station] = [s.start - rule.tolerance for s in found]

    def session_for(self, station: str, ts: datetime) -> CaptureSession | None:
        ts = as_utc(ts)
        opens = self._opens.get(station, [])
        index = bisect.bisect_right(opens, ts) - 1
        if index < 0:
            return None
        session = self._by_station[station][index]
        closes = (session.end + self.rule.tolerance if session.end is not None
                  else session.start + self.rule.max_capture)
        return session if ts <= closes else None


def session_for(sessions: Iterable[CaptureSession], station: str, ts: datetime,
                rule: SessionRule = DEFAULT_RULE) -> CaptureSession | None:
    """The session ``ts`` belongs to (see :class:`SessionLookup`; build one for many frames)."""
    return SessionLookup(sessions, rule).session_for(station, ts)


def is_current_night_rule(tag: str | None) -> bool:
    """Whether a data file's recorded night rule is this one (None: written by the old rule)."""
    return tag == NIGHT_RULE
