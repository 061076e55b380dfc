"""Extract chosen timelapse frames to PNG images named by station and UTC time.

``python -m data_prep.extract`` finds every ``*_frames_timelapse.mp4`` under
``extract.raw_dir`` with its frame-time map beside it, chooses frames (an image-name list,
the night sampling rule, or the daytime rule: :mod:`data_prep.frame_selection`), and decodes
only the GOPs that hold them (:mod:`data_prep.frame_decode`), ``extract.workers`` videos in
parallel. Images are written atomically as ``{ST}_{YYYYMMDD}_{HHMMSS}_{mmm}.png`` and skipped
when already there. A video whose frame count disagrees with its map gives nothing (which
frame is which cannot be known); a truncated video gives the frames before the cut; both,
and unreadable videos or maps, are reported by file name and make the step exit non-zero.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import av
import hydra
import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from data_prep.frame_decode import VideoIndex, VideoReadError, index_video, read_frames
from data_prep.frame_selection import (
    FrameRef,
    VideoFrames,
    drop_existing,
    frames_by_station_night,
    group_by_video,
    match_target_list,
    sample_night,
    spread_over_videos,
)
from data_prep.label import format_names, load_interval_index
from data_prep.summary import StepSummary, run_step
from gmn_base.atomic import atomic_path, remove_stale_temporaries
from gmn_base.formats import (
    VIDEO_SUFFIX,
    GMNFormatError,
    ImageName,
    Timelapse,
    format_image_name,
    format_night,
    frame_times_candidates,
    load_frame_times,
    parse_target_list,
    parse_timelapse_name,
)

log = logging.getLogger(__name__)

KINDS = ("night", "day")
MAX_PENDING_WRITES = 8  # decoded frames waiting for the PNG writer (memory bound)


# --- pure pieces --------------------------------------------------------------------------


def mask_timestamp_overlay(image: np.ndarray, width_frac: float, height_frac: float) -> np.ndarray:
    """A copy of ``image`` with the bottom-left box (where RMS writes its UTC time) black."""
    masked = image.copy()
    height, width = image.shape[:2]
    box_h, box_w = round(height * height_frac), round(width * width_frac)
    if box_h and box_w:
        masked[height - box_h:, :box_w] = 0
    return masked


def encode_png(image: np.ndarray, level: int = 1) -> bytes:
    """PNG bytes of a uint8 HxW (gray) or HxWx3 (RGB) image, zlib ``level`` 0-9.

    FFmpeg's PNG encoder (through PyAV) with row prediction off: on noisy night frames the
    adaptive row filters that Pillow always tries shrink the file by a few per cent at about
    three times the cost, and encoding, not decoding, dominates extraction time.
    """
    if image.dtype != np.uint8:
        raise ValueError(f"PNG frames must be uint8, got {image.dtype}")
    channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else 0
    if channels not in (1, 3):
        raise ValueError(f"PNG frames must be HxW or HxWx3, got shape {image.shape}")
    codec = av.CodecContext.create("png", "w")
    codec.height, codec.width = image.shape[:2]
    codec.pix_fmt = "gray" if channels == 1 else "rgb24"
    codec.thread_count = 1
    codec.options = {"compression_level": str(level), "pred": "none"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=codec.pix_fmt)
    return b"".join(bytes(packet) for packet in (*codec.encode(frame), *codec.encode(None)))


def frame_count_mismatch(frame_map: Path, map_frames: int, video: Path, video_frames: int
                         ) -> str | None:
    """The message for a frame-time map that does not fit its video, else None."""
    if map_frames == video_frames:
        return None
    return (f"{frame_map}: frame-time map has {map_frames} entries but {video} has "
            f"{video_frames} frames; which frame is which cannot be known, so nothing was "
            "extracted from this video (re-download both files)")


# --- one video (runs in a worker process) -------------------------------------------------


@dataclass(frozen=True)
class ImageOptions:
    out_dir: str
    color: str = "auto"  # auto | gray | rgb
    mask_overlay: bool = False
    overlay_width_frac: float = 0.5
    overlay_height_frac: float = 0.06
    png_compress_level: int = 1
    seek_overhead_frames: int = 8
    decode_threads: int = 0


@dataclass(frozen=True)
class VideoJob:
    video: str
    frame_map: str
    map_frames: int
    frames: tuple[tuple[int, str], ...]  # (frame index, image name)


@dataclass
class VideoResult:
    video: str
    written: int = 0
    missing: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def save_png(image: np.ndarray, path: Path, options: ImageOptions) -> None:
    if options.mask_overlay:
        image = mask_timestamp_overlay(image, options.overlay_width_frac,
                                       options.overlay_height_frac)
    with atomic_path(path) as tmp:
        tmp.write_bytes(encode_png(image, options.png_compress_level))


def extract_video(job: VideoJob, options: ImageOptions) -> VideoResult:
    """Write ``job``'s frames as PNG; every problem is reported, naming the file."""
    result = VideoResult(job.video)
    names = dict(job.frames)
    video = Path(job.video)
    try:
        index: VideoIndex = index_video(video)
    except VideoReadError as exc:
        result.failures.append(f"{exc}; none of its {len(names)} frames extracted")
        result.missing = sorted(names.values())
        return result
    mismatch = frame_count_mismatch(Path(job.frame_map), job.map_frames, video, index.frame_count)
    if mismatch:
        result.failures.append(mismatch)
        result.missing = sorted(names.values())
        return result

    out_dir = Path(options.out_dir)

    done: set[int] = set()
    pending: deque[tuple[int, Future]] = deque()

    def finish_oldest() -> None:
        i, future = pending.popleft()
        future.result()
        done.add(i)

    # PNG encoding (zlib, GIL released) runs in a writer thread while the next frames decode.
    with ThreadPoolExecutor(max_workers=1) as writer:
        def write(i: int, image: np.ndarray) -> None:
            pending.append((i, writer.submit(save_png, image, out_dir / names[i], options)))
            if len(pending) > MAX_PENDING_WRITES:
                finish_oldest()

        try:
            _, problems = read_frames(index, list(names), write, color=options.color,
                                      seek_overhead_frames=options.seek_overhead_frames,
                                      threads=options.decode_threads)
            while pending:
                finish_oldest()
        except OSError as exc:
            problems = [f"{out_dir}: cannot write images from {video} ({exc})"]
    result.written = len(done)
    result.failures.extend(problems)
    result.missing = sorted(names[i] for i in names if i not in done)
    if index.truncated:
        last = max(index.readable_frames)
        result.failures.append(
            f"{video}: readable only up to about frame {last} of {index.frame_count} "
            f"({index.problem}); the frames before were extracted")
    if result.missing:
        result.failures.append(f"{video}: {len(result.missing)} of {len(names)} frames not "
                               f"extracted: {format_names(result.missing)}")
    return result


