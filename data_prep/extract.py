"""``python -m data_prep.extract``: chosen timelapse frames to PNG images named by station and
UTC time.

Finds every ``*_frames_timelapse.mp4`` under ``extract.raw_dir`` with its frame-time map beside
it, unpacking ``.tar`` timelapse packages first (:mod:`data_prep.video.timelapse_files`), sorts
night frames from day frames by the maps' ``_n``/``_d`` flags, else by the capture sessions of
``extract.nights_csv`` (:mod:`data_prep.video.night_or_day`; never by the clock), chooses
frames (an image-name list, the per-session night sampling rule, or the daytime rule:
:mod:`data_prep.video.frame_selection`), and decodes only the GOPs that hold them
(:mod:`data_prep.video.frame_decode`), ``extract.workers`` videos in parallel
(:mod:`data_prep.video.frames_to_png`). Images are written atomically as
``{ST}_{YYYYMMDD}_{HHMMSS}_{mmm}.png`` and skipped when already there. A map with gaps keeps
the frames whose times it gives (the gap is reported); a video whose frame count disagrees with
its map gives nothing (which frame is which cannot be known); a truncated video gives the
frames before the cut; all of it, and unreadable videos or maps, are reported by file name and
make the step exit non-zero.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig
from tqdm import tqdm

from data_prep.nights.nights_table import read_nights_csv, sessions_of
from data_prep.nights.session_index import SessionIndex, load_session_index
from data_prep.nights.target_lists import read_target_lists
from data_prep.remote.connect import night_folder_suffixes
from data_prep.step_lock import step_lock
from data_prep.summary import StepSummary, format_names, run_step
from data_prep.video.frame_selection import (
    FrameRef,
    VideoFrames,
    drop_existing,
    frames_by_session,
    group_by_video,
    match_target_list,
    sample_night,
    spread_over_videos,
)
from data_prep.video.frames_to_png import ImageOptions, VideoJob, run_jobs
from data_prep.video.night_or_day import NightDaySplit, split_night_day
from data_prep.video.timelapse_files import LoadedVideo, load_videos
from gmn_base.atomic import remove_stale_temporaries
from gmn_base.command_line import guard_secrets
from gmn_base.day_night import UNKNOWN
from gmn_base.image_names import format_image_name
from gmn_base.session_intervals import SessionIntervals
from gmn_base.sessions import CaptureSession, SessionLookup, SessionRule

log = logging.getLogger(__name__)

KINDS = ("night", "day")


def listed_frames(ecfg: DictConfig, videos: list[LoadedVideo], summary: StepSummary
                  ) -> list[FrameRef]:
    """Exactly the frames ``extract.target_lists`` names; a name matching no frame is a
    failure."""
    targets = read_target_lists(list(ecfg.target_lists), "extract.target_lists", summary)
    summary.count("listed", len(targets))
    chosen, unmatched = match_target_list([v.frames for v in videos], targets)
    if unmatched:
        names = [format_image_name(t.station, t.timestamp) for t in unmatched]
        log.warning("listed images matching no frame: %s", ", ".join(names))
        summary.add_failure(f"{len(names)} listed image(s) match no frame of any video "
                            f"under {ecfg.raw_dir}: {format_names(names)}")
        summary.count("listed_not_found", len(names))
    return chosen


def _session_frames(frames: list[FrameRef], found: SessionIntervals, rule: SessionRule
                    ) -> tuple[list[FrameRef], list[FrameRef]]:
    """A session's frames whose intervals are known, and those in a capture without file."""
    known, missing = [], []
    for frame in frames:
        if found.intervals_at(frame.timestamp, rule) is not None:
            known.append(frame)
        elif found.session.capture_of(frame.timestamp) not in found.files:
            missing.append(frame)
    return known, missing


def _sample_session(ecfg: DictConfig, found: SessionIntervals, frames: list[FrameRef],
                    rule: SessionRule, summary: StepSummary) -> list[FrameRef]:
    """``extract.per_night`` frames of one session; frames of captures without interval file
    are reported and not taken unless ``extract.require_intervals=false``."""
    session = found.session
    known, missing = _session_frames(frames, found, rule)
    options = {"balance": bool(ecfg.balance), "edge_margin_s": float(ecfg.edge_margin_s)}
    if missing and not ecfg.require_intervals:
        return sample_night(frames, int(ecfg.per_night), None, **options)
    if missing:
        summary.add_failure(
            f"no interval file for capture(s) {', '.join(found.missing)} of station "
            f"{session.station} night {session.night_id} under {ecfg.intervals_dir}: "
            f"{len(missing)} of its frames could not be labelled and are not taken "
            "(extract.require_intervals=false samples them anyway)")
        summary.count("frames_without_intervals", len(missing))
    if not known:
        summary.count("nights_without_intervals")
        return []
    summary.count("nights")
    return sample_night(known, int(ecfg.per_night), found.intervals, **options)


def sampled_night_frames(ecfg: DictConfig, night_videos: list[VideoFrames], index: SessionIndex,
                         summary: StepSummary) -> list[FrameRef]:
    """``extract.per_night`` frames of each capture session, balanced by its intervals."""
    groups, outside = frames_by_session(night_videos, index.lookup)
    if outside:
        log.warning("%d night frame(s) lie in no capture session of %s (nights find did not "
                    "select?); not taken", len(outside), ecfg.nights_csv)
        summary.count("night_frames_outside_sessions", len(outside))
    chosen: list[FrameRef] = []
    for session_id, frames in groups.items():
        chosen += _sample_session(ecfg, index.intervals[session_id], frames, index.lookup.rule,
                                  summary)
    return chosen


