"""Offline day-styling of a night frame: an approximation, not a relighting.

The whole pipeline must run without a key (demo, tests), so ``converter=local`` turns a
grayscale night frame into a daytime-looking RGB frame with plain image operations. Cloud is
found the way an observer finds it at night, by the stars it hides, helped by brightness:

- stars are point sources standing ``star_contrast`` above a grey morphological opening of
  the frame (which also gives the starless image);
- where stars show at the density of a clear sky (``clear_star_density``) the sky is clear;
  where they are missing it is cloud, lit by a town or dark (a uniformly overcast frame
  becomes cloud, however bright or dark it is);
- within that, what is brighter than the starry sky's level is cloud too, with its shape
  kept (the star-density map is coarse, brightness gives the edges);
- clear sky becomes a daylight-blue gradient (deeper at the top); cloud becomes white, grey
  when it covers most of the sky, with the night frame's brightness texture; what is clearly
  darker than the sky stays dark, as foreground.

It knows nothing of colour, shadows or sun direction. Deterministic: the same input always
gives the same output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

LOCAL_MODEL = "local-day-style"
# converter.clear_star_density=auto: a sky counts as fully clear from this share of the
# median star density of a station's frames labelled clear (the demo's clear frames show
# about 1.8; 1.2, which tracked their true cloud cover best, is two thirds of that).
CLEAR_DENSITY_SHARE = 0.65


@dataclass(frozen=True)
class DayStyleParams:
    star_size: int = 5  # opening window (odd, pixels): features smaller than this are stars
    star_contrast: float = 25.0  # DN above the starless background for a point to be a star
    # Stars per 1 % of the frame's area (counted over its sky part) from which the sky is
    # clear, at this camera's resolution and exposure: the demo's 320x180 synthetic clear
    # frames show about 1.8 (median over the sky), more in the middle, fewer in the
    # corners; half as many: half cloud. converter.clear_star_density=auto measures it.
    clear_star_density: float = 1.2
    star_density_radius: float = 0.15  # Gaussian radius of the star-density map, frame heights
    sky_top: tuple[int, int, int] = (62, 120, 196)
    sky_horizon: tuple[int, int, int] = (150, 190, 228)
    cloud_color: tuple[int, int, int] = (236, 238, 242)  # broken cloud
    overcast_color: tuple[int, int, int] = (178, 181, 187)  # cloud covering the whole sky
    foreground_color: tuple[int, int, int] = (38, 44, 34)
    foreground_fraction: float = 0.5  # darker than this fraction of the sky level = foreground
    min_cloud_contrast: float = 0.12  # brightness above the sky level that counts as full cloud
    cloud_percentile: float = 99.5  # brightness of the densest cloud in the frame


def _opening(gray: np.ndarray, star_size: int) -> np.ndarray:
    """Grey opening (min then max filter, ``star_size`` square): bright features smaller than
    the window (stars) are flattened to their surroundings; larger ones (clouds, lit ground)
    keep their shape."""
    if star_size < 3 or star_size % 2 == 0:
        raise ValueError(f"converter.star_size must be odd and >= 3, got {star_size}")
    return ndimage.grey_opening(gray, size=(star_size, star_size), mode="nearest")


def _blur(opened: np.ndarray, star_size: int) -> np.ndarray:
    # The opening turns sensor noise into small flat squares; a light blur hides them.
    return ndimage.gaussian_filter(opened, sigma=star_size / 4.0, mode="nearest")


def find_stars(gray: np.ndarray, opened: np.ndarray, star_contrast: float) -> np.ndarray:
    """Boolean map of star peaks: local maxima standing ``star_contrast`` above ``opened``."""
    top_hat = gray.astype(np.float32) - opened.astype(np.float32)
    peaks = ndimage.maximum_filter(top_hat, size=3, mode="nearest") == top_hat
    return peaks & (top_hat > star_contrast)


def star_density(stars: np.ndarray, sky: np.ndarray, params: DayStyleParams) -> np.ndarray:
    """Per pixel, the stars found in the sky part of the frame within about
    ``star_density_radius`` frame heights, per 1 % of the frame's area."""
    height, width = stars.shape
    sigma = max(1.0, params.star_density_radius * height)
    found = _wide_blur((stars & sky).astype(np.float32), sigma)
    area = _wide_blur(sky.astype(np.float32), sigma)
    return found / np.maximum(area, 1e-6) * (0.01 * height * width) * (area > 1e-3)


