"""The timelapses under ``raw_data/``: each video with its frame-time map beside it.

:func:`load_videos` unpacks timelapse packages (``.tar``, :mod:`.timelapse_packages`), finds
every ``*_frames_timelapse.mp4`` at any depth (the older daily ``{ST}_{YYYYMMDD}-{DOY}`` names
included), parses its name and loads the map beside it (``_frametimes.json``, or the legacy
``_timestamps.json``). A map with gaps (RMS leaves out the key of a frame whose image name it
could not parse) keeps the frames whose times it gives; the gap, frames sharing one time and
frames out of order are reported naming the map (:func:`report_map`). A video whose name or map
cannot be read at all is a failure naming the file; the others are used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from data_prep.summary import StepSummary
from data_prep.video.frame_selection import VideoFrames
from data_prep.video.timelapse_packages import unpack_packages
from gmn_base.errors import GMNFormatError
from gmn_base.frame_times import FrameTimeMap, format_frame_time, load_frame_time_map
from gmn_base.image_names import format_image_name
from gmn_base.timelapse_names import (
    VIDEO_SUFFIX,
    Timelapse,
    frame_times_candidates,
    parse_timelapse_name,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedVideo:
    path: Path
    frame_map: Path
    timelapse: Timelapse
    frames: VideoFrames
    map_frames: int  # frames the map accounts for: its highest index + 1
    flags: dict[int, str | None] = field(default_factory=dict)


def find_videos(raw_dir: Path) -> list[Path]:
    return sorted(p for p in raw_dir.rglob(f"*{VIDEO_SUFFIX}") if not p.name.startswith("."))


def report_map(frame_map: FrameTimeMap, station: str, summary: StepSummary) -> None:
    """A map's gaps, unreadable times, shared times and disorder: warnings naming the map,
    counted. Frames sharing a time would share an image name: the first is the one written."""
    where = frame_map.source
    if frame_map.unknown:
        summary.count("frames_without_time", len(frame_map.unknown))
    for message in replace(frame_map, shared_times=()).anomalies():
        log.warning("%s", message)
    for ts, indices in frame_map.shared_times:
        log.warning("%s: frames %s share the time %s; only frame %d becomes %s", where,
                    ", ".join(map(str, indices)), format_frame_time(ts, None), indices[0],
                    format_image_name(station, ts))
        summary.count("frames_sharing_a_time", len(indices) - 1)
    if frame_map.out_of_order:
        summary.count("frames_out_of_order", len(frame_map.out_of_order))


def load_video(path: Path, summary: StepSummary) -> LoadedVideo:
    """Parse a video's name and load its frame-time map; GMNFormatError or
    FileNotFoundError name the file."""
    timelapse = parse_timelapse_name(path.name, path)
    candidates = frame_times_candidates(path)
    frame_map = next((c for c in candidates if c.is_file()), None)
    if frame_map is None:
        raise FileNotFoundError(f"{path}: no frame-time map beside it (looked for "
                                f"{' or '.join(c.name for c in candidates)})")
    parsed = load_frame_time_map(frame_map)
    report_map(parsed, timelapse.station, summary)
    frames = VideoFrames(str(path), timelapse.station, tuple(sorted(parsed.times.items())))
    return LoadedVideo(path, frame_map, timelapse, frames, parsed.frame_count, dict(parsed.flags))


def load_videos(raw_dir: Path, summary: StepSummary) -> list[LoadedVideo]:
    if not raw_dir.is_dir():
        summary.add_failure(f"{raw_dir}: video folder not found "
                            "(run `python -m data_prep.download` first)")
        return []
    unpack_packages(raw_dir, summary)
    loaded = []
    for path in find_videos(raw_dir):
        try:
            loaded.append(load_video(path, summary))
        except (GMNFormatError, OSError) as exc:
            summary.add_failure(str(exc))
            summary.count("videos_failed")
    summary.count("videos", len(loaded))
    return loaded