def split_videos(videos: list[LoadedVideo], sessions: list[CaptureSession],
                 summary: StepSummary) -> list[NightDaySplit]:
    """Each video's night and day frames; a video that is neither is reported and counted."""
    lookup = SessionLookup(sessions)
    splits = []
    for video in videos:
        split = split_night_day(video.frames, video.timelapse, video.flags, sessions, lookup)
        if split.verdict.kind == UNKNOWN:
            log.warning("%s: neither night nor day (%s); not used", video.path,
                        split.verdict.reason)
            summary.count("videos_neither_night_nor_day")
        splits.append(split)
    return splits


def choose_frames(cfg: DictConfig, videos: list[LoadedVideo], summary: StepSummary
                  ) -> list[FrameRef]:
    """The frames to extract: listed ones, else by the night or the daytime rule."""
    ecfg = cfg.extract
    if ecfg.target_lists:
        return listed_frames(ecfg, videos, summary)
    nights_csv = Path(str(ecfg.nights_csv))
    if ecfg.kind == "day":
        # Sessions only sort frames without _n/_d flags; a data dir without find may do without.
        sessions = sessions_of(read_nights_csv(nights_csv), nights_csv) \
            if nights_csv.is_file() else []
        day_videos = [s.day for s in split_videos(videos, sessions, summary) if s.day.frames]
        summary.count("day_videos", len(day_videos))
        return spread_over_videos(day_videos, int(ecfg.total))
    index = load_session_index(nights_csv, Path(str(ecfg.intervals_dir)), summary,
                               night_folder_suffixes(cfg.source))
    night_videos = [s.night for s in split_videos(videos, index.sessions, summary)
                    if s.night.frames]
    summary.count("night_videos", len(night_videos))
    return sampled_night_frames(ecfg, night_videos, index, summary)


def color_mode(value: object) -> str:
    """``extract.color``: auto, or true/false (also accepted as rgb/gray)."""
    modes = {"auto": "auto", True: "rgb", "rgb": "rgb", False: "gray", "gray": "gray"}
    if value not in modes:
        raise ValueError(f"extract.color={value!r}: expected auto, true or false")
    return modes[value]


def image_options(ecfg: DictConfig, out_dir: Path) -> ImageOptions:
    return ImageOptions(
        out_dir=str(out_dir),
        color=color_mode(ecfg.color),
        mask_overlay=bool(ecfg.mask_overlay),
        overlay_width_frac=float(ecfg.overlay_width_frac),
        overlay_height_frac=float(ecfg.overlay_height_frac),
        png_compress_level=int(ecfg.png_compress_level),
        seek_overhead_frames=int(ecfg.seek_overhead_frames),
        decode_threads=int(ecfg.decode_threads),
    )


def video_jobs(videos: list[LoadedVideo], todo: list[FrameRef]) -> list[VideoJob]:
    """One job per video holding frames still to write."""
    map_of = {str(v.path): v for v in videos}
    return [VideoJob(video, str(map_of[video].frame_map), map_of[video].map_frames,
                     tuple((f.index, f.image_name) for f in refs))
            for video, refs in group_by_video(todo).items()]


def output_dir(ecfg: DictConfig) -> Path:
    """``extract.night_dir`` or ``extract.day_dir``, as ``extract.kind`` says."""
    if ecfg.kind not in KINDS:
        raise ValueError(f"extract.kind={ecfg.kind!r}: expected one of {', '.join(KINDS)}")
    return Path(ecfg.night_dir if ecfg.kind == "night" else ecfg.day_dir)


def run(cfg: DictConfig) -> StepSummary:
    """One extract run per output folder at a time (:mod:`data_prep.step_lock`)."""
    with step_lock("extract", output_dir(cfg.extract)):
        return extract_frames(cfg)


def extract_frames(cfg: DictConfig) -> StepSummary:
    started = time.monotonic()
    ecfg = cfg.extract
    summary = StepSummary("extract")
    out_dir = output_dir(ecfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = remove_stale_temporaries(out_dir)
    if stale:
        log.info("%s: removed %d temporary file(s) left by an interrupted run", out_dir, stale)

    videos = load_videos(Path(ecfg.raw_dir), summary)
    frames = choose_frames(cfg, videos, summary)
    summary.count("selected", len(frames))
    todo, n_existing = drop_existing(frames, {p.name for p in out_dir.glob("*.png")})
    summary.count("skipped_existing", n_existing)
    options = image_options(ecfg, out_dir)
    summary.count("written", 0)
    with tqdm(total=len(todo), desc="extract", unit="frame", disable=None) as progress:
        for result in run_jobs(video_jobs(videos, todo), options, int(ecfg.workers)):
            summary.count("written", result.written)
            if result.missing:
                summary.count("missing", len(result.missing))
            for failure in result.failures:
                summary.add_failure(failure)
            progress.update(result.written + len(result.missing))
    summary.outputs["images"] = str(out_dir)
    summary.seconds = time.monotonic() - started
    return summary


@guard_secrets
@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    # A ValueError is a bad setting (extract.kind, extract.color) or a nights.csv of the old
    # rule, a FileNotFoundError a missing nights.csv, named in the message: exit 2, no traceback.
    run_step("extract", run, cfg, log, user_errors=(ValueError, FileNotFoundError))


if __name__ == "__main__":
    main()
