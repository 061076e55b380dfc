"""The frames a training job reads, after every listed image was checked once.

:func:`prepare_frames` runs before training starts: with the input cache
(``data.cache=true``, :mod:`gmn_weather.inputs.cache`) it decodes whatever the cache lacks,
which checks those images and remembers the result; without it, each image's header and
stream are checked (:func:`gmn_weather.inputs.decode.check_image`) and the frames are decoded
again every epoch (:class:`DecodedFrames`). Either way, all unreadable, truncated and
zero-byte files are known before the first batch: :class:`UnreadableImagesError` names them
all at once, or ``data.skip_unreadable=true`` drops and counts them. Torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from gmn_weather.inputs.cache import InputCache
from gmn_weather.inputs.decode import check_image, frame_pixels
from gmn_weather.labelled_images import LabelsError

log = logging.getLogger(__name__)

MAX_NAMED = 50  # unreadable files named in one message


class UnreadableImagesError(LabelsError):
    """Listed images that cannot be decoded; the message names every one."""


class Frames(Protocol):
    """uint8 [3, H, W] pixels of the listed files, by position in the list."""

    def __len__(self) -> int: ...

    def pixels(self, position: int) -> np.ndarray: ...


class DecodedFrames:
    """Frames decoded from their files at every read (``data.cache=false``)."""

    def __init__(self, paths: Sequence[str | Path], resize: int | Sequence[int]):
        self.paths, self.resize = [str(p) for p in paths], resize

    def __len__(self) -> int:
        return len(self.paths)

    def pixels(self, position: int) -> np.ndarray:
        return frame_pixels(self.paths[position], self.resize)


@dataclass
class PreparedFrames:
    frames: Frames
    unreadable: dict[str, str]  # listed path -> reason
    cache_line: str | None  # what the cache did, for the job's log


def check_images(paths: Sequence[str | Path], workers: int = 0) -> dict[str, str]:
    """{path: reason} of the files that cannot be read as images."""
    with ThreadPoolExecutor(max(1, workers)) as pool:  # PIL releases the GIL while reading
        reasons = list(pool.map(check_image, paths))
    return {str(p): r for p, r in zip(paths, reasons) if r is not None}


def prepare_frames(paths: Sequence[str | Path], resize: int | Sequence[int],
                   cache_dir: str | Path | None, workers: int = 0) -> PreparedFrames:
    """The frames of ``paths`` (from the cache when ``cache_dir`` is set) and the files
    that cannot be read."""
    if cache_dir is None:
        log.info("input cache off (data.cache=false): checking %d images; they are decoded "
                 "again every epoch", len(paths))
        return PreparedFrames(DecodedFrames(paths, resize), check_images(paths, workers), None)
    frames, report = InputCache(cache_dir, resize, workers).build(paths)
    return PreparedFrames(frames, report.unreadable, report.line())


def unreadable_message(unreadable: dict[str, str], n_listed: int, listed_in: str) -> str:
    """One message naming every unreadable file (up to :data:`MAX_NAMED`) and the ways out."""
    lines = [(f"{len(unreadable)} of the {n_listed} images listed in {listed_in} cannot be "
              "read; fix or replace them, remove their rows, or train without them with "
              "data.skip_unreadable=true:")]
    for path, reason in sorted(unreadable.items())[:MAX_NAMED]:
        lines.append(f"  {path}: {reason}")
    if len(unreadable) > MAX_NAMED:
        lines.append(f"  ... and {len(unreadable) - MAX_NAMED} more")
    return "\n".join(lines)
