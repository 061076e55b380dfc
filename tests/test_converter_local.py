"""The offline day-styling: stars gone, sky daylight blue, clouds bright and in place,
foreground dark, same size, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_gemini import prep_config
from PIL import Image

from data_prep.converters.local_day_style import DayStyleParams, day_style, params_from_config

STARS = [(10, 5), (20, 15), (30, 8), (55, 20)]


def night_frame() -> Image.Image:
    """64x36 'L' frame: sky glow 40, a bright cloud around (45, 10), dark ground below row 30."""
    yy, xx = np.mgrid[:36, :64]
    sky = np.full((36, 64), 40.0)
    cloud = 150.0 * np.exp(-((xx - 45) ** 2 + (yy - 10) ** 2) / 30.0)
    frame = np.maximum(sky, 40 + cloud)
    frame[30:] = 6
    for x, y in STARS:
        frame[y, x] = 255
    return Image.fromarray(frame.astype(np.uint8), mode="L")


def test_day_style_removes_stars_and_keeps_clouds_and_ground():
    night = night_frame()
    day = day_style(night)
    assert day.mode == "RGB" and day.size == night.size
    rgb = np.asarray(day).astype(int)
    for x, y in STARS:  # a star is no brighter than its neighbourhood any more
        around = rgb[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3)
        assert np.abs(rgb[y, x] - np.median(around, axis=0)).max() <= 6
    r, _g, b = rgb[5, 10]
    assert b > r + 60 and b > 150  # clear sky: daylight blue
    cloud = rgb[10, 45]
    assert cloud.min() > 200 and cloud.max() - cloud.min() < 15  # cloud: bright, neutral
    whiteness = rgb.min(axis=2).astype(float) - 150
    whiteness[whiteness < 0] = 0
    ys, xs = np.nonzero(whiteness)
    cy = (ys * whiteness[ys, xs]).sum() / whiteness.sum()
    cx = (xs * whiteness[ys, xs]).sum() / whiteness.sum()
    assert abs(cx - 45) < 1.5 and abs(cy - 10) < 1.5  # in place
    assert rgb[31:].mean() < 60  # ground stays dark


def test_day_style_is_deterministic_and_takes_rgb_and_flat_frames():
    night = night_frame()
    assert np.array_equal(np.asarray(day_style(night)), np.asarray(day_style(night)))
    assert np.array_equal(np.asarray(day_style(night)), np.asarray(day_style(night.convert("RGB"))))
    flat = day_style(Image.new("L", (16, 9), 0))
    assert flat.size == (16, 9) and np.asarray(flat)[..., 2].min() > 150  # all sky, no NaN
    with pytest.raises(ValueError, match="star_size"):
        day_style(night, DayStyleParams(star_size=4))


def test_params_come_from_the_local_config():
    cfg = prep_config(["converter=local", "converter.star_size=7", "converter.sky_top=[1,2,3]"])
    params = params_from_config(cfg.converter)
    assert params.star_size == 7 and params.sky_top == (1, 2, 3)
    assert params.cloud_color == DayStyleParams().cloud_color
