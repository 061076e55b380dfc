"""Render synthetic GMN camera frames: star field, sky glow, clouds, foreground, overlay.

The model behind the synthetic archive. A :class:`StationScene` holds what does not change
between nights (the camera's star catalogue around the celestial pole, the foreground
silhouette, the light-pollution direction); a :class:`CloudField` holds one night's (or
day's) weather: two periodic multi-scale noise textures drifting with the wind, and a
coverage curve over the night that sets how much of the sky they cover. Everything is in
resolution-free units (frame heights, cloud cells), so the same seed gives the same sky at
any frame size. Geometry and opacity are computed without rendering, so the truth of a frame
(cloud fraction, visible-star fraction) is known without drawing it. Pure numpy/PIL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import gaussian_filter
from scipy.special import ndtri

SIDEREAL_DAY_S = 86164.0905
OMEGA = 2 * np.pi / SIDEREAL_DAY_S  # rad/s

# Star counts per frame for the field of view of a typical GMN camera (~88 x 48 degrees).
STARS_BRIGHTER_THAN_DETECTION = 350
DETECTION_MAG = 5.5     # faintest star RMS would match on a clear night
FAINTEST_MAG = 7.0      # faint stars still add texture to the sky
BRIGHTEST_MAG = -1.0
LOG_COUNT_SLOPE = 0.45  # log10 N(<m) grows by ~0.45 per magnitude

CLOUD_CELLS_PER_HEIGHT = 48   # cloud texture cells across the frame height
TEXTURE_SHAPE = (256, 512)    # periodic cloud texture, in cells
RENDER_CELL_PX = 4            # clouds are evaluated every 4 px, then upsampled


# --- geometry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StarCatalogue:
    """Stars in polar coordinates about the celestial pole (radius in frame heights)."""

    radius: np.ndarray
    angle0: np.ndarray
    mag: np.ndarray


@dataclass(frozen=True)
class StationScene:
    """What one camera sees that does not change from night to night."""

    station: str
    aspect: float                 # width / height
    pole: tuple[float, float]     # (u, v) in frame heights; v grows downwards
    direction: float              # +1 or -1: sense of the sidereal rotation in the image
    catalogue: StarCatalogue
    detectable: np.ndarray        # indices of the stars RMS would predict (mag <= DETECTION_MAG)
    horizon: np.ndarray           # silhouette top, in frame heights, sampled across the width
    city_u: float                 # where the light-pollution dome sits on the horizon
    city_strength: float

    def horizon_at(self, u: np.ndarray) -> np.ndarray:
        """Silhouette top (frame heights) at horizontal positions ``u`` (frame heights)."""
        xs = np.linspace(0.0, self.aspect, len(self.horizon))
        return np.interp(u, xs, self.horizon)

    def star_positions(self, t_s: float, stars: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Star (u, v) in frame heights at ``t_s`` seconds after the sky epoch.

        ``stars`` (indices or a mask) restricts the computation to part of the catalogue.
        """
        radius, angle0 = self.catalogue.radius, self.catalogue.angle0
        if stars is not None:
            radius, angle0 = radius[stars], angle0[stars]
        angle = angle0 + self.direction * OMEGA * t_s
        return self.pole[0] + radius * np.cos(angle), self.pole[1] + radius * np.sin(angle)

    def in_sky(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Inside the frame and above the foreground silhouette."""
        inside = (u >= 0) & (u < self.aspect) & (v >= 0)
        return inside & (v < self.horizon_at(np.clip(u, 0, self.aspect)))


def _magnitudes(rng: np.random.Generator, n: int) -> np.ndarray:
    # Inverse CDF of a density growing as 10**(LOG_COUNT_SLOPE * m) between the limits.
    lo, hi = 10 ** (LOG_COUNT_SLOPE * BRIGHTEST_MAG), 10 ** (LOG_COUNT_SLOPE * FAINTEST_MAG)
    return np.log10(lo + rng.random(n) * (hi - lo)) / LOG_COUNT_SLOPE


def _silhouette(rng: np.random.Generator, n: int) -> np.ndarray:
    """Foreground top edge: low hills, a roof line or none, and trees (frame heights)."""
    x = np.linspace(0, 1, n)
    base = rng.uniform(0.86, 0.93)
    hills = sum(rng.uniform(0.004, 0.02) / (k + 1) * np.sin(2 * np.pi * (k + 1) * x + rng.uniform(0, 6.3))
                for k in range(4))
    top = base + hills
    if rng.random() < 0.5:  # a roof or wall on one side
        a = rng.uniform(0.0, 0.6)
        b = a + rng.uniform(0.15, 0.4)
        top = np.where((x >= a) & (x <= b), np.minimum(top, base - rng.uniform(0.05, 0.12)), top)
    for _ in range(rng.integers(3, 9)):  # conifers: narrow triangles with ragged edges
        cx, width, height = rng.uniform(0, 1), rng.uniform(0.01, 0.035), rng.uniform(0.06, 0.22)
        tree = base - height * np.clip(1 - np.abs(x - cx) / width, 0, 1)
        tree += rng.normal(0, 0.004, n) * (np.abs(x - cx) < width)
        top = np.minimum(top, tree)
    return top.astype(np.float32)


def make_scene(station: str, aspect: float, rng: np.random.Generator) -> StationScene:
    """A camera: pole position, star catalogue covering every star that crosses the frame."""
    pole = (rng.uniform(0.2, aspect - 0.2), -rng.uniform(0.3, 0.9))
    corners = np.array([[0, 0], [aspect, 0], [0, 1], [aspect, 1]], dtype=float)
    r_max = float(np.max(np.hypot(corners[:, 0] - pole[0], corners[:, 1] - pole[1])))
    r_min = float(-pole[1])
    density = (STARS_BRIGHTER_THAN_DETECTION * 10 ** (LOG_COUNT_SLOPE * (FAINTEST_MAG - DETECTION_MAG))
               / aspect)  # stars per square frame-height
    n = int(density * np.pi * (r_max**2 - r_min**2))
    radius = np.sqrt(rng.uniform(r_min**2, r_max**2, n))
    catalogue = StarCatalogue(radius, rng.uniform(0, 2 * np.pi, n), _magnitudes(rng, n))
    return StationScene(
        station=station,
        aspect=aspect,
        pole=pole,
        direction=float(rng.choice([-1.0, 1.0])),
        catalogue=catalogue,
        detectable=np.flatnonzero(catalogue.mag <= DETECTION_MAG),
        horizon=_silhouette(rng, 512),
        city_u=float(rng.uniform(0, aspect)),
        city_strength=float(rng.uniform(8, 30)),
    )


# --- clouds -------------------------------------------------------------------------------


def periodic_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float) -> np.ndarray:
    """Zero-mean, unit-variance periodic noise with a power-law spectrum (1/f**beta)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f ** (beta / 2)
    spectrum[0, 0] = 0
    field = np.fft.irfft2(spectrum, s=shape)
    return ((field - field.mean()) / field.std()).astype(np.float32)


def sample_periodic(texture: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bilinear sample of a periodic texture at fractional cell coordinates."""
    h, w = texture.shape
    y0, x0 = np.floor(y), np.floor(x)
    fy, fx = (y - y0).astype(np.float32), (x - x0).astype(np.float32)
    y0 = y0.astype(np.int64) % h
    x0 = x0.astype(np.int64) % w
    y1, x1 = (y0 + 1) % h, (x0 + 1) % w
    top = texture[y0, x0] * (1 - fx) + texture[y0, x1] * fx
    bottom = texture[y1, x0] * (1 - fx) + texture[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def smooth_curve(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """A smooth random curve of ``n`` points, unit variance, correlation length ~``sigma``."""
    pad = int(4 * sigma)
    z = gaussian_filter(rng.normal(size=n + 2 * pad), sigma, mode="wrap")[pad:pad + n]
    return z / (z.std() + 1e-9)


@dataclass(frozen=True)
class CloudField:
    """One night's (or day's) clouds. Times are seconds from the start of the span."""

    large: np.ndarray             # periodic texture: cloud banks
    small: np.ndarray             # periodic texture: detail, drifting a little differently
    small_weight: float
    wind_large: tuple[float, float]   # (cells/s down, cells/s right)
    wind_small: tuple[float, float]
    sorted_values: np.ndarray     # combined texture values, for coverage -> threshold
    curve_step_s: float
    coverage_curve: np.ndarray    # fraction of sky covered, every curve_step_s
    thickness: float              # opacity of a thick cloud (1 hides every star)
    softness: float               # width of cloud edges, in texture standard deviations

    def coverage_at(self, t_s: np.ndarray | float) -> np.ndarray:
        grid = np.arange(len(self.coverage_curve)) * self.curve_step_s
        return np.interp(t_s, grid, self.coverage_curve)

    def field(self, t_s: float | np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        a = sample_periodic(self.large, y - self.wind_large[0] * t_s, x - self.wind_large[1] * t_s)
        b = sample_periodic(self.small, y - self.wind_small[0] * t_s, x - self.wind_small[1] * t_s)
        return a + self.small_weight * b

    def threshold_at(self, t_s: float | np.ndarray) -> np.ndarray:
        """Texture level above which there is cloud, so that the coverage curve is met."""
        c = self.coverage_at(t_s)
        levels = np.linspace(0.0, 1.0, len(self.sorted_values))
        q = np.where(c > 0, np.interp(1.0 - c, levels, self.sorted_values), np.inf)
        return q - self.softness * c  # full cover leaves no holes

    def opacity(self, t_s: float | np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Cloud opacity (0 clear .. thickness) at cell coordinates ``y``, ``x`` at ``t_s``.

        ``t_s`` is a scalar, or an array broadcasting against ``y`` and ``x`` (one time per row).
        """
        t = np.asarray(t_s, dtype=np.float64)
        s = np.clip((self.field(t, y, x) - self.threshold_at(t)) / self.softness, 0.0, 1.0)
        return (self.thickness * s * s * (3 - 2 * s)).astype(np.float32)


def make_clouds(
    rng: np.random.Generator, duration_s: float, overcast: bool, curve_step_s: float = 60.0
) -> CloudField:
    """Weather for a span: drifting textures and a coverage curve with clear spells,
    partly cloudy stretches and overcast ones (or overcast throughout)."""
    large = periodic_noise(rng, TEXTURE_SHAPE, beta=3.2)
    small = periodic_noise(rng, TEXTURE_SHAPE, beta=2.2)
    small_weight = 0.45
    combined = np.sort((large + small_weight * small).ravel())[::16].copy()
    n = int(np.ceil(duration_s / curve_step_s)) + 2
    if overcast:
        coverage = 0.93 + 0.07 * np.clip(smooth_curve(rng, n, 30.0), -1, 1)
    else:
        z = smooth_curve(rng, n, sigma=rng.uniform(25.0, 50.0)) + rng.uniform(-0.9, 0.3)
        coverage = 1.0 / (1.0 + np.exp(-3.0 * z))
    speed = rng.uniform(0.03, 0.09)  # cells/s: clouds cross the frame in ~15-45 min
    heading = rng.uniform(0, 2 * np.pi)
    shear = heading + rng.uniform(-0.5, 0.5)
    return CloudField(
        large=large,
        small=small,
        small_weight=small_weight,
        wind_large=(speed * np.sin(heading), speed * np.cos(heading)),
        wind_small=(1.3 * speed * np.sin(shear), 1.3 * speed * np.cos(shear)),
        sorted_values=combined,
        curve_step_s=curve_step_s,
        coverage_curve=np.clip(coverage, 0.0, 1.0),
        thickness=float(rng.uniform(0.93, 1.0)),
        softness=0.35,
    )


# --- what a frame shows (no rendering) ----------------------------------------------------


def visible_star_fractions(
    scene: StationScene, clouds: CloudField, sky_t_s: np.ndarray, cloud_t_s: np.ndarray,
    chunk: int = 64,
) -> np.ndarray:
    """Fraction of the stars RMS would predict in the frame that the clouds leave detectable,
    at each of several times (``sky_t_s``: seconds since the sky epoch; ``cloud_t_s``: seconds
    into the cloud field's span).

    A star of magnitude m stays detectable while ``(1 - opacity) * flux >= flux(DETECTION_MAG)``,
    so clouds hide faint stars first and bright ones only when thick.
    """
    sky_t_s = np.atleast_1d(np.asarray(sky_t_s, dtype=np.float64))
    cloud_t_s = np.atleast_1d(np.asarray(cloud_t_s, dtype=np.float64))
    radius = scene.catalogue.radius[scene.detectable].astype(np.float32)
    angle0 = scene.catalogue.angle0[scene.detectable].astype(np.float32)
    needed = 10 ** (-0.4 * (DETECTION_MAG - scene.catalogue.mag[scene.detectable]))
    # The rotation phase is reduced in float64 first; float32 then suffices for the rest.
    phase = np.mod(scene.direction * OMEGA * sky_t_s, 2 * np.pi).astype(np.float32)
    out = np.zeros(len(sky_t_s))
    for i in range(0, len(sky_t_s), chunk):
        rows = slice(i, i + chunk)
        angle = angle0 + phase[rows, None]
        u = scene.pole[0] + radius * np.cos(angle)
        v = scene.pole[1] + radius * np.sin(angle)
        # Only the stars inside the frame matter; most of the catalogue is elsewhere.
        row, star = np.nonzero((u >= 0) & (u < scene.aspect) & (v >= 0) & (v < 1))
        uu, vv = u[row, star], v[row, star]
        above = vv < scene.horizon_at(uu)
        row, star, uu, vv = row[above], star[above], uu[above], vv[above]
        alpha = clouds.opacity(cloud_t_s[rows][row], vv * CLOUD_CELLS_PER_HEIGHT,
                               uu * CLOUD_CELLS_PER_HEIGHT)
        n = len(angle)
        visible = np.bincount(row, weights=(1.0 - alpha) >= needed[star], minlength=n)
        predicted = np.bincount(row, minlength=n)
        out[rows] = visible / np.maximum(predicted, 1)
    return out


def visible_star_fraction(
    scene: StationScene, clouds: CloudField, sky_t_s: float, cloud_t_s: float
) -> float:
    """:func:`visible_star_fractions` at one time."""
    return float(visible_star_fractions(scene, clouds, np.array([sky_t_s]), np.array([cloud_t_s]))[0])


def cloud_grid(scene: StationScene, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low-resolution grid (cell coordinates) on which clouds are evaluated, and its sky mask."""
    gh = max(8, int(np.ceil(height / RENDER_CELL_PX)))
    gw = max(8, int(np.ceil(width / RENDER_CELL_PX)))
    v = (np.arange(gh) + 0.5) / gh             # frame heights
    u = (np.arange(gw) + 0.5) / gw * scene.aspect
    sky = v[:, None] < scene.horizon_at(u)[None, :]
    yy = np.broadcast_to(v[:, None] * CLOUD_CELLS_PER_HEIGHT, (gh, gw))
    xx = np.broadcast_to(u[None, :] * CLOUD_CELLS_PER_HEIGHT, (gh, gw))
    return yy, xx, sky


def cloud_fraction(alpha_grid: np.ndarray, sky: np.ndarray) -> float:
    """Fraction of the visible sky under cloud at least half opaque."""
    return float(np.mean(alpha_grid[sky] >= 0.5))


# --- rendering ----------------------------------------------------------------------------

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
