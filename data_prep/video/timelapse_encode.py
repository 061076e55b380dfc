"""Write RMS-style timelapse videos: H.264, yuv420p, 30 fps, a keyframe every 120 frames.

RMS encodes its night timelapses with x264 at a fixed GOP of 120 frames and no scene-cut
keyframes, so a frame can be reached by seeking to the keyframe before it and decoding at
most 119 frames. :func:`encode_timelapse` reproduces those settings with the ffmpeg libraries
bundled in PyAV (from PyPI, no system ffmpeg). The synthetic archive and the tests that need
real videos use it; the file is written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from gmn_base.atomic import atomic_path

log = logging.getLogger(__name__)

CODEC = "libx264"
PIX_FMT = "yuv420p"


def x264_params(gop: int) -> str:
    """x264 options for a fixed, closed GOP: keyframes exactly every ``gop`` frames."""
    return f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0"


def _frame_format(frame: np.ndarray, gray: bool, index: int, path: Path) -> str:
    if frame.dtype != np.uint8:
        raise ValueError(f"{path}: frame {index} has dtype {frame.dtype}, expected uint8")
    if frame.ndim == 2:
        return "gray"
    if frame.ndim == 3 and frame.shape[2] == 3:
        if gray:
            raise ValueError(
                f"{path}: frame {index} has shape {frame.shape} but gray=True expects HxW frames"
            )
        return "rgb24"
    raise ValueError(f"{path}: frame {index} has shape {frame.shape}, expected HxW or HxWx3")


def encode_timelapse(
    path: str | Path,
    frames: Iterable[np.ndarray],
    *,
    fps: int = 30,
    gop: int = 120,
    crf: int = 23,
    gray: bool = True,
    preset: str = "fast",
) -> int:
    """Encode ``frames`` (HxW uint8 gray, or HxWx3 uint8 RGB with ``gray=False``) to ``path``.

    Returns the number of frames written. Width and height must be even (yuv420p). All
    frames must share one shape. The video replaces ``path`` only once it is complete.
    """
    path = Path(path)
    count = 0
    shape: tuple[int, ...] | None = None
    # The temporary name ends in ".tmp", so the container format is named explicitly.
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = None
        for frame in frames:
            frame = np.ascontiguousarray(frame)
            fmt = _frame_format(frame, gray, count, path)
            if stream is None:
                height, width = frame.shape[:2]
                if width % 2 or height % 2:
                    raise ValueError(
                        f"{path}: frame size {width}x{height} must be even for {PIX_FMT}"
                    )
                shape = frame.shape
                stream = container.add_stream(CODEC, rate=fps)
                stream.width, stream.height = width, height
                stream.pix_fmt = PIX_FMT
                stream.time_base = Fraction(1, fps)
                stream.codec_context.gop_size = gop
                stream.options = {
                    "crf": str(crf),
                    "preset": preset,
                    "x264-params": x264_params(gop),
                }
            elif frame.shape != shape:
                raise ValueError(
                    f"{path}: frame {count} has shape {frame.shape}, earlier frames {shape}"
                )
            video_frame = av.VideoFrame.from_ndarray(frame, format=fmt)
            video_frame.pts = count
            video_frame.time_base = Fraction(1, fps)
            for packet in stream.encode(video_frame):
                container.mux(packet)
            count += 1
        if stream is None:
            raise ValueError(f"{path}: no frames to encode")
        for packet in stream.encode(None):
            container.mux(packet)
    log.debug("wrote %s (%d frames)", path, count)
    return count
