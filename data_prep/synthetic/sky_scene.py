"""A synthetic GMN camera's sky that does not change between nights: stars and foreground.

A :class:`StationScene` holds the camera's star catalogue around the celestial pole (a
realistic magnitude distribution, turning with sidereal motion), the foreground silhouette
and the light-pollution direction, all in frame heights, so the same seed gives the same sky
at any frame size. The weather: :mod:`.clouds`; drawing frames: :mod:`.sky_render`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIDEREAL_DAY_S = 86164.0905
OMEGA = 2 * np.pi / SIDEREAL_DAY_S  # rad/s

# Star counts per frame for the field of view of a typical GMN camera (~88 x 48 degrees).
STARS_BRIGHTER_THAN_DETECTION = 350
DETECTION_MAG = 5.5     # faintest star RMS would match on a clear night
FAINTEST_MAG = 7.0      # faint stars still add texture to the sky
BRIGHTEST_MAG = -1.0
LOG_COUNT_SLOPE = 0.45  # log10 N(<m) grows by ~0.45 per magnitude


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
