"""encode_timelapse writes RMS-style H.264 videos that PyAV (real ffmpeg) decodes back."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from data_prep.video.timelapse_encode import encode_timelapse


def _gray_frames(n: int, height: int = 90, width: int = 160) -> list[np.ndarray]:
    # Each frame carries its index as brightness, so decoded order can be checked.
    ramp = np.linspace(0, 40, width, dtype=np.float32)[None, :]
    return [np.clip(ramp + 3 * (i % 60) + 20, 0, 255).astype(np.uint8).repeat(height, 0)
            for i in range(n)]


def _probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "rate": stream.average_rate,
            "size": (stream.width, stream.height),
        }
        frames = list(container.decode(stream))
    info["count"] = len(frames)
    info["keyframes"] = [i for i, f in enumerate(frames) if f.key_frame]
    info["first"] = frames[0].to_ndarray(format="gray")
    info["means"] = [float(f.to_ndarray(format="gray").mean()) for f in frames]
    return info


def test_gray_video_is_h264_yuv420p_30fps_gop120(tmp_path):
    frames = _gray_frames(250)
    out = tmp_path / "CAWEC2_20251106-223015_to_20251107-053000_frames_timelapse.mp4"
    assert encode_timelapse(out, frames) == 250
    info = _probe(out)
    assert info["codec"] == "h264"
    assert info["pix_fmt"] == "yuv420p"
    assert info["rate"] == 30
    assert info["size"] == (160, 90)
    assert info["count"] == 250
    assert info["keyframes"] == [0, 120, 240]
    assert np.abs(info["first"].astype(int) - frames[0]).mean() < 3
    expected = [float(f.mean()) for f in frames]
    assert np.allclose(info["means"], expected, atol=3)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left behind


def test_rgb_frames_keep_their_colour(tmp_path):
    frame = np.zeros((64, 96, 3), np.uint8)
    frame[..., 2] = 200  # blue sky
    out = tmp_path / "day.mp4"
    assert encode_timelapse(out, [frame] * 5, gray=False) == 5
    with av.open(str(out)) as container:
        decoded = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert decoded[..., 2].mean() > 150 and decoded[..., 0].mean() < 60


def test_bad_frames_name_the_file_and_leave_nothing(tmp_path):
    out = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match=r"bad\.mp4.*161x90"):
        encode_timelapse(out, [np.zeros((90, 161), np.uint8)])
    with pytest.raises(ValueError, match=r"frame 1 has shape"):
        encode_timelapse(out, [np.zeros((90, 160), np.uint8), np.zeros((80, 160), np.uint8)])
    with pytest.raises(ValueError, match="no frames"):
        encode_timelapse(out, [])
    with pytest.raises(ValueError, match="gray=True"):
        encode_timelapse(out, [np.zeros((90, 160, 3), np.uint8)])
    assert list(tmp_path.iterdir()) == []


def test_seeking_to_a_keyframe_decodes_the_same_pixels(tmp_path):
    # Closed GOPs: decoding may start at any keyframe, which is how extraction seeks.
    rng = np.random.default_rng(0)
    frames = [np.clip(rng.normal(60 + i, 20, (90, 160)), 0, 255).astype(np.uint8) for i in range(250)]
    out = tmp_path / "seek.mp4"
    encode_timelapse(out, frames)
    with av.open(str(out)) as container:
        sequential = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        stream_pts = int(120 / (stream.average_rate * stream.time_base))
        container.seek(stream_pts, stream=stream, backward=True, any_frame=False)
        first = next(container.decode(stream))
        assert first.key_frame
        assert round(float(first.pts * stream.time_base) * 30) == 120
        assert np.array_equal(first.to_ndarray(format="gray"), sequential[120])
        following = next(container.decode(stream))
        assert np.array_equal(following.to_ndarray(format="gray"), sequential[121])
