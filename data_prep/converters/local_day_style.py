"""Offline day-styling of a night frame: an approximation, not a relighting.

The whole pipeline must run without a key (demo, tests), so ``converter=local`` turns a
grayscale night frame into a daytime-looking RGB frame with plain image operations:
stars (bright point sources) are removed by a grey morphological opening;
what is brighter than the night sky's typical level becomes white-grey cloud, in place and
with its shape kept; the rest of the sky becomes a daylight-blue gradient (deeper at the top);
what is clearly darker than the sky stays dark, as foreground. It knows nothing of colour,
shadows or sun direction, and clouds that are dark at night (unlit, seen only as missing
stars) become blue sky. Deterministic: the same input always gives the same output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

LOCAL_MODEL = "local-day-style"


@dataclass(frozen=True)
class DayStyleParams:
    star_size: int = 5  # opening window (odd, pixels): features smaller than this are stars
    sky_top: tuple[int, int, int] = (62, 120, 196)
    sky_horizon: tuple[int, int, int] = (150, 190, 228)
    cloud_color: tuple[int, int, int] = (236, 238, 242)
    foreground_color: tuple[int, int, int] = (38, 44, 34)
    foreground_fraction: float = 0.5  # darker than this fraction of the sky level = foreground
    min_cloud_contrast: float = 0.12  # brightness above the sky level that counts as full cloud
    cloud_percentile: float = 99.5  # brightness of the densest cloud in the frame


def remove_stars(gray: np.ndarray, star_size: int) -> np.ndarray:
    """Grey opening (min then max filter, ``star_size`` square): bright features smaller than
    the window (stars) are flattened to their surroundings; larger ones (clouds, lit ground)
    keep their shape. A light Gaussian blur follows."""
    if star_size < 3 or star_size % 2 == 0:
        raise ValueError(f"converter.star_size must be odd and >= 3, got {star_size}")
    opened = ndimage.grey_opening(gray, size=(star_size, star_size), mode="nearest")
    # The opening turns sensor noise into small flat squares; a light blur hides them.
    return ndimage.gaussian_filter(opened, sigma=star_size / 4.0, mode="nearest")


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _level(histogram: np.ndarray, fraction: float) -> float:
    """The brightness (0..1) below which ``fraction`` of the pixels lie."""
    cumulative = np.cumsum(histogram)
    return float(np.searchsorted(cumulative, fraction * cumulative[-1])) / 255.0


def day_style(night: Image.Image, params: DayStyleParams = DayStyleParams()) -> Image.Image:
    """Return an RGB day-styled image of the same size as ``night`` (any PIL mode)."""
    starless = remove_stars(np.asarray(night.convert("L")), params.star_size)
    height = starless.shape[0]

    # Cloud and foreground weights depend only on a pixel's (starless) brightness, so they
    # are computed once per grey level (256 entries) and looked up.
    histogram = np.bincount(starless.ravel(), minlength=256)
    sky_level = _level(histogram, 0.5)
    dense_level = max(_level(histogram, params.cloud_percentile / 100.0),
                      sky_level + params.min_cloud_contrast)
    v = np.arange(256, dtype=np.float32) / 255.0
    cloud = _smoothstep((v - sky_level) / (dense_level - sky_level))
    fg_level = params.foreground_fraction * sky_level
    if fg_level > 0:
        # fully foreground at half the threshold, none at the threshold: no hard edge
        foreground = _smoothstep((fg_level - v) / (0.5 * fg_level))
        ground_light = 0.6 + 0.4 * np.clip(v / fg_level, 0.0, 1.0)
    else:
        foreground, ground_light = np.zeros_like(v), np.full_like(v, 0.6)
    clouds = np.array(params.cloud_color, np.float32) * (0.85 + 0.15 * cloud)[:, None]
    ground = np.array(params.foreground_color, np.float32) * ground_light[:, None]
    # out = sky(row) * sky_weight(v) + rest(v): sky where neither cloud nor foreground
    sky_weight = ((1.0 - cloud) * (1.0 - foreground)).astype(np.float32)
    rest = (clouds * (cloud * (1.0 - foreground))[:, None] + ground * foreground[:, None])

    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = (1.0 - t) * np.array(params.sky_top, np.float32) + t * np.array(params.sky_horizon,
                                                                            np.float32)
    out = sky * sky_weight[starless][..., None] + rest.astype(np.float32)[starless]
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def params_from_config(cfg) -> DayStyleParams:
    """Build :class:`DayStyleParams` from the ``converter`` config group (missing keys keep
    their defaults)."""
    defaults = DayStyleParams()
    values = {}
    for name in DayStyleParams.__dataclass_fields__:
        if name in cfg and cfg[name] is not None:
            value = cfg[name]
            values[name] = tuple(int(v) for v in value) if isinstance(
                getattr(defaults, name), tuple) else type(getattr(defaults, name))(value)
    return DayStyleParams(**values)
