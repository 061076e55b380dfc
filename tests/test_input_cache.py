"""The decode-once input cache: reuse, invalidation, concurrent builders, memory."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gmn_weather.inputs.cache import InputCache, variant_folder, variant_of
from gmn_weather.inputs.decode import frame_pixels

SIZE = [24, 40]


def _frames(folder: Path, n: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"f{i:03d}.png"
        Image.fromarray(rng.integers(0, 255, (36, 64, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _indexed(cache: InputCache) -> dict[str, dict]:
    """Every entry the published shard indexes hold, by source file name."""
    entries = {}
    for index in cache.folder.glob("shard-*.json"):
        data = json.loads(index.read_text())
        entries.update({Path(e[0]).name: {"shard": index.stem, "mtime": e[2]} for e in data["frames"]})
        entries.update({Path(e[0]).name: {"unreadable": e[3]} for e in data["unreadable"]})
    return entries


def test_second_build_decodes_nothing_and_reads_the_same_pixels(tmp_path):
    paths = _frames(tmp_path / "img", 6)
    cache = InputCache(tmp_path / "cache", SIZE)
    _, report = cache.build(paths)
    assert report.decoded == 6 and report.reused == 0 and report.n_frames == 6
    assert report.nbytes == 6 * 3 * 24 * 40
    again, report = InputCache(tmp_path / "cache", SIZE).build(paths[::-1])
    assert report.decoded == 0 and report.reused == 6
    for i, path in enumerate(paths[::-1]):
        assert np.array_equal(again.pixels(i), frame_pixels(path, SIZE))
    assert cache.folder.name == variant_folder(variant_of(SIZE)) and "24x40" in cache.folder.name
    other, report = InputCache(tmp_path / "cache", 30).build(paths)  # another resize: decoded
    assert report.decoded == 6 and other.pixels(0).shape == (3, 30, 53)


def test_changed_image_is_decoded_again_and_removed_one_dropped(tmp_path):
    paths = _frames(tmp_path / "img", 5)
    InputCache(tmp_path / "cache", SIZE).build(paths)
    changed, removed = paths[1], paths[3]
    Image.fromarray(np.full((36, 64, 3), 7, np.uint8)).save(changed)
    os.utime(changed, ns=(1, 10**18))  # a new mtime even on coarse clocks
    removed.unlink()
    listed = [p for p in paths if p != removed]
    cache = InputCache(tmp_path / "cache", SIZE)
    frames, report = cache.build(listed)
    assert report.decoded == 1 and report.dropped == 2  # the old copy of changed, and removed
    assert (frames.pixels(1) == 7).all()
    entries = _indexed(cache)
    assert removed.name not in entries
    assert entries[changed.name]["mtime"] == 10**18
    assert len(list(cache.folder.glob("shard-*.bin"))) == 1  # old shard compacted away
    assert report.nbytes == 4 * 3 * 24 * 40


def test_unreadable_images_are_remembered_until_they_change(tmp_path):
    paths = _frames(tmp_path / "img", 3)
    paths[0].write_bytes(b"")
    paths[2].write_bytes(paths[2].read_bytes()[:200])
    _, report = InputCache(tmp_path / "cache", SIZE).build(paths)
    assert set(report.unreadable) == {str(paths[0]), str(paths[2])}
    assert report.unreadable[str(paths[0])] == "zero-byte file"
    _, report = InputCache(tmp_path / "cache", SIZE).build(paths)
    assert report.decoded == 0 and len(report.unreadable) == 2  # not tried again
    Image.fromarray(np.zeros((36, 64, 3), np.uint8)).save(paths[0])  # fixed
    frames, report = InputCache(tmp_path / "cache", SIZE).build(paths)
    assert report.decoded == 1 and set(report.unreadable) == {str(paths[2])}
    assert (frames.pixels(0) == 0).all()


def _build_at_once(args):
    root, paths, barrier = args
    barrier.wait()
    frames, report = InputCache(root, SIZE).build(paths)
    return report.decoded, [frames.pixels(i).sum() for i in range(len(paths))]


def _three_jobs_at_once(tmp_path) -> tuple[list[Path], list, list[int]]:
    """Three processes build the cache for the same 12 frames at the same moment: the
    paths, each frame's expected pixel sum, and how many each build decoded."""
    paths = _frames(tmp_path / "img", 12)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Manager().Barrier(3)
    with ctx.Pool(3) as pool:
        results = pool.map(_build_at_once, [(tmp_path / "cache", paths, barrier)] * 3)
    expected = [frame_pixels(p, SIZE).sum() for p in paths]
    assert [sums for _, sums in results] == [expected] * 3  # every job reads the same pixels
    return paths, expected, [decoded for decoded, _ in results]


