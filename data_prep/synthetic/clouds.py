"""A synthetic night's (or day's) weather, and what a frame shows of the sky through it.

A :class:`CloudField` holds two periodic multi-scale noise textures drifting with the wind
and a coverage curve over the night that sets how much of the sky they cover. Opacity is
computed without rendering, so the truth of a frame (cloud fraction, the share of the stars
RMS would predict that stay detectable) is known without drawing it
(:func:`visible_star_fractions`, :func:`cloud_fraction`). Units are cloud cells
(:data:`CLOUD_CELLS_PER_HEIGHT` per frame height).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from data_prep.synthetic.sky_scene import DETECTION_MAG, OMEGA, StationScene

CLOUD_CELLS_PER_HEIGHT = 48   # cloud texture cells across the frame height
TEXTURE_SHAPE = (256, 512)    # periodic cloud texture, in cells
RENDER_CELL_PX = 4            # clouds are evaluated every 4 px, then upsampled


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
