"""Decode chosen frames of a timelapse video with PyAV, decoding only the GOPs that hold them.

A first pass demuxes the packets without decoding them (cheap) to learn the frame count,
where the keyframes are and how far the file is readable. :func:`plan_decode` (pure) then
groups the target frames into runs: each run seeks to the keyframe before its first target
and decodes forward through its targets; a target joins the running decode instead of
seeking when that decodes fewer frames, so dense targets become one forward pass. A frame
is identified by its presentation time (``(pts - first pts) * time_base * fps``, rounded),
never by counting decoded frames, so a seek that lands elsewhere cannot mislabel a frame.
Packets after the first short (truncated) packet are never decoded: every frame handed out
was decoded from complete data.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

log = logging.getLogger(__name__)

# What a seek costs beyond the frames it decodes (decoder flush and restart), in frames.
DEFAULT_SEEK_OVERHEAD_FRAMES = 8


class VideoReadError(Exception):
    """A video cannot be opened or indexed; the message names the file."""


# --- pure planning ------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodeRun:
    """Seek to ``keyframe``, then decode forward through ``targets`` (ascending)."""

    keyframe: int
    targets: tuple[int, ...]

    @property
    def decoded_frames(self) -> int:
        return self.targets[-1] - self.keyframe + 1


def keyframe_before(keyframes: Sequence[int], index: int) -> int:
    """The last keyframe at or before ``index`` (``keyframes`` ascending, starting at 0)."""
    pos = bisect.bisect_right(keyframes, index) - 1
    if pos < 0:
        raise ValueError(f"no keyframe at or before frame {index}")
    return keyframes[pos]


def plan_decode(
    targets: Sequence[int],
    keyframes: Sequence[int],
    seek_overhead_frames: int = DEFAULT_SEEK_OVERHEAD_FRAMES,
) -> list[DecodeRun]:
    """Group ``targets`` into decode runs that decode the fewest frames.

    For each target (ascending) either keep decoding from the previous target, costing the
    frames in between, or seek to the keyframe before it, costing the frames from that
    keyframe plus ``seek_overhead_frames``; the cheaper wins. Targets in the same GOP always
    share a run; targets one GOP apart share one when the gap is short; targets dense
    everywhere become one pass from frame 0.
    """
    runs: list[DecodeRun] = []
    for target in sorted(set(targets)):
        keyframe = keyframe_before(keyframes, target)
        if runs:
            previous = runs[-1]
            continue_cost = target - previous.targets[-1]
            seek_cost = target - keyframe + 1 + seek_overhead_frames
            if keyframe <= previous.targets[-1] or continue_cost <= seek_cost:
                runs[-1] = DecodeRun(previous.keyframe, previous.targets + (target,))
                continue
        runs.append(DecodeRun(keyframe, (target,)))
    return runs


def decode_cost(runs: Sequence[DecodeRun]) -> int:
    """Frames decoded by ``runs``: the estimate the planner minimises."""
    return sum(run.decoded_frames for run in runs)


def frame_index(pts: int, start_pts: int, time_base: Fraction, fps: Fraction) -> int:
    """A frame's index from its presentation time (constant frame rate)."""
    return round((pts - start_pts) * time_base * fps)


# --- PyAV ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoIndex:
    """What one demux pass learns about a video, without decoding it."""

    path: str
    header_frames: int  # the container's frame count (0 when it does not say)
    readable_frames: tuple[int, ...]  # frame indices whose packets are complete
    keyframes: tuple[int, ...]
    keyframe_pts: dict[int, int]
    start_pts: int
    time_base: Fraction
    fps: Fraction
    width: int
    height: int
    truncated: bool  # a short packet or a demux error ended the readable part early
    problem: str = ""  # why it ended early

    @property
    def frame_count(self) -> int:
        """Frames the video holds: the container's count, else the packets found."""
        return self.header_frames or len(self.readable_frames)

    def index_of(self, pts: int) -> int:
        return frame_index(pts, self.start_pts, self.time_base, self.fps)