# --- the step -----------------------------------------------------------------------------


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


def read_target_lists(paths: list[str], summary: StepSummary) -> list[ImageName]:
    targets = []
    for name in paths:
        path = Path(name)
        try:
            targets.extend(image for image, _label in parse_target_list(path.read_text(), path))
        except (GMNFormatError, OSError) as exc:
            summary.add_failure(str(exc) if str(path) in str(exc) else f"{path}: {exc}")
    return targets


def choose_frames(cfg: DictConfig, videos: list[LoadedVideo], summary: StepSummary
                  ) -> list[FrameRef]:
    ecfg = cfg.extract
    if ecfg.target_lists:
        targets = read_target_lists(list(ecfg.target_lists), summary)
        summary.count("listed", len(targets))
        chosen, unmatched = match_target_list([v.frames for v in videos], targets)
        if unmatched:
            names = [format_image_name(t.station, t.timestamp) for t in unmatched]
            log.warning("listed images matching no frame: %s", ", ".join(names))
            summary.add_failure(f"{len(names)} listed image(s) match no frame of any video "
                                f"under {ecfg.raw_dir}: {format_names(names)}")
            summary.count("listed_not_found", len(names))
        return chosen
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


def run_jobs(jobs: list[VideoJob], options: ImageOptions, workers: int) -> Iterator[VideoResult]:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield extract_video(job, options)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = {pool.submit(extract_video, job, options): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                yield future.result()
            except BrokenProcessPool as exc:  # a worker died (killed, out of memory, crash)
                yield VideoResult(job.video, missing=sorted(name for _, name in job.frames),
                                  failures=[(f"{job.video}: worker process died ({exc}); "
                                            "rerun, completed images are kept")])


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
    existing = {p.name for p in out_dir.glob("*.png")}
    todo, n_existing = drop_existing(frames, existing)
    summary.count("skipped_existing", n_existing)

    map_of = {str(v.path): v for v in videos}
    jobs = [VideoJob(video, str(map_of[video].frame_map), len(map_of[video].frames.frame_times),
                     tuple((f.index, f.image_name) for f in refs))
            for video, refs in group_by_video(todo).items()]
    options = image_options(ecfg, out_dir)
    summary.count("written", 0)
    with tqdm(total=len(todo), desc="extract", unit="frame", disable=None) as progress:
        for result in run_jobs(jobs, options, int(ecfg.workers)):
            summary.count("written", result.written)
            if result.missing:
                summary.count("missing", len(result.missing))
            for failure in result.failures:
                summary.add_failure(failure)
            progress.update(result.written + len(result.missing))
    summary.outputs["images"] = str(out_dir)
    summary.seconds = time.monotonic() - started
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    # A ValueError is a bad setting (extract.kind, extract.color), named in the message: exit 2, no traceback.
    run_step("extract", run, cfg, log, user_errors=(ValueError,))


if __name__ == "__main__":
    main()
