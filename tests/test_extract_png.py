"""The PNG writer (FFmpeg's encoder via PyAV) gives PNGs that Pillow reads back pixel for pixel."""

import io

import numpy as np
import pytest
from PIL import Image

from data_prep.video.frames_to_png import encode_png


@pytest.mark.parametrize("shape, mode", [((7, 13), "L"), ((96, 160), "L"), ((5, 3, 3), "RGB")])
@pytest.mark.parametrize("level", [0, 1, 9])
def test_round_trip_through_pillow(shape, mode, level):
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    with Image.open(io.BytesIO(encode_png(image, level))) as decoded:
        assert decoded.mode == mode
        assert np.array_equal(np.asarray(decoded), image)


@pytest.mark.parametrize("image, message", [
    (np.zeros((4, 4), np.uint16), "uint8"),
    (np.zeros((4, 4, 4), np.uint8), "HxW or HxWx3"),
])
def test_rejects_what_it_cannot_write(image, message):
    with pytest.raises(ValueError, match=message):
        encode_png(image)
