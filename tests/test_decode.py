"""The one image decoder: 16-bit scaling, grayscale and alpha, resize and crop, checks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gmn_weather.inputs.decode import (
    ImageDecodeError,
    center_crop,
    check_image,
    frame_pixels,
    network_pixels,
    open_frame,
)


def _gradient(h=36, w=64) -> np.ndarray:
    return (np.arange(h * w).reshape(h, w) * 65535 // (h * w - 1)).astype(np.uint16)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_images_are_scaled_not_clipped_to_white(tmp_path, suffix):
    values = _gradient()
    path = tmp_path / f"frame16{suffix}"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"  # the files PIL used to clip to 255
    pixels = frame_pixels(path, [36, 64])
    assert pixels.shape == (3, 36, 64)
    expected = (values >> 8).astype(np.uint8)
    assert np.array_equal(pixels[0], expected) and np.array_equal(pixels[2], expected)
    assert pixels.min() == 0 and pixels.max() == 255 and 100 < pixels.mean() < 155


def test_thirty_two_bit_integer_images_in_sixteen_bit_range_and_outside(tmp_path):
    path = tmp_path / "frame32.tif"
    Image.fromarray(_gradient().astype(np.int32), "I").save(path)
    assert Image.open(path).mode == "I"
    assert frame_pixels(path, [36, 64])[0, -1, -1] == 255
    Image.fromarray(np.full((4, 4), 70000, np.int32), "I").save(path)
    with pytest.raises(ImageDecodeError, match=r"frame32.tif: .*70000.*outside 0..65535"):
        open_frame(path)
    Image.fromarray(np.zeros((4, 4), np.float32), "F").save(tmp_path / "float.tif")
    with pytest.raises(ImageDecodeError, match="float.tif: image mode 'F' is not supported"):
        open_frame(tmp_path / "float.tif")


def test_grayscale_alpha_and_palette_are_handled_explicitly(tmp_path):
    gray = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))
    Image.fromarray(gray, "L").save(tmp_path / "l.png")
    pixels = frame_pixels(tmp_path / "l.png", [8, 64])
    assert all(np.array_equal(pixels[c], gray) for c in range(3))  # replicated
    rgba = np.zeros((8, 64, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0  # fully transparent red: the colour is kept
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert frame_pixels(tmp_path / "rgba.png", [8, 64])[0].min() == 200
    Image.fromarray(gray, "L").convert("P").save(tmp_path / "p.png")
    assert np.array_equal(frame_pixels(tmp_path / "p.png", [8, 64])[1], gray)


def test_resize_and_center_crop_follow_torchvision_arithmetic(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "f.png")
    assert frame_pixels(tmp_path / "f.png", 256).shape == (3, 256, 455)  # shorter edge 256
    spec = {"resize": 256, "center_crop": [224, 224]}
    cropped = network_pixels(tmp_path / "f.png", spec)
    assert cropped.shape == (3, 224, 224)
    assert np.array_equal(cropped, frame_pixels(tmp_path / "f.png", 256)[:, 16:240, 116:340])
    assert center_crop(np.zeros((3, 10, 10)), None).shape == (3, 10, 10)


def test_check_names_zero_byte_truncated_and_foreign_files(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(good)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:-30])
    (tmp_path / "text.png").write_bytes(b"not an image at all")
    assert check_image(good) is None
    assert check_image(tmp_path / "empty.png") == "zero-byte file"
    assert check_image(tmp_path / "cut.png")
    assert "cannot identify" in check_image(tmp_path / "text.png")
    with pytest.raises(ImageDecodeError, match="empty.png: zero-byte file"):
        open_frame(tmp_path / "empty.png")
