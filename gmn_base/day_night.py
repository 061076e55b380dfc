"""Night or day: which timelapses show the night sky, never decided by the UTC hour.

RMS cuts frame timelapses where the frames switch between night and day mode and flags each
frame ``_n`` or ``_d`` in the frame-time map (``Utils/GenerateTimelapse.py``:
``listImageBlocksBefore``). Those flags decide. Where a map carries no flags, the capture
sessions decide: a night timelapse starts when a capture session starts (dusk) or ends when
it ends (dawn); a day timelapse ends when a session starts or starts when one ends. A
timelapse holding a session start well inside it (the older one-UTC-day timelapses) is
mixed: its frames must be told apart one by one with :class:`gmn_base.sessions.SessionLookup`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from gmn_base.sessions import DEFAULT_RULE, CaptureSession, SessionRule
from gmn_base.timelapse_names import Timelapse

NIGHT = "night"
DAY = "day"
MIXED = "mixed"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class DayNight:
    """The verdict (night | day | mixed | unknown) and what decided it, for reports."""

    kind: str
    reason: str


def _by_flags(flags: Counter) -> DayNight | None:
    night, day, none = flags.get("n", 0), flags.get("d", 0), flags.get(None, 0)
    if not night and not day:
        return None
    counts = f"{night} _n, {day} _d, {none} unflagged frames"
    if night and day:
        return DayNight(MIXED, f"frame flags: {counts}")
    return DayNight(NIGHT if night else DAY, f"frame flags: {counts}")


def _near(a: datetime, b: datetime | None, rule: SessionRule) -> bool:
    return b is not None and abs(a - b) <= rule.tolerance


def _by_sessions(lapse: Timelapse, sessions: list[CaptureSession], rule: SessionRule) -> DayNight:
    for s in sessions:
        if _near(lapse.start, s.start, rule) or _near(lapse.end, s.end, rule):
            return DayNight(NIGHT, f"spans capture session {s.session_id} (night {s.night_id})")
        if _near(lapse.end, s.start, rule) or _near(lapse.start, s.end, rule):
            return DayNight(DAY, f"ends as capture session {s.session_id} starts, or starts as "
                                 "it ends")
    inside = [s for s in sessions if lapse.start + rule.tolerance < s.start < lapse.end - rule.tolerance]
    if inside:
        return DayNight(MIXED, f"capture session {inside[0].session_id} starts inside it")
    return DayNight(UNKNOWN, "no frame flags and no capture session starts or ends at its edges")


def classify_timelapse(lapse: Timelapse, frame_flags: Iterable[str | None] | Counter | None = None,
                       sessions: Iterable[CaptureSession] = (),
                       rule: SessionRule = DEFAULT_RULE) -> DayNight:
    """Night or day for one timelapse: by its frames' ``_n``/``_d`` flags (``frame_flags``: the
    flags, or a count of them as in :attr:`FrameTimeMap.flag_counts`), else by the capture
    sessions of its station (see the module doc). Never by the clock."""
    if frame_flags is not None:
        counts = frame_flags if isinstance(frame_flags, Counter) else Counter(frame_flags)
        verdict = _by_flags(counts)
        if verdict is not None:
            return verdict
    own = sorted((s for s in sessions if s.station == lapse.station), key=lambda s: s.start)
    return _by_sessions(lapse, own, rule)
