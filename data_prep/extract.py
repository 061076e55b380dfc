"""``python -m data_prep.extract``: chosen timelapse frames to PNG images named by station and
UTC time.

Finds every ``*_frames_timelapse.mp4`` under ``extract.raw_dir`` with its frame-time map beside
it (:mod:`data_prep.video.timelapse_files`), chooses frames (an image-name list, the night
sampling rule, or the daytime rule: :mod:`data_prep.video.frame_selection`), and decodes only
the GOPs that hold them (:mod:`data_prep.video.frame_decode`), ``extract.workers`` videos in
parallel (:mod:`data_prep.video.frames_to_png`). Images are written atomically as
``{ST}_{YYYYMMDD}_{HHMMSS}_{mmm}.png`` and skipped when already there. A video whose frame count
disagrees with its map gives nothing (which frame is which cannot be known); a truncated video
gives the frames before the cut; both, and unreadable videos or maps, are reported by file
name and make the step exit non-zero.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig
from tqdm import tqdm

from data_prep.nights.interval_files import load_interval_index
from data_prep.nights.target_lists import read_target_lists
from data_prep.summary import StepSummary, format_names, run_step
from data_prep.video.frame_selection import (
    FrameRef,
    VideoFrames,
    drop_existing,
    frames_by_station_night,
    group_by_video,
    match_target_list,
    sample_night,
    spread_over_videos,
)
from data_prep.video.frames_to_png import ImageOptions, VideoJob, run_jobs
from data_prep.video.timelapse_files import LoadedVideo, load_videos
from gmn_base.atomic import remove_stale_temporaries
from gmn_base.command_line import guard_secrets
from gmn_base.formats import format_image_name, format_night

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


def sampled_night_frames(ecfg: DictConfig, night_videos: list[VideoFrames],
                         summary: StepSummary) -> list[FrameRef]:
    """``extract.per_night`` frames of each station-night, balanced by its intervals; a night
    without interval file is a failure unless ``extract.require_intervals=false``."""
    intervals, problems = load_interval_index(ecfg.intervals_dir)
    for problem in problems:
        summary.add_failure(problem)
    chosen: list[FrameRef] = []
    for (station, night), frames in frames_by_station_night(night_videos).items():
        night_intervals = intervals.get((station, night))
        if night_intervals is None and ecfg.require_intervals:
            summary.add_failure(
                f"no interval file for station {station} night {format_night(night)} under "
                f"{ecfg.intervals_dir}: its frames could not be labelled, none extracted "
                "(extract.require_intervals=false samples it anyway)")
            summary.count("nights_without_intervals")
            continue
        chosen.extend(sample_night(frames, int(ecfg.per_night), night_intervals,
                                   balance=bool(ecfg.balance),
                                   edge_margin_s=float(ecfg.edge_margin_s)))
        summary.count("nights")
    return chosen


def choose_frames(cfg: DictConfig, videos: list[LoadedVideo], summary: StepSummary
                  ) -> list[FrameRef]:
    """The frames to extract: listed ones, else by the night or the daytime rule."""
    ecfg = cfg.extract
    if ecfg.target_lists:
        return listed_frames(ecfg, videos, summary)
    neither = [v.path.name for v in videos if not (v.timelapse.is_night or v.timelapse.is_day)]
    if neither:  # started at 07 h UTC: by start hour, neither kind (see Timelapse.is_night)
        log.warning("%d video(s) are neither night nor day by their UTC start hour, not used: %s",
                    len(neither), format_names(neither))
        summary.count("videos_neither_night_nor_day", len(neither))
    if ecfg.kind == "day":
        day_videos = [v.frames for v in videos if v.timelapse.is_day]
        summary.count("day_videos", len(day_videos))
        return spread_over_videos(day_videos, int(ecfg.total))
    night_videos = [v.frames for v in videos if v.timelapse.is_night]
    summary.count("night_videos", len(night_videos))
    return sampled_night_frames(ecfg, night_videos, summary)


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
    return [VideoJob(video, str(map_of[video].frame_map), len(map_of[video].frames.frame_times),
                     tuple((f.index, f.image_name) for f in refs))
            for video, refs in group_by_video(todo).items()]


def run(cfg: DictConfig) -> StepSummary:
    started = time.monotonic()
    ecfg = cfg.extract
    summary = StepSummary("extract")
    if ecfg.kind not in KINDS:
        raise ValueError(f"extract.kind={ecfg.kind!r}: expected one of {', '.join(KINDS)}")
    out_dir = Path(ecfg.night_dir if ecfg.kind == "night" else ecfg.day_dir)
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
    # A ValueError is a bad setting (extract.kind, extract.color), named in the message: exit 2, no traceback.
    run_step("extract", run, cfg, log, user_errors=(ValueError,))


if __name__ == "__main__":
    main()
