"""Write chosen frames of one timelapse as PNG images, the frame-time map's name for each.

:func:`extract_video` indexes the video (:func:`~data_prep.video.frame_decode.index_video`),
refuses it when its frame count disagrees with its frame-time map (which frame is which cannot
be known), decodes only the wanted frames and writes each atomically while the next ones
decode; a truncated video gives the frames before the cut. Every problem is reported naming
the file. :func:`run_jobs` spreads videos over worker processes; a worker that dies is one
video's failure, not the run's. PNG encoding is FFmpeg's (through PyAV), optionally with the
RMS time overlay blacked out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from data_prep.summary import format_names
from data_prep.video.frame_decode import VideoIndex, VideoReadError, index_video, read_frames
from gmn_base.atomic import atomic_path

MAX_PENDING_WRITES = 8  # decoded frames waiting for the PNG writer (memory bound)


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
    return (f"{frame_map}: frame-time map covers {map_frames} frames (keys up to "
            f"{map_frames - 1}) but {video} has {video_frames} frames; which frame is which "
            "cannot be known, so nothing was extracted from this video (re-download both files)")


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


def run_jobs(jobs: list[VideoJob], options: ImageOptions, workers: int) -> Iterator[VideoResult]:
    """Each job's result as it finishes, ``workers`` videos at a time in worker processes."""
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
