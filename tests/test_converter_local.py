"""The offline day-styling: cloud found by the stars it hides and by its brightness, stars
gone, clear sky daylight blue, cloud white (grey when overcast) and in place, foreground
dark, same size, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_gemini import prep_config
from PIL import Image

from data_prep.converters.local_day_style import (
    CLEAR_DENSITY_SHARE,
    DayStyleParams,
    calibrated_clear_star_density,
    day_style,
    frame_star_density,
    params_from_config,
    sky_parts,
    wants_auto_density,
)

W, H, GROUND_ROW = 160, 90, 75


def night_frame(sky_level: float = 30.0, stars_where=None, cloud: np.ndarray | None = None
                ) -> np.ndarray:
    """160x90 grayscale frame: a flat sky, stars on an 8-pixel grid where ``stars_where(y, x)``
    (all of the sky by default), ``cloud`` (HxW DN) added on top, dark ground from row 75."""
    frame = np.full((H, W), sky_level)
    if cloud is not None:
        frame += cloud
    for y in range(4, GROUND_ROW - 2, 8):
        for x in range(4, W - 2, 8):
            if stars_where is None or stars_where(y, x):
                frame[y, x] = 200
    frame[GROUND_ROW:] = 5
    return frame.astype(np.uint8)


def blob(cx: float, cy: float, radius: float, height: float) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return height * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2))


def style(frame: np.ndarray) -> np.ndarray:
    return np.asarray(day_style(Image.fromarray(frame, mode="L"))).astype(int)


def is_blue(rgb: np.ndarray) -> bool:
    r, _g, b = rgb
    return b > r + 60 and b > 150


def is_neutral_cloud(rgb: np.ndarray, brighter_than: int = 150) -> bool:
    return rgb.min() > brighter_than and rgb.max() - rgb.min() < 15


def test_day_style_removes_stars_and_keeps_lit_clouds_and_ground():
    # A lit cloud (bright, hiding the stars behind it) in a starry sky.
    def clear_of_cloud(y, x):
        return (x - 110) ** 2 + (y - 35) ** 2 > 22**2

    night = night_frame(stars_where=clear_of_cloud, cloud=blob(110, 35, 12, 120))
    rgb = style(night)
    assert rgb.shape == (H, W, 3)
    for y, x in [(12, 20), (28, 44), (52, 60)]:  # stars: no brighter than their surroundings
        around = rgb[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3)
        assert np.abs(rgb[y, x] - np.median(around, axis=0)).max() <= 6
    assert is_blue(rgb[20, 30]) and is_blue(rgb[60, 20])  # clear, starry sky
    assert is_neutral_cloud(rgb[35, 110], brighter_than=200)  # the cloud: white
    whiteness = rgb.min(axis=2).astype(float) - 170
    whiteness[whiteness < 0] = 0
    ys, xs = np.nonzero(whiteness)
    cx = (xs * whiteness[ys, xs]).sum() / whiteness.sum()
    cy = (ys * whiteness[ys, xs]).sum() / whiteness.sum()
    assert abs(cx - 110) < 4 and abs(cy - 35) < 4  # in place
    assert rgb[GROUND_ROW + 1:].mean() < 60  # ground stays dark


@pytest.mark.parametrize("level", [20, 60])
def test_overcast_frame_becomes_grey_cloud_however_bright(level):
    # No stars anywhere: the whole sky is cloud, whether lit by a town (60) or dark (20).
    night = night_frame(sky_level=level, stars_where=lambda y, x: False)
    parts = sky_parts(night)
    assert parts.cover > 0.9
    rgb = style(night)
    for y, x in [(10, 20), (40, 80), (65, 140)]:
        assert is_neutral_cloud(rgb[y, x], brighter_than=140) and rgb[y, x].max() < 215  # grey
    assert rgb[GROUND_ROW + 1:].mean() < 60


def test_dark_cloud_is_found_by_the_stars_it_hides():
    # The left half of the sky has no stars but the same brightness as the right half.
    night = night_frame(stars_where=lambda y, x: x >= W // 2)
    rgb = style(night)
    assert is_neutral_cloud(rgb[30, 15])  # deep in the starless half: cloud
    assert is_blue(rgb[30, W - 15])  # deep in the starry half: clear
    parts = sky_parts(night)
    assert 0.35 < parts.cover < 0.65


def test_clear_starry_frame_is_all_blue_sky():
    parts = sky_parts(night_frame())
    assert parts.cover < 0.1
    rgb = style(night_frame())
    assert all(is_blue(rgb[y, x]) for y in (10, 40, 65) for x in (20, 80, 140))


def test_day_style_is_deterministic_and_takes_rgb_and_flat_frames():
    night = Image.fromarray(night_frame(cloud=blob(110, 35, 12, 120)), mode="L")
    assert np.array_equal(np.asarray(day_style(night)), np.asarray(day_style(night)))
    assert np.array_equal(np.asarray(day_style(night)), np.asarray(day_style(night.convert("RGB"))))
    flat = np.asarray(day_style(Image.new("L", (16, 9), 0))).astype(int)
    assert flat.shape == (9, 16, 3) and is_neutral_cloud(flat[4, 8], brighter_than=140)  # no NaN
    with pytest.raises(ValueError, match="star_size"):
        day_style(night, DayStyleParams(star_size=4))


def test_params_come_from_the_local_config():
    cfg = prep_config(["converter=local", "converter.star_size=7", "converter.sky_top=[1,2,3]",
                       "converter.clear_star_density=2.5"])
    params = params_from_config(cfg.converter)
    assert params.star_size == 7 and params.sky_top == (1, 2, 3)
    assert params.clear_star_density == 2.5
    assert params.cloud_color == DayStyleParams().cloud_color


def test_frame_star_density_counts_stars_per_percent_of_the_frame():
    # 9 x 20 stars over the 160x75 sky: 180 / 12000 pixels, times 144 pixels (1 % of 160x90).
    assert frame_star_density(night_frame()) == pytest.approx(180 / 12000 * 144, rel=0.15)
    assert frame_star_density(night_frame(stars_where=lambda y, x: False)) == 0.0


def test_calibration_takes_a_share_of_the_clear_frames_median():
    assert calibrated_clear_star_density([2.0, 2.2, 1.0]) == pytest.approx(
        2.0 * CLEAR_DENSITY_SHARE)
    assert calibrated_clear_star_density([]) is None
    assert calibrated_clear_star_density([0.0, 0.0]) is None  # no stars: nothing to go by


def test_auto_density_keeps_the_default_and_a_bad_value_is_named():
    cfg = prep_config(["converter=local"])
    assert wants_auto_density(cfg.converter)  # the default
    assert params_from_config(cfg.converter).clear_star_density == 1.2
    with pytest.raises(ValueError, match="converter.clear_star_density='lots'.*or auto"):
        params_from_config(prep_config(["converter.clear_star_density=lots"]).converter)
