"""Draw synthetic GMN camera frames: star field, sky glow, clouds, foreground, overlay.

Night frames are grayscale: stars through a point-spread function, dimmed by the clouds in
front of them, over a light-polluted sky with airglow, moon glow on some nights, clouds lit
from below, lens vignetting and sensor noise. Day frames are RGB: blue sky with sun glare,
bright broken cloud, grey overcast. Both carry the RMS UTC text overlay at the bottom-left.
The scene: :mod:`.sky_scene`; the weather: :mod:`.clouds`. Pure numpy/PIL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import gaussian_filter
from scipy.special import ndtri

from data_prep.synthetic.clouds import CLOUD_CELLS_PER_HEIGHT, CloudField
from data_prep.synthetic.sky_scene import DETECTION_MAG, StationScene

# Standard-normal quantiles of 256 equal-probability bins: sensor noise drawn from random
# bytes through this table is ~3x faster than rng.standard_normal and close enough to Gaussian.
_NOISE_TABLE = ndtri((np.arange(256) + 0.5) / 256).astype(np.float32)
_NOISE_TABLE.flags.writeable = False


def sensor_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Approximately standard-normal float32 noise of ``shape``."""
    n = int(np.prod(shape))
    return _NOISE_TABLE[np.frombuffer(rng.bytes(n), dtype=np.uint8)].reshape(shape)


@dataclass(frozen=True)
class NightLook:
    """Per-span lighting: moon glow and the resulting sky and cloud brightness maps."""

    sky: np.ndarray      # clear-sky background, DN
    cloud: np.ndarray    # brightness of a thick cloud, DN (lit by towns and the moon)
    ground: np.ndarray   # True below the silhouette
    moon: bool
    vignette: np.ndarray  # lens fall-off towards the corners (multiplies the sky signal)


def _upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(grid.astype(np.float32), mode="F").resize(
        (width, height), Image.BILINEAR))


def ground_mask(scene: StationScene, height: int, width: int) -> np.ndarray:
    u = (np.arange(width) + 0.5) / width * scene.aspect
    v = (np.arange(height) + 0.5) / height
    return v[:, None] >= scene.horizon_at(u)[None, :]


def night_look(scene: StationScene, rng: np.random.Generator, height: int, width: int,
               moon_probability: float) -> NightLook:
    u = ((np.arange(width) + 0.5) / width * scene.aspect)[None, :]
    v = ((np.arange(height) + 0.5) / height)[:, None]
    horizon_v = float(np.median(scene.horizon))
    altitude = np.clip(horizon_v - v, 0, None)           # frame heights above the horizon
    airglow = 6.0 * np.exp(-altitude / 0.35)              # brighter towards the horizon
    city = scene.city_strength * np.exp(-np.hypot(u - scene.city_u, altitude) / 0.45)
    sky = 18.0 + airglow + city
    cloud = 55.0 + 2.5 * city + 1.5 * airglow            # clouds reflect the town lights
    moon = bool(rng.random() < moon_probability)
    if moon:
        mu, mv = rng.uniform(-0.3, scene.aspect + 0.3), rng.uniform(-0.5, 0.4)
        strength = rng.uniform(15, 35)
        glow = strength * np.exp(-np.hypot(u - mu, v - mv) / 0.6)
        sky = sky + glow
        cloud = cloud + 2.0 * glow
    ground = ground_mask(scene, height, width)
    return NightLook(sky.astype(np.float32), cloud.astype(np.float32), ground, moon,
                     vignette(height, width))


def vignette(height: int, width: int, strength: float = 0.35) -> np.ndarray:
    """Wide-angle lens fall-off: 1 at the centre, ``1 - strength`` in the corners."""
    y = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    return 1.0 - strength * (x * x + y * y) / 2


def _splat_stars(height: int, width: int, x: np.ndarray, y: np.ndarray, flux: np.ndarray) -> np.ndarray:
    x0, y0 = np.floor(x - 0.5).astype(np.int64), np.floor(y - 0.5).astype(np.int64)
    fx, fy = x - 0.5 - x0, y - 0.5 - y0
    image = np.zeros(height * width, dtype=np.float64)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = y0 + dy, x0 + dx
            ok = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
            image += np.bincount(yy[ok] * width + xx[ok], weights=(flux * wy * wx)[ok],
                                 minlength=height * width)
    return image.reshape(height, width).astype(np.float32)


def psf_sigma(height: int) -> float:
    return max(0.55, 1.1 * height / 720)