def index_video(path: str | Path) -> VideoIndex:
    """Demux ``path`` once (no decoding) and return its :class:`VideoIndex`."""
    path = Path(path)
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise VideoReadError(f"{path}: cannot open video ({exc})") from None
    with container:
        if not container.streams.video:
            raise VideoReadError(f"{path}: no video stream")
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate
        if not fps or stream.time_base is None:
            raise VideoReadError(f"{path}: frame rate or time base unknown")
        packets: list[tuple[int, bool]] = []
        truncated, problem = False, ""
        try:
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue  # the flush packet at the end of the stream
                if packet.is_corrupt:
                    truncated, problem = True, "a packet is cut short (file truncated?)"
                    break
                packets.append((packet.pts, packet.is_keyframe))
        except av.FFmpegError as exc:
            truncated, problem = True, f"demuxing stopped: {exc}"
        if not packets:
            raise VideoReadError(f"{path}: no readable frames" + (f" ({problem})" if problem else ""))
        start_pts = min(pts for pts, _ in packets)
        time_base = Fraction(stream.time_base)
        fps = Fraction(fps)
        indices = [frame_index(pts, start_pts, time_base, fps) for pts, _ in packets]
        if len(set(indices)) != len(indices):
            raise VideoReadError(
                f"{path}: two packets map to one frame index; the video does not have a "
                f"constant frame rate of {float(fps):g} fps, so frames cannot be identified")
        keyframe_pts = {i: pts for i, (pts, key) in zip(indices, packets) if key}
        if not keyframe_pts:
            raise VideoReadError(f"{path}: no keyframe among its readable frames")
        header_frames = stream.frames or 0
        if not truncated and header_frames and len(indices) < header_frames:
            truncated, problem = True, f"only {len(indices)} of {header_frames} frames present"
        return VideoIndex(
            path=str(path),
            header_frames=header_frames,
            readable_frames=tuple(sorted(indices)),
            keyframes=tuple(sorted(keyframe_pts)),
            keyframe_pts=keyframe_pts,
            start_pts=start_pts,
            time_base=time_base,
            fps=fps,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            truncated=truncated,
            problem=problem,
        )


def _decoded_frames(container, stream):
    """Frames decoded from complete packets only; a short packet ends the stream."""
    for packet in container.demux(stream):
        if packet.is_corrupt:
            yield from stream.codec_context.decode(None)
            return
        yield from packet.decode()


def is_grayscale(frame: av.VideoFrame, tolerance: int = 2) -> bool:
    """True when a YUV frame carries no colour: both chroma planes sit at neutral 128."""
    if not frame.format.name.startswith(("yuv", "yuvj")) or len(frame.planes) < 3:
        return frame.format.name.startswith("gray")
    for plane in frame.planes[1:3]:
        values = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        values = values[:, :plane.width]
        if values.min() < 128 - tolerance or values.max() > 128 + tolerance:
            return False
    return True


def frame_array(frame: av.VideoFrame, color: str) -> np.ndarray:
    """HxW uint8 luma (full range) or HxWx3 RGB, by ``color``: ``gray``, ``rgb`` or
    ``auto`` (RGB only when the frame has colour)."""
    if color == "auto":
        color = "gray" if is_grayscale(frame) else "rgb"
    return frame.to_ndarray(format="rgb24" if color == "rgb" else "gray")


def read_frames(
    index: VideoIndex,
    targets: Sequence[int],
    on_frame: Callable[[int, np.ndarray], None],
    *,
    color: str = "auto",
    seek_overhead_frames: int = DEFAULT_SEEK_OVERHEAD_FRAMES,
    threads: int = 0,
) -> tuple[set[int], list[str]]:
    """Decode the ``targets`` frames and hand each to ``on_frame(index, image)``.

    ``image`` is HxW uint8 or HxWx3 RGB as ``color`` says (see :func:`frame_array`). Returns the
    indices handed out and the problems met (each naming the file); targets beyond the
    readable part of the video are skipped, not attempted.
    """
    readable = set(index.readable_frames)
    # Frames before the first keyframe (an odd stream) cannot be decoded on their own.
    wanted = sorted(t for t in set(targets) if t in readable and t >= index.keyframes[0])
    runs = plan_decode(wanted, index.keyframes, seek_overhead_frames)
    log.debug("%s: %d frames in %d runs, %d frames to decode", index.path, len(wanted),
              len(runs), decode_cost(runs))
    done: set[int] = set()
    problems: list[str] = []
    with av.open(index.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        for run in runs:
            run_targets = set(run.targets)
            last = run.targets[-1]
            try:
                container.seek(index.keyframe_pts[run.keyframe], backward=True,
                               any_frame=False, stream=stream)
                for frame in _decoded_frames(container, stream):
                    if frame.pts is None:
                        continue
                    i = index.index_of(frame.pts)
                    if i in run_targets and i not in done:
                        on_frame(i, frame_array(frame, color))
                        done.add(i)
                    if i >= last:
                        break
            except av.FFmpegError as exc:
                problems.append(f"{index.path}: decoding frames {run.keyframe}..{last} "
                                f"failed ({exc})")
    return done, problems
