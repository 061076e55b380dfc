"""Which frames of a timelapse are night frames and which day frames, never by the clock.

:func:`gmn_base.day_night.classify_timelapse` decides a whole timelapse: by its frames' ``_n``
/ ``_d`` flags, else by the capture sessions its edges meet. A ``mixed`` one (both flags, or an
older one-UTC-day timelapse a session starts inside) is split frame by frame: a frame's own
flag, else whether a capture session holds its time. ``unknown`` gives neither kind; the step
reports it. Pure, no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from data_prep.video.frame_selection import VideoFrames
from gmn_base.day_night import DAY, MIXED, NIGHT, DayNight, classify_timelapse
from gmn_base.sessions import CaptureSession, SessionLookup
from gmn_base.timelapse_names import Timelapse


@dataclass(frozen=True)
class NightDaySplit:
    """One video's night frames, day frames and the verdict that sorted them."""

    night: VideoFrames
    day: VideoFrames
    verdict: DayNight


def split_night_day(frames: VideoFrames, lapse: Timelapse, flags: Mapping[int, str | None],
                    sessions: Sequence[CaptureSession], lookup: SessionLookup) -> NightDaySplit:
    """Sort ``frames`` (``flags``: each frame's ``_n``/``_d`` flag or None, by index)."""
    verdict = classify_timelapse(lapse, Counter(flags.get(i) for i, _ in frames.frames),
                                 sessions, lookup.rule)
    none = replace(frames, frames=())
    if verdict.kind == NIGHT:
        return NightDaySplit(frames, none, verdict)
    if verdict.kind == DAY:
        return NightDaySplit(none, frames, verdict)
    if verdict.kind != MIXED:
        return NightDaySplit(none, none, verdict)
    night, day = [], []
    for index, ts in frames.frames:
        flag = flags.get(index)
        is_night = flag == "n" if flag else lookup.session_for(frames.station, ts) is not None
        (night if is_night else day).append((index, ts))
    return NightDaySplit(replace(frames, frames=tuple(night)), replace(frames, frames=tuple(day)),
                         verdict)
