"""Per-image sky statistics for the gradient-boosting baseline (pure, deterministic).

From one decoded image (8- or 16-bit, grayscale or RGB/RGBA, as a numpy array) this computes
what the all-sky cloud literature feeds a tree model: brightness percentiles, contrast,
high-frequency energy, a count of point sources (stars) and two colour measures for
day-styled frames. All brightness figures are on a 0..1 scale whatever the bit depth, so
8-bit and 16-bit versions of one frame give the same features. ``bench/compare_cores.py``
times it on a 1280x720 frame.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
FEATURE_NAMES = (
    *(f"brightness_p{p:02d}" for p in PERCENTILES),
    "brightness_mean",
    "contrast_rms",  # standard deviation of the brightness
    "contrast_range",  # 95th minus 5th percentile
    "hf_energy",  # root mean square of the Laplacian: fine texture (stars, noise, edges)
    "point_sources_per_mpx",  # star-like peaks per million pixels
    "colour_spread",  # mean of max(R, G, B) - min(R, G, B): 0 for grayscale
    "blue_minus_red",  # mean of B - R: blue sky against grey cloud; 0 for grayscale
)
# Bumped whenever a feature's definition changes, so cached values are recomputed.
FEATURES_VERSION = 1

# Point sources: the white top-hat (the image minus its grey opening) keeps what is smaller
# than STAR_WINDOW px and flattens clouds, moonlit ground and gradients. A source is a
# connected patch of the top-hat above max(STAR_MIN_CONTRAST, STAR_NOISE_SIGMAS x noise)
# covering at most STAR_MAX_AREA px, so lines and text strokes longer than a star do not
# count. The noise sigma comes from the Laplacian (see noise_sigma); on pure Gaussian noise
# the top-hat of a 720p frame peaks near 7 sigma, hence 8.
STAR_WINDOW = 7
STAR_MIN_CONTRAST = 10 / 255
STAR_NOISE_SIGMAS = 8.0
STAR_MAX_AREA = 25
# ITU-R BT.601 luma weights: RGB to brightness.
LUMA = np.array([0.299, 0.587, 0.114])


def to_unit_range(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as float32 in [0, 1], shape (H, W) or (H, W, 3); alpha is dropped.

    8-bit values are divided by 255, 16-bit ones (and Pillow's 32-bit integer mode holding
    16-bit data) by 65535; floats must already lie in [0, 1].
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] in (1, 3, 4):
        pixels = pixels[..., 0] if pixels.shape[2] == 1 else pixels[..., :3]
    if pixels.ndim != 2 and not (pixels.ndim == 3 and pixels.shape[2] == 3) \
            or min(pixels.shape[:2]) < STAR_WINDOW:
        raise ValueError(f"expected a grayscale or RGB image of at least {STAR_WINDOW}x"
                         f"{STAR_WINDOW} pixels, got an array of shape {pixels.shape}")
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / 255
    if pixels.dtype == np.uint16 or (pixels.dtype == np.int32 and pixels.min() >= 0
                                     and pixels.max() <= 65535):
        return pixels.astype(np.float32) / 65535
    if pixels.dtype.kind == "f" and np.isfinite(pixels).all() \
            and pixels.min() >= 0 and pixels.max() <= 1:
        return pixels.astype(np.float32)
    raise ValueError(f"unsupported pixel values: dtype {pixels.dtype}, range "
                     f"{pixels.min()}..{pixels.max()} (expected 8 or 16 bit, or floats in [0, 1])")


def noise_sigma(laplacian: np.ndarray) -> float:
    """Pixel noise from the image's Laplacian: for independent noise of sigma s its response
    has sigma sqrt(20) s, and gradients give none. The median absolute response (x 1.4826,
    a Gaussian's MAD to sigma) ignores the few stars and edges; exact zeros are left out,
    because flat clipped or masked areas would otherwise pull it towards 0."""
    response = np.abs(laplacian[laplacian != 0])
    if not len(response):
        return 0.0
    return 1.4826 * float(np.median(response)) / np.sqrt(20)


def count_point_sources(brightness: np.ndarray, noise: float) -> int:
    """Star-like peaks in a (H, W) brightness image on the 0..1 scale with pixel noise
    ``noise`` (see STAR_* above)."""
    top_hat = ndimage.white_tophat(brightness, size=STAR_WINDOW, mode="nearest")
    above = top_hat > max(STAR_MIN_CONTRAST, STAR_NOISE_SIGMAS * noise)
    patches, n = ndimage.label(above)
    if n == 0:
        return 0
    areas = np.bincount(patches.ravel())[1:]
    return int(np.sum(areas <= STAR_MAX_AREA))


def _colour_spread(image: np.ndarray) -> float:
    # Channel by channel: a max/min along the last axis is several times slower.
    red, green, blue = image[..., 0], image[..., 1], image[..., 2]
    spread = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
    return float(spread.mean(dtype=np.float64))


def image_features(pixels: np.ndarray) -> dict[str, float]:
    """The baseline's features of one image, keyed (and ordered) as FEATURE_NAMES."""
    image = to_unit_range(pixels)
    colour = image.ndim == 3
    brightness = image @ LUMA.astype(np.float32) if colour else image
    percentiles = np.percentile(brightness, PERCENTILES)
    height, width = brightness.shape
    laplacian = ndimage.laplace(brightness, mode="nearest")
    sources = count_point_sources(brightness, noise_sigma(laplacian))
    values = [
        *percentiles,
        brightness.mean(dtype=np.float64),
        brightness.std(dtype=np.float64),
        percentiles[PERCENTILES.index(95)] - percentiles[PERCENTILES.index(5)],
        np.sqrt(np.mean(np.square(laplacian), dtype=np.float64)),
        sources / (height * width / 1e6),
        _colour_spread(image) if colour else 0.0,
        (image[..., 2] - image[..., 0]).mean(dtype=np.float64) if colour else 0.0,
    ]
    return {name: float(v) for name, v in zip(FEATURE_NAMES, values, strict=True)}
