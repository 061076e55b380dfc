"""The timelapses under ``raw_data/``: each video with its frame-time map beside it.

:func:`load_videos` finds every ``*_frames_timelapse.mp4`` at any depth, parses its name and
loads the map beside it (``_frametimes.json``, or the legacy ``_timestamps.json``); a video
whose name or map cannot be read is a failure naming the file, the others are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from data_prep.summary import StepSummary
from data_prep.video.frame_selection import VideoFrames
from gmn_base.formats import (
    VIDEO_SUFFIX,
    GMNFormatError,
    Timelapse,
    frame_times_candidates,
    load_frame_times,
    parse_timelapse_name,
)


@dataclass(frozen=True)
class LoadedVideo:
    path: Path
    frame_map: Path
    timelapse: Timelapse
    frames: VideoFrames


def find_videos(raw_dir: Path) -> list[Path]:
    return sorted(p for p in raw_dir.rglob(f"*{VIDEO_SUFFIX}") if not p.name.startswith("."))


def load_video(path: Path) -> LoadedVideo:
    """Parse a video's name and load its frame-time map; GMNFormatError or
    FileNotFoundError name the file."""
    timelapse = parse_timelapse_name(path.name, path)
    candidates = frame_times_candidates(path)
    frame_map = next((c for c in candidates if c.is_file()), None)
    if frame_map is None:
        raise FileNotFoundError(f"{path}: no frame-time map beside it (looked for "
                                f"{' or '.join(c.name for c in candidates)})")
    times = load_frame_times(frame_map)
    return LoadedVideo(path, frame_map, timelapse,
                       VideoFrames(str(path), timelapse.station, tuple(times)))


def load_videos(raw_dir: Path, summary: StepSummary) -> list[LoadedVideo]:
    if not raw_dir.is_dir():
        summary.add_failure(f"{raw_dir}: video folder not found "
                            "(run `python -m data_prep.download` first)")
        return []
    loaded = []
    for path in find_videos(raw_dir):
        try:
            loaded.append(load_video(path))
        except (GMNFormatError, OSError) as exc:
            summary.add_failure(str(exc))
            summary.count("videos_failed")
    summary.count("videos", len(loaded))
    return loaded