def _wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of radius ``sigma`` (zero outside the frame), as three box filters:
    its cost does not grow with the radius (a true Gaussian of a tenth of a 720p frame's
    height takes half a second)."""
    width = round(float(np.sqrt(4.0 * sigma * sigma + 1.0))) | 1
    for _ in range(3):
        image = ndimage.uniform_filter(image, width, mode="constant")
    return image


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _level(histogram: np.ndarray, fraction: float) -> float:
    """The brightness (0..1) below which ``fraction`` of the pixels lie."""
    cumulative = np.cumsum(histogram)
    if cumulative[-1] == 0:
        return 0.0
    return float(np.searchsorted(cumulative, fraction * cumulative[-1])) / 255.0


@dataclass(frozen=True)
class SkyParts:
    """Per-pixel weights of a night frame (HxW float32, 0..1)."""

    cloud: np.ndarray  # cloud (already zero on foreground)
    foreground: np.ndarray
    brightness: np.ndarray  # the starless frame, 0..1
    foreground_level: float  # brightness under which foreground starts

    @property
    def sky(self) -> np.ndarray:
        return self.foreground < 0.5

    @property
    def cover(self) -> float:
        """Mean cloud over the sky part of the frame."""
        sky = self.sky
        return float(self.cloud[sky].mean()) if sky.any() else 0.0


def _foreground(starless: np.ndarray, params: DayStyleParams) -> tuple[np.ndarray, float]:
    """Foreground weight (0..1) of each pixel and the brightness (0..1) under which it starts:
    clearly darker than the frame's typical level (ground, buildings, the overlay strip),
    fading in over half that level so there is no hard edge."""
    v = starless.astype(np.float32) / 255.0
    fg_level = params.foreground_fraction * _level(np.bincount(starless.ravel(), minlength=256),
                                                   0.5)
    if fg_level > 0:
        return _smoothstep((fg_level - v) / (0.5 * fg_level)), fg_level
    return np.zeros_like(v), fg_level


@dataclass(frozen=True)
class _StarMap:
    starless: np.ndarray  # the frame with its stars removed (uint8)
    foreground: np.ndarray
    foreground_level: float
    density: np.ndarray  # stars per 1 % of the frame's area, per pixel (see star_density)

    @property
    def sky(self) -> np.ndarray:
        return self.foreground < 0.5


def _star_map(gray: np.ndarray, params: DayStyleParams) -> _StarMap:
    """What both the cloud split and the calibration start from: the starless frame, its
    foreground, and the density of the stars found in its sky."""
    opened = _opening(gray, params.star_size)
    starless = _blur(opened, params.star_size)
    foreground, fg_level = _foreground(starless, params)
    density = star_density(find_stars(gray, opened, params.star_contrast), foreground < 0.5,
                           params)
    return _StarMap(starless, foreground, fg_level, density)


def frame_star_density(gray: np.ndarray, params: DayStyleParams = DayStyleParams()) -> float:
    """The median star density over the sky part of a grayscale frame (stars per 1 % of the
    frame's area): on a clear frame, what this camera shows of a clear sky."""
    stars = _star_map(gray, params)
    sky = stars.sky
    return float(np.median(stars.density[sky])) if sky.any() else 0.0


def calibrated_clear_star_density(clear_frame_densities: list[float]) -> float | None:
    """``clear_star_density`` for a camera from :func:`frame_star_density` of frames known to
    be clear: a share (:data:`CLEAR_DENSITY_SHARE`) of their median, as a clear sky shows
    fewer stars in the corners and near the horizon than in the middle. None without frames
    or stars."""
    if not clear_frame_densities:
        return None
    value = float(np.median(clear_frame_densities)) * CLEAR_DENSITY_SHARE
    return value if value > 0 else None


def sky_parts(gray: np.ndarray, params: DayStyleParams = DayStyleParams()) -> SkyParts:
    """Split a grayscale night frame (HxW uint8) into cloud, clear sky and foreground."""
    stars = _star_map(gray, params)
    starless, foreground, density, sky = stars.starless, stars.foreground, stars.density, stars.sky
    v = starless.astype(np.float32) / 255.0
    # Stars at a clear sky's density: clear; none: cloud, lit or dark.
    clear = _smoothstep(density / params.clear_star_density)
    cloud = 1.0 - clear
    starry = sky & (clear > 0.75)
    if starry.sum() >= 0.02 * max(1, sky.sum()):
        # Brighter than the starry sky is cloud as well (lit cloud, sharp edges), but not
        # where stars show at twice the clear-sky density or more: light-pollution glow
        # with stars all over it is not cloud.
        sky_level = _level(np.bincount(starless[starry], minlength=256), 0.5)
        dense_level = max(_level(np.bincount(starless[sky], minlength=256),
                                 params.cloud_percentile / 100.0),
                          sky_level + params.min_cloud_contrast)
        bright = _smoothstep((v - sky_level) / (dense_level - sky_level))
        thinned = _smoothstep(2.0 - density / params.clear_star_density)
        cloud = np.maximum(cloud, bright * thinned)
    return SkyParts((cloud * (1.0 - foreground)).astype(np.float32),
                    foreground.astype(np.float32), v, stars.foreground_level)


def day_style(night: Image.Image, params: DayStyleParams = DayStyleParams()) -> Image.Image:
    """Return an RGB day-styled image of the same size as ``night`` (any PIL mode)."""
    parts = sky_parts(np.asarray(night.convert("L")), params)
    cloud, foreground, v, sky = parts.cloud, parts.foreground, parts.brightness, parts.sky
    height = v.shape[0]

    # Cloud colour: white when broken, grey when it covers the sky; brighter where the night
    # frame is brighter (its texture).
    cover = parts.cover
    base = (np.array(params.cloud_color, np.float32) * (1.0 - cover**2)
            + np.array(params.overcast_color, np.float32) * cover**2)
    if sky.any():
        low, high = np.percentile(v[sky], [5, 95])
        texture = np.clip((v - low) / max(high - low, 1e-3), 0.0, 1.0)
    else:
        texture = np.ones_like(v)
    clouds = base * (0.88 + 0.12 * texture)[..., None]
    ground_light = 0.6 + 0.4 * np.clip(v / max(parts.foreground_level, 1e-6), 0.0, 1.0)
    ground = np.array(params.foreground_color, np.float32) * ground_light[..., None]

    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky_rgb = (1.0 - t) * np.array(params.sky_top, np.float32) + t * np.array(
        params.sky_horizon, np.float32)
    clear_sky = ((1.0 - cloud) * (1.0 - foreground))[..., None]
    out = sky_rgb * clear_sky + clouds * cloud[..., None] + ground * foreground[..., None]
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


AUTO = "auto"


def params_from_config(cfg) -> DayStyleParams:
    """Build :class:`DayStyleParams` from the ``converter`` config group (missing keys, and
    ``clear_star_density: auto``, which the step measures per station, keep their defaults)."""
    defaults = DayStyleParams()
    values = {}
    for name in DayStyleParams.__dataclass_fields__:
        if name in cfg and cfg[name] is not None and cfg[name] != AUTO:
            value = cfg[name]
            try:
                values[name] = tuple(int(v) for v in value) if isinstance(
                    getattr(defaults, name), tuple) else type(getattr(defaults, name))(value)
            except (TypeError, ValueError):
                raise ValueError(f"converter.{name}={value!r}: expected "
                                 f"{type(getattr(defaults, name)).__name__}"
                                 f"{' or auto' if name == 'clear_star_density' else ''}") from None
    return DayStyleParams(**values)


def wants_auto_density(cfg) -> bool:
    """``converter.clear_star_density: auto``: measure it per station from labelled frames."""
    return cfg.get("clear_star_density") == AUTO
