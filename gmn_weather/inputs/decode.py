"""Image files to the uint8 RGB pixels the network sees: one decoder for every path.

The input cache, training without the cache, ``predict.py`` with torch and ``predict.py
backend=onnx`` all call :func:`frame_pixels` / :func:`network_pixels`, so all of them see
identical pixels. This module imports no torch (a station running the ONNX model needs PIL
and numpy only).

Decoding (:data:`DECODE_RULE`, also written into ``final/model.json``):

- 8-bit RGB is used as stored; grayscale (``L``, bilevel ``1``) is replicated to three
  channels; an alpha channel (``RGBA``, ``LA``, ``PA``) is dropped, the colour kept as stored;
  palette, CMYK, YCbCr, LAB and HSV images are converted to RGB by PIL.
- 16-bit images (PIL modes ``I;16``, ``I;16B``, ``I;16L``, and 32-bit ``I`` whose values lie
  in 0..65535, as 16-bit PNG and TIFF files open) are scaled from their type's value range
  0..65535 to 0..255 by keeping the top 8 bits (``v >> 8``, what PIL does for 16-bit RGB),
  never clipped to white. A frame that uses only 12 of the 16 bits comes out dark: scale it
  yourself if that matters. ``I`` images with values outside 0..65535 and float (``F``)
  images are refused by name.

Resizing is PIL's bilinear filter with antialiasing (what torchvision's ``Resize`` does to a
PIL image): ``[H, W]`` squeezes the frame to that size, one integer resizes the shorter edge
to it, aspect kept (the longer edge as torchvision computes it). A centre crop follows
torchvision's ``CenterCrop`` arithmetic.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

DECODE_RULE = ("gmn-weather-decode/1: 8-bit RGB as stored; grayscale replicated to 3 "
               "channels; alpha dropped; 16-bit (I;16*, I in 0..65535) scaled 0..65535 -> "
               "0..255 by v >> 8; PIL bilinear antialiased resize")

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}
_GRAY = {"L", "1", "LA", "La"}
_CONVERTED = {"P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBA", "RGBa", "RGBX"}
# What PIL raises for a file that is not (or no longer) a readable image.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, UnidentifiedImageError, EOFError,
                 Image.DecompressionBombError)


class ImageDecodeError(ValueError):
    """An image file cannot be decoded; the message names it (``path``) and why (``reason``,
    what a table of unreadable files lists beside the name)."""

    def __init__(self, path: Path | str | None, reason: str):
        super().__init__(reason if path is None else f"{path}: {reason}")
        self.path, self.reason = path, reason

    def __reduce__(self):
        return type(self), (self.path, self.reason)


def _as_8bit(image: Image.Image, path: Path) -> Image.Image:
    """``L`` or ``RGB`` 8-bit, by the rules in the module docstring."""
    mode = image.mode
    if mode in ("RGB", "L"):
        return image
    if mode in _SIXTEEN_BIT or mode == "I":
        values = np.asarray(image)
        if mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
            raise ImageDecodeError(path, f"32-bit integer image with values "
                                         f"{values.min()}..{values.max()} (outside 0..65535); "
                                         "convert it to 8-bit or 16-bit")
        return Image.fromarray((values.astype(np.uint32) >> 8).astype(np.uint8), "L")
    if mode in _GRAY:
        return image.convert("L")
    if mode in _CONVERTED:
        return image.convert("RGB")
    raise ImageDecodeError(path, f"image mode {mode!r} is not supported (expected 8-bit "
                                 "RGB/grayscale or 16-bit grayscale); convert it to 8-bit RGB")


def open_frame(path: str | Path) -> Image.Image:
    """The decoded image, 8-bit ``L`` or ``RGB``; :class:`ImageDecodeError` names the file."""
    path = Path(path)
    try:
        if os.path.getsize(path) == 0:
            raise ImageDecodeError(path, "zero-byte file")
        with Image.open(path) as image:
            image.load()
            return _as_8bit(image, path)
    except ImageDecodeError:
        raise
    except DECODE_ERRORS as exc:
        raise ImageDecodeError(path, f"{type(exc).__name__}: {exc}") from exc


def resized_size(width: int, height: int, resize: int | Sequence[int]) -> tuple[int, int]:
    """(width, height) after ``resize``: [H, W], or the shorter edge to one integer."""
    if isinstance(resize, int):
        short, long = sorted((width, height))
        new_long = int(resize * long / short)  # torchvision's rounding
        return (resize, new_long) if width <= height else (new_long, resize)
    h, w = (int(v) for v in resize)
    return w, h


def frame_pixels(path: str | Path, resize: int | Sequence[int]) -> np.ndarray:
    """The frame decoded and resized: uint8 [3, H, W] (what the input cache stores)."""
    image = open_frame(path)
    size = resized_size(*image.size, resize)
    if image.size != size:
        image = image.resize(size, Image.BILINEAR)
    pixels = np.asarray(image)
    if pixels.ndim == 2:  # grayscale resized once, then replicated
        return np.ascontiguousarray(np.broadcast_to(pixels, (3, *pixels.shape)))
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def crop_box(height: int, width: int, crop: int | Sequence[int]) -> tuple[int, int, int, int]:
    """(top, left, crop height, crop width) of a centre crop, as torchvision computes it."""
    ch, cw = (crop, crop) if isinstance(crop, int) else (int(crop[0]), int(crop[1]))
    if ch > height or cw > width:
        raise ImageDecodeError(None, f"centre crop {ch}x{cw} is larger than the resized "
                                     f"frame {height}x{width}")
    return round((height - ch) / 2.0), round((width - cw) / 2.0), ch, cw


def center_crop(pixels: np.ndarray, crop: int | Sequence[int] | None) -> np.ndarray:
    """The centre ``crop`` of [C, H, W] pixels (a view); ``None``: unchanged."""
    if crop is None:
        return pixels
    top, left, ch, cw = crop_box(pixels.shape[-2], pixels.shape[-1], crop)
    return pixels[..., top:top + ch, left:left + cw]


def network_pixels(path: str | Path, spec: Mapping[str, Any]) -> np.ndarray:
    """What the network sees of one file under the input ``spec``: uint8 [3, H, W]."""
    return np.ascontiguousarray(center_crop(frame_pixels(path, spec["resize"]),
                                            spec.get("center_crop")))


def check_image(path: str | Path) -> str | None:
    """Why ``path`` cannot be used as an image (None: it can), cheaper than a decode.

    Reads the header, then a PNG's whole stream is checked (PIL's ``verify``: chunk
    checksums up to the end marker), a JPEG is decoded at 1/8 scale (``draft``), anything
    else is decoded. Finds zero-byte, truncated and foreign files.
    """
    path = Path(path)
    try:
        if os.path.getsize(path) == 0:
            return "zero-byte file"
        with Image.open(path) as image:
            mode = image.mode
            if image.format == "PNG":
                image.verify()
            else:
                if image.format == "JPEG":
                    image.draft("L", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except DECODE_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    if mode not in _SIXTEEN_BIT | _GRAY | _CONVERTED | {"RGB", "I"}:
        return f"image mode {mode!r} is not supported; convert it to 8-bit RGB"
    return None
