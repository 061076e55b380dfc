"""PyAV decoding of chosen frames: frames identified by pts, seeks land right, a truncated
file gives only frames decoded from complete data, an unreadable one names the file."""

from datetime import datetime, timezone

import pytest
from fixtures_video import read_frame, remux_faststart, write_index_timelapse

from data_prep.video.frame_decode import VideoReadError, index_video, plan_decode, read_frames

START = datetime(2025, 11, 6, 22, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def gop30_video(tmp_path_factory):
    video, _ = write_index_timelapse(tmp_path_factory.mktemp("v"), "CAWEC2", START, 300,
                                     tag=5, gop=30)
    return video


def decode(index, targets, **kwargs):
    got = {}
    done, problems = read_frames(index, targets, lambda i, a: got.__setitem__(i, read_frame(a)),
                                 **kwargs)
    return got, done, problems


def test_index_finds_frames_and_keyframes(gop30_video):
    index = index_video(gop30_video)
    assert index.frame_count == 300 and index.header_frames == 300
    assert index.readable_frames == tuple(range(300))
    assert index.keyframes == tuple(range(0, 300, 30))
    assert not index.truncated and (index.width, index.height) == (160, 96)


@pytest.mark.parametrize("targets", [
    [0], [299], [0, 1, 2], [29, 30, 31], [3, 95, 187, 270],      # sparse: one seek each
    list(range(1, 300, 4)),                                      # dense: one pass
    [299, 0, 150, 150],                                          # unordered, repeated
])
def test_read_frames_hands_out_exactly_the_targets(gop30_video, targets):
    index = index_video(gop30_video)
    got, done, problems = decode(index, targets)
    assert problems == []
    assert done == set(targets)
    assert got == {i: (5, i) for i in set(targets)}


def test_sparse_targets_seek_and_dense_ones_run_through(gop30_video):
    index = index_video(gop30_video)
    assert len(plan_decode([3, 95, 187, 270], index.keyframes)) == 4
    assert len(plan_decode(list(range(1, 300, 4)), index.keyframes)) == 1


def test_truncated_video_yields_only_complete_frames(gop30_video, tmp_path):
    cut = tmp_path / gop30_video.name
    remux_faststart(gop30_video, cut)
    cut.write_bytes(cut.read_bytes()[: int(cut.stat().st_size * 0.6)])
    index = index_video(cut)
    assert index.truncated and index.frame_count == 300
    assert 0 < len(index.readable_frames) < 300
    got, done, _problems = decode(index, range(300))
    assert got == {i: (5, i) for i in done}
    assert done and max(done) < 300 and len(done) <= len(index.readable_frames)


def test_unreadable_video_names_the_file(gop30_video, tmp_path):
    cut = tmp_path / gop30_video.name
    cut.write_bytes(gop30_video.read_bytes()[:2000])  # index (moov) at the end: gone
    with pytest.raises(VideoReadError, match=str(cut)):
        index_video(cut)
