"""Feature baseline: per-image statistics, their cache, and gradient boosting fold by fold."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gmn_weather.baseline.feature_cache import FeatureError, image_feature_table
from gmn_weather.baseline.features import FEATURE_NAMES, image_features
from gmn_weather.baseline.gbm import OOF_COLUMNS, baseline_oof
from gmn_weather.splits import SplitError, assign_folds


def _star_field(rng, n_stars: int, shape=(72, 128), sky=30.0, noise=2.0) -> np.ndarray:
    """A dark night sky with ``n_stars`` separated Gaussian stars (8-bit grayscale)."""
    image = rng.normal(sky, noise, shape)
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    grid = [(y, x) for y in range(6, shape[0] - 6, 10) for x in range(6, shape[1] - 6, 10)]
    for i in rng.choice(len(grid), n_stars, replace=False):
        y, x = grid[i]
        image += 120 * np.exp(-((ys - y) ** 2 + (xs - x) ** 2) / (2 * 0.8**2))
    return image.clip(0, 255).astype(np.uint8)


def _overcast(rng, shape=(72, 128), level=150.0, noise=2.0) -> np.ndarray:
    """Smooth bright cloud: a broad gradient, no point sources."""
    xs = np.arange(shape[1])[None, :]
    image = level + 30 * np.sin(xs / shape[1] * np.pi) + rng.normal(0, noise, shape)
    return image.clip(0, 255).astype(np.uint8)


def _count(features: dict, shape=(72, 128)) -> float:
    return features["point_sources_per_mpx"] * shape[0] * shape[1] / 1e6


def test_star_count_is_exact_and_clouds_lines_and_noise_do_not_count():
    rng = np.random.default_rng(1)
    stars = _star_field(rng, 25)
    assert _count(image_features(stars)) == pytest.approx(25)
    assert _count(image_features(_overcast(rng))) == 0
    cloud_and_line = _star_field(rng, 0)
    cloud_and_line[20:50, 30:90] = 200  # a bright cloud bank
    cloud_and_line[60, 10:120] = 230  # a one-pixel line, e.g. a text stroke
    assert _count(image_features(cloud_and_line)) == 0


def test_features_rank_a_star_field_against_smooth_overcast():
    rng = np.random.default_rng(2)
    clear, cloudy = image_features(_star_field(rng, 30)), image_features(_overcast(rng))
    assert list(clear) == list(FEATURE_NAMES)
    assert clear["point_sources_per_mpx"] > cloudy["point_sources_per_mpx"]
    assert clear["hf_energy"] > cloudy["hf_energy"]
    assert clear["brightness_p50"] < cloudy["brightness_p50"]
    assert cloudy["contrast_range"] > 0 and clear["brightness_p99"] > clear["brightness_p50"]


def test_bit_depth_and_channels_do_not_change_the_features():
    rng = np.random.default_rng(3)
    gray = _star_field(rng, 10)
    eight = image_features(gray)
    assert image_features(gray.astype(np.uint16) * 257) == pytest.approx(eight)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    assert image_features(rgb) == pytest.approx(eight, abs=1e-6)
    rgba = np.concatenate([rgb, np.full(gray.shape + (1,), 255, np.uint8)], axis=2)
    assert image_features(rgba) == pytest.approx(eight, abs=1e-6)
    assert eight["colour_spread"] == 0 and eight["blue_minus_red"] == 0


def test_colour_features_tell_blue_sky_from_grey_cloud():
    blue = np.zeros((32, 48, 3), np.uint8) + np.array([90, 140, 220], np.uint8)
    grey = np.zeros((32, 48, 3), np.uint8) + np.array([180, 182, 186], np.uint8)
    blue_f, grey_f = image_features(blue), image_features(grey)
    assert blue_f["blue_minus_red"] == pytest.approx(130 / 255, abs=1e-6)
    assert blue_f["colour_spread"] > 5 * grey_f["colour_spread"]


@pytest.mark.parametrize("pixels, message", [
    (np.zeros((4, 4), np.uint8), "at least 7x7"),
    (np.zeros((16, 16, 2), np.uint8), "shape \\(16, 16, 2\\)"),
    (np.full((16, 16), 1.5), "floats in \\[0, 1\\]"),
    (np.full((16, 16), -3, np.int64), "dtype int64"),
])
def test_unusable_arrays_are_refused(pixels, message):
    with pytest.raises(ValueError, match=message):
        image_features(pixels)


# --- cache ---------------------------------------------------------------------------------

def _write_images(folder, images: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, pixels in images.items():
        Image.fromarray(pixels).save(folder / name)


def test_features_are_computed_once_and_recomputed_when_the_image_changes(tmp_path):
    rng = np.random.default_rng(4)
    _write_images(tmp_path / "img", {"a.png": _star_field(rng, 12), "b.png": _overcast(rng)})
    cache = tmp_path / "features.csv"
    first = image_feature_table(["a.png", "b.png"], tmp_path / "img", cache)
    assert list(first.index) == ["a.png", "b.png"] and list(first.columns) == list(FEATURE_NAMES)
    assert _count(first.loc["a.png"]) == pytest.approx(12)
    # Read back, not recomputed: a value planted in the cache comes back.
    stored = pd.read_csv(cache)
    assert sorted(stored["image_filename"]) == ["a.png", "b.png"]
    stored.loc[stored["image_filename"] == "b.png", "hf_energy"] = 123.0
    stored.to_csv(cache, index=False)
    assert image_feature_table(["b.png"], tmp_path / "img", cache).at["b.png", "hf_energy"] == 123.0
    # A touched image (new mtime) is recomputed; the other keeps its cached row.
    os.utime(tmp_path / "img" / "b.png", ns=(1, 1))
    again = image_feature_table(["a.png", "b.png"], tmp_path / "img", cache)
    assert again.at["b.png", "hf_energy"] == pytest.approx(first.at["b.png", "hf_energy"])
    pd.testing.assert_series_equal(again.loc["a.png"], first.loc["a.png"])
    assert len(pd.read_csv(cache)) == 2


def test_unreadable_and_missing_images_are_named_and_the_rest_is_kept(tmp_path):
    rng = np.random.default_rng(5)
    _write_images(tmp_path / "img", {"good.png": _star_field(rng, 5)})
    (tmp_path / "img" / "broken.png").write_bytes(b"\x89PNG but not really")
    cache = tmp_path / "features.csv"
    with pytest.raises(FeatureError, match=r"cannot compute features of 2 image\(s\) in .*img: "
                                           r"gone.png \(missing.*broken.png \(.*labels file"):
        image_feature_table(["gone.png", "good.png", "broken.png"], tmp_path / "img", cache)
    assert list(pd.read_csv(cache)["image_filename"]) == ["good.png"]


# --- gradient boosting on a tiny split -----------------------------------------------------

def _tiny_split(tmp_path, rng) -> pd.DataFrame:
    rows, images = [], {}
    for night in range(6):
        for i in range(4):
            clear = (night + i) % 2 == 0
            name = f"XX000{night}_2025110{night}_{i}.png"
            images[name] = _star_field(rng, 20 + i) if clear else _overcast(rng, level=120 + 10 * i)
            rows.append({"image_filename": name, "label": "clear" if clear else "cloudy",
                         "group": f"XX000{night}_2025110{night}"})
    _write_images(tmp_path / "img", images)
    return assign_folds(pd.DataFrame(rows), n_folds=3, split_seed=0)


def test_baseline_predicts_each_held_out_fold_in_the_oof_columns(tmp_path):
    rng = np.random.default_rng(6)
    splits = _tiny_split(tmp_path, rng)
    params = {"min_samples_leaf": 2, "max_iter": 20}
    tables = baseline_oof(splits, tmp_path / "img", tmp_path / "features.csv", params=params)
    assert sorted(tables) == [0, 1, 2]
    for fold, table in tables.items():
        assert list(table.columns) == OOF_COLUMNS
        expected = splits[splits["fold"] == fold]
        assert list(table["image_filename"]) == list(expected["image_filename"])
        assert (table["fold"] == fold).all() and table["prob_clear"].between(0, 1).all()
    pooled = pd.concat(tables.values())
    clear = pooled[pooled["label"] == "clear"]["prob_clear"]
    cloudy = pooled[pooled["label"] == "cloudy"]["prob_clear"]
    assert clear.min() > cloudy.max()  # star fields against smooth cloud: separable
    again = baseline_oof(splits, tmp_path / "img", tmp_path / "features.csv", params=params)
    for fold in tables:  # seeded, and the cached features give the same fit
        pd.testing.assert_frame_equal(tables[fold], again[fold])


def test_baseline_refuses_a_fold_whose_training_part_has_one_class(tmp_path):
    rng = np.random.default_rng(7)
    splits = _tiny_split(tmp_path, rng)
    splits["fold"] = np.where(splits["label"] == "clear", 0, 1)
    splits["group"] = splits["label"]
    with pytest.raises(SplitError, match="fold 0: its training part holds only 'cloudy'"):
        baseline_oof(splits, tmp_path / "img", tmp_path / "features.csv")
