"""A capture session's clear-sky intervals: the union of its captures' interval files.

RMS writes one ``flux_time_intervals.json`` per capture folder, covering that capture only.
A session's intervals are the union of its captures' files. Where a capture's file is
missing, its frames have *no intervals known*: they are neither clear nor cloudy, and must
never be labelled cloudy. Interval files are tied to captures by the night folder named in
their path; a file that cannot be tied to a session is returned, with why, for the caller to
report at warning level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePath

from gmn_base.interval_files import ClearIntervals, Interval
from gmn_base.night_folders import KNOWN_NIGHT_FOLDER_SUFFIXES, find_night_folder
from gmn_base.sessions import DEFAULT_RULE, CaptureSession, SessionRule
from gmn_base.station_time import as_utc

NAME_RESOLUTION = timedelta(seconds=1)  # timelapse names give times to the second


@dataclass(frozen=True)
class SessionIntervals:
    """One session and the interval files found for its captures (by capture id)."""

    session: CaptureSession
    files: Mapping[str, ClearIntervals]

    @property
    def missing(self) -> tuple[str, ...]:
        """The captures (ids) whose interval file was not found."""
        return tuple(c for c in self.session.capture_ids if c not in self.files)

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def intervals(self) -> tuple[Interval, ...]:
        """The union of every found file's intervals, sorted."""
        return tuple(sorted({pair for found in self.files.values() for pair in found.intervals}))

    @property
    def all_cloudy(self) -> bool:
        """Every capture's file was found and none has a clear interval."""
        return self.complete and not self.intervals

    def clear_minutes(self) -> float:
        return sum((e - s).total_seconds() for s, e in self.intervals) / 60.0

    def intervals_at(self, ts: datetime, rule: SessionRule = DEFAULT_RULE) -> tuple[Interval, ...] | None:
        """The intervals to label a frame at ``ts`` against, or None when RMS measured nothing
        there: before the first capture start, after the end of capture, or in a capture
        whose interval file is missing."""
        ts = as_utc(ts)
        # A known end comes from a timelapse name, which cuts the last frame's time to seconds.
        if ts < self.session.start or ts >= self.session.latest_end(rule) + NAME_RESOLUTION:
            return None
        if self.session.capture_of(ts) not in self.files:
            return None
        return self.intervals


def tie_interval_files(
    sessions: Iterable[CaptureSession],
    files: Iterable[tuple[str | PurePath, ClearIntervals]],
    suffixes: Sequence[str] = KNOWN_NIGHT_FOLDER_SUFFIXES,
) -> tuple[dict[str, SessionIntervals], list[tuple[str, str]]]:
    """Tie each ``(path, parsed file)`` to its session by the night folder in its path.

    Returns the intervals of every session (keyed by ``session_id``, files or not) and the
    ``(path, reason)`` of each file that could not be tied: no night folder in its path,
    no session holds that capture, a station that differs from the folder's, or a second,
    different file for one capture.
    """
    sessions = list(sessions)
    session_of = {capture: s for s in sessions for capture in s.capture_ids}
    found: dict[str, dict[str, ClearIntervals]] = {s.session_id: {} for s in sessions}
    untied: list[tuple[str, str]] = []
    for path, parsed in files:
        path = str(path)
        folder = find_night_folder(path, suffixes)
        if folder is None:
            untied.append((path, ("no night folder {ST}_{YYYYMMDD}_{HHMMSS}_{ffffff} with a "
                                  f"suffix among {', '.join(suffixes)} in its path")))
            continue
        session = session_of.get(folder.capture_id)
        if session is None:
            untied.append((path, f"capture {folder.capture_id} is in no selected session"))
            continue
        if parsed.station != folder.station:
            untied.append((path, f"stationID {parsed.station} differs from the folder's {folder.station}"))
            continue
        known = found[session.session_id]
        if folder.capture_id in known and known[folder.capture_id] != parsed:
            untied.append((path, (f"a different interval file for capture {folder.capture_id} "
                                  "was already found; the first is kept")))
            continue
        known[folder.capture_id] = parsed
    tied = {s.session_id: SessionIntervals(s, found[s.session_id]) for s in sessions}
    return tied, untied