def test_jobs_building_at_once_take_turns_and_decode_each_image_once(tmp_path):
    _, _, decoded = _three_jobs_at_once(tmp_path)
    assert sorted(decoded) == [0, 0, 12]  # the others waited
    cache = InputCache(tmp_path / "cache", SIZE)
    assert len(list(cache.folder.glob("shard-*.json"))) == 1
    assert not (cache.folder / "build.lock").exists()


def test_builders_without_a_lock_duplicate_work_and_a_later_build_merges_it(tmp_path,
                                                                          monkeypatch):
    """Where the file system has no locks (simulated: the lock refuses), concurrent
    builders each publish a shard; the copies are identical and the next build keeps one."""
    from gmn_base import locks

    def no_locks(self):
        raise locks.LockError(f"{self.path}: this file system does not support locks")

    monkeypatch.setattr(locks.FileLock, "try_acquire", no_locks)
    paths, expected, _ = _three_jobs_at_once(tmp_path)
    cache = InputCache(tmp_path / "cache", SIZE)
    frames, report = cache.build(paths)
    assert report.decoded == 0 and report.n_frames == 12
    assert len(list(cache.folder.glob("shard-*.json"))) == 1  # duplicates merged into one
    assert [frames.pixels(i).sum() for i in range(12)] == expected


def test_a_running_job_keeps_reading_a_shard_another_job_compacted(tmp_path):
    paths = _frames(tmp_path / "img", 4)
    running, _ = InputCache(tmp_path / "cache", SIZE).build(paths)
    before = running.pixels(2).copy()
    paths[0].unlink()  # the next build compacts the only shard away
    InputCache(tmp_path / "cache", SIZE).build(paths[1:])
    assert np.array_equal(running.pixels(2), before)


def test_unwritable_cache_folder_is_named_with_the_way_out(tmp_path):
    paths = _frames(tmp_path / "img", 1)
    (tmp_path / "file").write_text("")
    from gmn_weather.inputs.cache import InputCacheError

    with pytest.raises(InputCacheError, match=r"cannot write .*file.*data.cache_dir.*data.cache=false"):
        InputCache(tmp_path / "file" / "cache", SIZE).build(paths)


_READ_ALL = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from gmn_weather.inputs.cache import CachedFrames, Frame
    folder, n, shape = sys.argv[1], int(sys.argv[2]), (3, 216, 384)
    import os
    from pathlib import Path
    fd = os.open(Path(folder) / "shard-big.bin", os.O_RDONLY)
    size = int(np.prod(shape))
    frames = CachedFrames(Path(folder), [Frame("shard-big", i * size, shape) for i in range(n)],
                          {"shard-big": fd})
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(2):  # two epochs over every frame
        total = sum(int(frames.pixels(i)[0, 0, 0]) for i in range(n))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
""")


def test_reading_ten_times_the_frames_does_not_grow_peak_memory(tmp_path):
    """Frames are read through the page cache into short-lived arrays: the reader's peak
    RSS stays flat from 40 to 400 frames of 216x384 (25 MB to 250 MB of pixels)."""
    frame = 3 * 216 * 384
    with open(tmp_path / "shard-big.bin", "wb") as out:
        block = np.random.default_rng(0).integers(0, 255, 40 * frame, dtype=np.uint8).tobytes()
        out.writelines(block for _ in range(10))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    growth = {}
    for n in (40, 400):
        out = subprocess.run([sys.executable, "-c", _READ_ALL, str(tmp_path), str(n)], env=env,
                             check=True, capture_output=True, text=True).stdout
        growth[n] = int(out.strip()) / 1024  # ru_maxrss is in KiB: MiB
    assert growth[400] - growth[40] < 10, growth  # 225 MB more pixels read