def render_night(
    scene: StationScene,
    clouds: CloudField,
    look: NightLook,
    sky_t_s: float,
    cloud_t_s: float,
    alpha_grid: np.ndarray,
    noise_rng: np.random.Generator,
    detail_grid: np.ndarray | None = None,
) -> np.ndarray:
    """One grayscale night frame (HxW uint8), without the text overlay.

    ``detail_grid`` (the small-scale cloud texture on the cloud grid) gives thick clouds
    some brightness structure instead of a flat glow.
    """
    height, width = look.sky.shape
    alpha = _upsample(alpha_grid, height, width)
    cloud = look.cloud
    if detail_grid is not None:
        cloud = cloud * (1.0 + 0.12 * np.clip(_upsample(detail_grid, height, width), -2, 2))
    u, v = scene.star_positions(sky_t_s)
    sigma = psf_sigma(height)
    margin = 4 * sigma / height
    near = (u > -margin) & (u < scene.aspect + margin) & (v > -margin) & (v < 1 + margin)
    u, v, mag = u[near], v[near], scene.catalogue.mag[near]
    star_alpha = clouds.opacity(cloud_t_s, v * CLOUD_CELLS_PER_HEIGHT, u * CLOUD_CELLS_PER_HEIGHT)
    peak = 32.0 * 10 ** (-0.4 * (mag - DETECTION_MAG))   # DN at the star's centre, clear sky
    flux = peak * 2 * np.pi * sigma**2 * (1.0 - star_alpha)
    stars = gaussian_filter(_splat_stars(height, width, u * height, v * height, flux), sigma)
    image = (look.sky * (1 - alpha) + cloud * alpha + stars) * look.vignette
    image[look.ground] = 4.0
    noise = sensor_noise(noise_rng, image.shape)
    image += noise * np.sqrt(4.0 + 0.35 * image) + 0.5   # read noise + shot noise
    return np.clip(image, 0, 255, out=image).astype(np.uint8)


@dataclass(frozen=True)
class DayLook:
    sky: np.ndarray      # HxWx3 clear sky colour
    ground: np.ndarray   # HxW bool
    ground_rgb: np.ndarray
    vignette: np.ndarray  # HxWx1


def day_look(scene: StationScene, rng: np.random.Generator, height: int, width: int) -> DayLook:
    v = ((np.arange(height) + 0.5) / height)[:, None, None]
    u = ((np.arange(width) + 0.5) / width * scene.aspect)[None, :, None]
    zenith = np.array([38, 92, 178], dtype=np.float32) * rng.uniform(0.9, 1.1)
    horizon = np.array([165, 195, 228], dtype=np.float32)
    horizon_v = float(np.median(scene.horizon))
    mix = np.clip(v / horizon_v, 0, 1) ** 1.6
    sky = zenith * (1 - mix) + horizon * mix
    su, sv = rng.uniform(0, scene.aspect), rng.uniform(-0.6, 0.1)
    sky = sky + 45.0 * np.exp(-np.hypot(u - su, v - sv) / 0.35)  # sun glare
    ground_rgb = np.array([24, 30, 22], dtype=np.float32) * rng.uniform(0.8, 1.3)
    return DayLook(np.clip(sky, 0, 255).astype(np.float32), ground_mask(scene, height, width),
                   ground_rgb, vignette(height, width, 0.15)[..., None])


def render_day(
    clouds: CloudField,
    look: DayLook,
    cloud_t_s: float,
    alpha_grid: np.ndarray,
    detail_grid: np.ndarray,
    noise_rng: np.random.Generator,
) -> np.ndarray:
    """One RGB daytime frame (HxWx3 uint8): blue sky, bright clouds with grey bases."""
    height, width = look.ground.shape
    alpha = _upsample(alpha_grid, height, width)[..., None]
    detail = _upsample(detail_grid, height, width)[..., None]
    coverage = float(clouds.coverage_at(cloud_t_s))
    # Thick, widespread cloud is darker grey; broken cumulus is bright white.
    shade = 248.0 - 70.0 * coverage**2 - 28.0 * np.clip(detail, -1.5, 1.5) * alpha
    cloud_rgb = shade * np.array([1.0, 1.0, 1.02], dtype=np.float32)
    image = (look.sky + (cloud_rgb - look.sky) * alpha) * look.vignette
    image[look.ground] = look.ground_rgb
    image += sensor_noise(noise_rng, image.shape) * 1.5 + 0.5
    return np.clip(image, 0, 255, out=image).astype(np.uint8)


# --- overlay ------------------------------------------------------------------------------


def overlay_text(station: str, ts: datetime) -> str:
    return f"{station} {ts:%Y-%m-%d %H:%M:%S}.{ts.microsecond // 1000:03d} UTC"


def overlay_font(height: int) -> ImageFont.FreeTypeFont:
    """PIL's default font at a size that suits the frame height."""
    return ImageFont.load_default(size=max(8, round(height / 45)))


def draw_overlay(image: np.ndarray, text: str, font: ImageFont.FreeTypeFont | None = None
                 ) -> np.ndarray:
    """White text on a black box at the bottom-left, like the RMS timestamp overlay."""
    height = image.shape[0]
    font = font or overlay_font(height)
    size = font.size
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(1, size // 4)
    y = height - (bottom - top) - 2 * pad
    white = 255 if image.ndim == 2 else (255, 255, 255)
    black = 0 if image.ndim == 2 else (0, 0, 0)
    draw.rectangle((0, y, right - left + 2 * pad, height), fill=black)
    draw.text((pad - left, y + pad - top), text, fill=white, font=font)
    return np.asarray(pil)
