"""Offline day-styling of a night frame: an approximation, not a relighting.

The whole pipeline must run without a key (demo, tests), so ``converter=local`` turns a
grayscale night frame into a daytime-looking RGB frame with plain image operations:
stars (bright point sources) are removed by a morphological opening plus a median filter;
what is brighter than the night sky's typical level becomes white-grey cloud, in place and
with its shape kept; the rest of the sky becomes a daylight-blue gradient (deeper at the top);
what is clearly darker than the sky stays dark, as foreground. It knows nothing of colour,
shadows or sun direction, and clouds that are dark at night (unlit, seen only as missing
stars) become blue sky. Deterministic: the same input always gives the same output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

LOCAL_MODEL = "local-day-style"


@dataclass(frozen=True)
class DayStyleParams:
    star_size: int = 3  # opening window (odd, pixels): features smaller than this are stars
    sky_top: tuple[int, int, int] = (62, 120, 196)
    sky_horizon: tuple[int, int, int] = (150, 190, 228)
    cloud_color: tuple[int, int, int] = (236, 238, 242)
    foreground_color: tuple[int, int, int] = (38, 44, 34)
    foreground_fraction: float = 0.5  # darker than this fraction of the sky level = foreground
    min_cloud_contrast: float = 0.12  # brightness above the sky level that counts as full cloud
    cloud_percentile: float = 99.5  # brightness of the densest cloud in the frame


def remove_stars(gray: Image.Image, star_size: int) -> Image.Image:
    """Grey opening (min then max filter) drops bright features smaller than ``star_size``;
    a 3x3 median then removes what is left of the faintest ones."""
    if star_size < 3 or star_size % 2 == 0:
        raise ValueError(f"converter.star_size must be odd and >= 3, got {star_size}")
    opened = gray.filter(ImageFilter.MinFilter(star_size)).filter(ImageFilter.MaxFilter(star_size))
    return opened.filter(ImageFilter.MedianFilter(3))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def day_style(night: Image.Image, params: DayStyleParams = DayStyleParams()) -> Image.Image:
    """Return an RGB day-styled image of the same size as ``night`` (any PIL mode)."""
    gray = night.convert("L")
    starless = np.asarray(remove_stars(gray, params.star_size), dtype=np.float32) / 255.0
    height, width = starless.shape

    sky_level = float(np.median(starless))
    dense_level = max(float(np.percentile(starless, params.cloud_percentile)),
                      sky_level + params.min_cloud_contrast)
    cloud = _smoothstep((starless - sky_level) / (dense_level - sky_level))

    fg_level = params.foreground_fraction * sky_level
    if fg_level > 0:
        # fully foreground at half the threshold, none at the threshold: no hard edge
        foreground = _smoothstep((fg_level - starless) / (0.5 * fg_level))
    else:
        foreground = np.zeros_like(starless)

    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = (1.0 - t) * np.array(params.sky_top, np.float32) + t * np.array(params.sky_horizon,
                                                                            np.float32)
    sky = np.broadcast_to(sky, (height, width, 3))
    shade = (0.85 + 0.15 * cloud)[..., None]
    clouds = np.array(params.cloud_color, np.float32) * shade
    c = cloud[..., None]
    out = sky * (1.0 - c) + clouds * c
    ground_light = 0.6 + 0.4 * np.clip(starless / fg_level, 0.0, 1.0) if fg_level > 0 else 0.6
    ground = np.array(params.foreground_color, np.float32) * np.asarray(ground_light)[..., None]
    f = foreground[..., None]
    out = out * (1.0 - f) + ground * f
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
