"""Which frames to extract: pure selection rules, no I/O and no decoding.

Three rules, each returning frame indices per video: (a) an image-name list in the reference
format, matched to frame-time maps by exact millisecond time (a name without station matches
that instant in every station's video, a name with station only that station's); (b) the
night sampling rule, ``per_night`` frames spread evenly over each capture session
(:func:`frames_by_session`), optionally balanced between clear and cloudy by that session's
intervals, never within ``edge_margin_s`` of an interval edge; (c) the daytime rule, ``total``
frames spread over all daytime videos. Only frames whose time the frame-time map gives are
ever chosen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from data_prep.nights.label_rules import CLEAR, classify_time
from gmn_base.image_names import ImageName, format_image_name
from gmn_base.interval_files import Interval
from gmn_base.sessions import SessionLookup
from gmn_base.station_time import frame_time_at

T = TypeVar("T")


@dataclass(frozen=True)
class VideoFrames:
    """One video's frame-time map, as selection sees it: the frames whose time it gives."""

    video: str  # a key naming the video (its path)
    station: str
    frames: tuple[tuple[int, datetime], ...]  # (frame index, UTC time), by index


@dataclass(frozen=True, slots=True)
class FrameRef:
    """One chosen frame: which video, which frame, and the image it becomes."""

    video: str
    station: str
    index: int
    timestamp: datetime

    @property
    def image_name(self) -> str:
        return format_image_name(self.station, self.timestamp)


def spread_evenly(items: Sequence[T], n: int) -> list[T]:
    """``n`` items spaced evenly through ``items`` (each from the middle of its share); all
    of them when ``n`` is not smaller than their number."""
    if n <= 0:
        return []
    if n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int((i + 0.5) * step)] for i in range(n)]


def _frames_of(video: VideoFrames) -> list[FrameRef]:
    return [FrameRef(video.video, video.station, i, ts) for i, ts in video.frames]


def unique_by_image_name(frames: Iterable[FrameRef]) -> list[FrameRef]:
    """Drop frames whose image name repeats one seen earlier (two frames in the same
    millisecond would overwrite each other's file)."""
    seen: set[str] = set()
    kept = []
    for frame in frames:
        if frame.image_name not in seen:
            seen.add(frame.image_name)
            kept.append(frame)
    return kept


def match_target_list(
    videos: Iterable[VideoFrames], targets: Iterable[ImageName]
) -> tuple[list[FrameRef], list[ImageName]]:
    """Frames named by an image list, and the names that match no frame of any video."""
    by_time: dict[datetime, list[FrameRef]] = {}
    for video in videos:
        for frame in _frames_of(video):
            by_time.setdefault(frame_time_at(frame.timestamp), []).append(frame)
    chosen: list[FrameRef] = []
    unmatched: list[ImageName] = []
    for target in targets:
        hits = [f for f in by_time.get(frame_time_at(target.timestamp), [])
                if target.station is None or f.station == target.station]
        if hits:
            chosen.extend(hits)
        else:
            unmatched.append(target)
    return unique_by_image_name(chosen), unmatched


def frames_by_session(videos: Iterable[VideoFrames], sessions: SessionLookup
                      ) -> tuple[dict[str, list[FrameRef]], list[FrameRef]]:
    """All frames grouped by the capture session each belongs to (by session id, in time
    order), and the frames no session holds."""
    groups: dict[str, list[FrameRef]] = {}
    outside: list[FrameRef] = []
    for video in videos:
        for frame in _frames_of(video):
            session = sessions.session_for(frame.station, frame.timestamp)
            if session is None:
                outside.append(frame)
            else:
                groups.setdefault(session.session_id, []).append(frame)
    for frames in groups.values():
        frames.sort(key=lambda f: (f.timestamp, f.video, f.index))
    return dict(sorted(groups.items())), outside


def sample_night(
    frames: Sequence[FrameRef],
    per_night: int,
    intervals: Sequence[Interval] | None,
    *,
    balance: bool,
    edge_margin_s: float,
) -> list[FrameRef]:
    """``per_night`` frames of one capture session, spread evenly over it.

    With ``intervals`` (None: no interval file known for these frames), frames closer than
    ``edge_margin_s`` to an interval edge are never taken, and with ``balance`` half come from
    clear and half from cloudy time, as far as the night has them (a night with too few
    frames of one kind fills up with the other, so ``per_night`` is reached when possible).
    """
    frames = unique_by_image_name(frames)
    if intervals is None:
        return spread_evenly(frames, per_night)
    clear, cloudy = [], []
    for frame in frames:
        result = classify_time(frame.timestamp, intervals)
        if abs(result.edge_distance_s) < edge_margin_s:
            continue
        (clear if result.label == CLEAR else cloudy).append(frame)
    if not balance:
        eligible = sorted(clear + cloudy, key=lambda f: (f.timestamp, f.video, f.index))
        return spread_evenly(eligible, per_night)
    n_clear = min(len(clear), math.ceil(per_night / 2))
    n_cloudy = min(len(cloudy), per_night - n_clear)
    n_clear = min(len(clear), per_night - n_cloudy)
    chosen = spread_evenly(clear, n_clear) + spread_evenly(cloudy, n_cloudy)
    return sorted(chosen, key=lambda f: (f.timestamp, f.video, f.index))


def spread_over_videos(videos: Sequence[VideoFrames], total: int) -> list[FrameRef]:
    """``total`` frames spread over ``videos``: an even share each (the first videos take
    the remainder, a short video's unused share goes to the others), evenly within each."""
    counts = [len(v.frames) for v in videos]
    shares = [0] * len(videos)
    remaining = min(total, sum(counts))
    while remaining > 0:
        open_videos = [i for i in range(len(videos)) if shares[i] < counts[i]]
        per_video, extra = divmod(remaining, len(open_videos))
        for rank, i in enumerate(open_videos):
            take = min(counts[i] - shares[i], per_video + (1 if rank < extra else 0))
            shares[i] += take
            remaining -= take
    chosen: list[FrameRef] = []
    for video, share in zip(videos, shares):
        chosen.extend(spread_evenly(unique_by_image_name(_frames_of(video)), share))
    return chosen


def group_by_video(frames: Iterable[FrameRef]) -> dict[str, list[FrameRef]]:
    grouped: dict[str, list[FrameRef]] = {}
    for frame in frames:
        grouped.setdefault(frame.video, []).append(frame)
    for refs in grouped.values():
        refs.sort(key=lambda f: f.index)
    return grouped


def drop_existing(frames: Sequence[FrameRef], existing: set[str]) -> tuple[list[FrameRef], int]:
    """Frames whose image file is not there yet, and how many already were."""
    todo = [f for f in frames if f.image_name not in existing]
    return todo, len(frames) - len(todo)
