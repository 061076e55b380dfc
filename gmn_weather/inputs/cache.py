"""Decode-once input cache: every frame decoded and resized once, then read by every job.

Under ``data.cache_dir`` one folder per *variant* (the decode rule of
:mod:`gmn_weather.inputs.decode` and the resize of the input spec; crops, augmentation and
normalisation happen later, on tensors) holds *shards*: ``shard-<id>.bin`` (uint8 pixels,
frame after frame, [3, H, W] C-order) and ``shard-<id>.json`` (per frame: the source file's
resolved path, size, mtime_ns, offset and shape; or why the file could not be decoded). A
frame's key is (path, size, mtime_ns): an image changed on disk gets a new key and is decoded
again; the entry of a changed or removed file is dropped at the next build. Every fold, the
final model and reruns read the same frames; a new shard holds only what was missing.

Several jobs may build the same cache at once. Builders take turns under the folder's
``build.lock`` (:class:`gmn_base.locks.FileLock`; released by the kernel if a builder dies),
so a fold job that starts while another decodes waits and then reuses its frames. Readers
take no lock: a shard is written under a temporary name and renamed, and its index is
renamed into place after it, so an index only ever names a complete shard. Where the file
system has no locks the builders run unlocked and stay correct: each writes its own shard
(two may decode the same frame; the copies are identical and either is read). Compaction
(dropped entries, duplicates, or more than :data:`MAX_SHARDS` shards) copies the live frames
into the builder's new shard, publishes it, then deletes the old shards. Readers open their
shard files when the cache is opened, so a running job keeps reading a deleted shard through
its open file (POSIX), and a builder that finds a shard gone between listing and opening
lists again.

Reading is ``os.preadv`` into a fresh array per frame: through the page cache, nothing mapped
into the process, so a loader worker's memory does not grow with the data set. Torch-free.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gmn_base.atomic import TEMP_SUFFIX, atomic_path, write_json
from gmn_base.locks import FileLock, LockError
from gmn_weather.inputs.decode import DECODE_RULE, ImageDecodeError, frame_pixels

log = logging.getLogger(__name__)

CACHE_FORMAT = "gmn-weather-input-cache/1"
MAX_SHARDS = 16
BUILD_LOCK = "build.lock"
ORPHAN_AGE_S = 24 * 3600
_OPEN_RETRIES = 5

Key = tuple[str, int, int]  # resolved path, size, mtime_ns


class InputCacheError(RuntimeError):
    """The cache folder cannot be used; the message names it and the way out."""


@dataclass(frozen=True)
class Frame:
    """Where one decoded frame lies: shard file, byte offset, [3, H, W]."""

    shard: str
    offset: int
    shape: tuple[int, int, int]


@dataclass
class Shard:
    name: str
    frames: dict[Key, Frame] = field(default_factory=dict)
    unreadable: dict[Key, str] = field(default_factory=dict)


def variant_of(resize: int | Sequence[int]) -> dict:
    """What a cache folder's frames are: the decode rule and the resize."""
    return {"format": CACHE_FORMAT, "decode": DECODE_RULE,
            "resize": resize if isinstance(resize, int) else [int(v) for v in resize]}


def variant_folder(variant: dict) -> str:
    resize = variant["resize"]
    size = f"short{resize}" if isinstance(resize, int) else f"{resize[0]}x{resize[1]}"
    digest = hashlib.sha256(json.dumps(variant, sort_keys=True).encode()).hexdigest()[:10]
    return f"{size}-{digest}"


def file_key(path: str | Path) -> Key:
    """(resolved path, size, mtime_ns); FileNotFoundError for a file that is gone."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return str(resolved), int(stat.st_size), int(stat.st_mtime_ns)


def _read_index(path: Path) -> Shard:
    data = json.loads(path.read_text())
    shard = Shard(name=path.stem)
    for p, size, mtime, offset, c, h, w in data["frames"]:
        shard.frames[(p, size, mtime)] = Frame(path.stem, offset, (c, h, w))
    for p, size, mtime, reason in data["unreadable"]:
        shard.unreadable[(p, size, mtime)] = reason
    return shard


def _decode(item: tuple[Key, int | list[int]]) -> tuple[Key, np.ndarray | None, str | None]:
    key, resize = item
    try:
        return key, frame_pixels(key[0], resize), None
    except ImageDecodeError as exc:
        return key, None, exc.reason


def _decoded(items: list[tuple[Key, int | list[int]]], workers: int) -> Iterator[tuple]:
    """Decode results in order, in ``workers`` processes (0 or 1: in this one)."""
    if workers <= 1 or len(items) < 2 * workers:
        yield from map(_decode, items)
        return
    with multiprocessing.get_context().Pool(workers) as pool:
        yield from pool.imap(_decode, items, chunksize=8)


def _read_into(fd: int, frame: Frame) -> np.ndarray:
    out = np.empty(frame.shape, dtype=np.uint8)
    view, offset = memoryview(out).cast("B"), frame.offset
    while len(view):
        n = os.preadv(fd, [view], offset)
        if n <= 0:
            raise InputCacheError(f"input cache shard {frame.shard}.bin ends early at byte "
                                  f"{offset}; delete the cache folder (data.cache_dir) and rerun")
        view, offset = view[n:], offset + n
    return out


@dataclass
class BuildReport:
    folder: Path
    n_frames: int  # frames the cache holds after the build (all jobs' images)
    nbytes: int
    decoded: int  # decoded by this build
    reused: int
    dropped: int  # entries of changed or removed files dropped
    unreadable: dict[str, str]  # listed path -> reason

    def line(self) -> str:
        return (f"input cache {self.folder}: {self.n_frames} frames, "
                f"{self.nbytes / 1e6:.1f} MB; this job decoded {self.decoded} and reused "
                f"{self.reused}, dropped {self.dropped} changed or removed, "
                f"{len(self.unreadable)} unreadable")


class CachedFrames:
    """The decoded frames of a list of files, read from the cache's shards by position."""

    def __init__(self, folder: Path, frames: list[Frame | None], fds: dict[str, int]):
        self.folder, self.frames, self._fds = folder, frames, fds
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.frames)

    def pixels(self, position: int) -> np.ndarray:
        frame = self.frames[position]
        if frame is None:
            raise InputCacheError(f"frame {position} of the list was not decodable")
        return _read_into(self._fd(frame.shard), frame)

    def _fd(self, shard: str) -> int:
        fd = self._fds.get(shard)
        if fd is None:  # unpickled in another process (spawned loader worker): reopen
            try:
                fd = self._fds[shard] = os.open(self.folder / f"{shard}.bin", os.O_RDONLY)
            except FileNotFoundError:
                raise InputCacheError(
                    f"input cache shard {self.folder / shard}.bin was compacted by another "
                    "job while this one ran; run this job again") from None
        return fd

    def __getstate__(self) -> dict:
        # File descriptors do not survive pickling; the receiving process reopens by name.
        return {"folder": self.folder, "frames": self.frames, "_fds": {}, "_pid": None}

    def close(self) -> None:
        if self._pid == os.getpid():
            for fd in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fds = {}

    def __del__(self):
        self.close()


class InputCache:
    """One variant folder of the cache: build it for a list of files, then read it."""

    def __init__(self, root: str | Path, resize: int | Sequence[int], workers: int = 0):
        self.variant = variant_of(resize)
        self.folder = Path(root) / variant_folder(self.variant)
        self.workers = int(workers)

    def _prepare_folder(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            marker = self.folder / "variant.json"
            if not marker.is_file():
                write_json(marker, self.variant)
        except OSError as exc:
            raise InputCacheError(
                f"input cache: cannot write {self.folder} ({exc.strerror}); set "
                "data.cache_dir to a writable folder, or data.cache=false to decode every "
                "epoch") from exc

    def _open_shards(self) -> tuple[dict[str, Shard], dict[str, int]]:
        """Every published shard's index, with its pixel file open."""
        for _ in range(_OPEN_RETRIES):
            shards, fds = {}, {}
            try:
                for index in sorted(self.folder.glob("shard-*.json")):
                    shard = _read_index(index)
                    fds[shard.name] = os.open(index.with_suffix(".bin"), os.O_RDONLY)
                    shards[shard.name] = shard
                return shards, fds
            except FileNotFoundError:  # compacted away between listing and opening
                for fd in fds.values():
                    os.close(fd)
        raise InputCacheError(f"input cache {self.folder}: shards keep disappearing while "
                              "opened; is another job compacting it? Run again")

    def build(self, paths: Sequence[str | Path]) -> tuple[CachedFrames, BuildReport]:
        """Decode what is missing for ``paths``, drop stale entries, open the frames.

        Builders take turns (the folder's build lock): a job that starts while another
        builds waits, then finds that job's frames instead of decoding them again.
        """
        self._prepare_folder()
        with self._build_turn():
            return self._build(paths)

    @contextlib.contextmanager
    def _build_turn(self) -> Iterator[None]:
        lock = FileLock(self.folder / BUILD_LOCK, note="input cache build")
        try:
            holder = lock.try_acquire()
            if holder is not None:
                log.info("input cache: waiting for %s to finish building %s",
                         holder.describe(), self.folder)
                lock.acquire()
        except LockError as exc:  # still correct without it: builders may duplicate work
            log.warning("input cache: building without a lock (%s)", exc)
        try:
            yield
        finally:
            lock.release()

    def _build(self, paths: Sequence[str | Path]) -> tuple[CachedFrames, BuildReport]:
        _remove_orphans(self.folder)
        keys = [file_key(p) for p in paths]
        shards, fds = self._open_shards()
        entries = _Entries.of(shards)
        stale, dropped = entries.drop_stale(shards, {k[0]: k for k in keys})
        rewrite = set(shards) if len(shards) >= MAX_SHARDS else stale
        missing = sorted({k for k in keys if k not in entries.frames
                          and k not in entries.unreadable})
        if missing or entries.owned_by(rewrite):
            if missing:
                log.info("input cache: decoding %d images into %s", len(missing), self.folder)
            new = self._write_shard(missing, entries, rewrite, fds)
            fds[new.name] = os.open(self.folder / f"{new.name}.bin", os.O_RDONLY)
            entries.frames.update(new.frames)
            entries.unreadable.update({k: (new.name, r) for k, r in new.unreadable.items()})
        for name in rewrite:  # their live entries are in the new shard now
            _delete_shard(self.folder, name)
            os.close(fds.pop(name))
        reader = CachedFrames(self.folder, [entries.frames.get(k) for k in keys], fds)
        report = BuildReport(
            folder=self.folder, n_frames=len(entries.frames),
            nbytes=sum(os.fstat(fd).st_size for fd in fds.values()),
            decoded=len(missing), reused=len(keys) - len(missing), dropped=dropped,
            unreadable={str(p): entries.unreadable[k][1] for p, k in zip(paths, keys)
                        if k in entries.unreadable})
        return reader, report

    def _write_shard(self, missing: list[Key], entries: _Entries, rewrite: set[str],
                     fds: dict[str, int]) -> Shard:
        """One new shard: the ``missing`` frames decoded, the live entries of ``rewrite`` copied."""
        shard = Shard(name=f"shard-{uuid.uuid4().hex[:16]}")
        keep = [(k, f) for k, f in entries.frames.items() if f.shard in rewrite]
        with atomic_path(self.folder / f"{shard.name}.bin") as tmp, open(tmp, "wb") as out:
            for key, frame in keep:
                shard.frames[key] = Frame(shard.name, out.tell(), frame.shape)
                out.write(_read_into(fds[frame.shard], frame).tobytes())
            items = [(k, self.variant["resize"]) for k in missing]
            for key, pixels, error in tqdm(_decoded(items, self.workers), total=len(items),
                                           desc="input cache", unit="img", disable=None):
                if pixels is None:
                    shard.unreadable[key] = error
                    continue
                shard.frames[key] = Frame(shard.name, out.tell(), tuple(pixels.shape))
                out.write(pixels.tobytes())
        shard.unreadable.update({k: reason for k, (owner, reason) in entries.unreadable.items()
                                 if owner in rewrite})
        write_json(self.folder / f"{shard.name}.json", {
            "format": CACHE_FORMAT, "variant": self.variant,
            "frames": [[*k, f.offset, *f.shape] for k, f in shard.frames.items()],
            "unreadable": [[*k, r] for k, r in shard.unreadable.items()]})
        return shard


@dataclass
class _Entries:
    """Every key's entry as read: from the first shard (by name) that holds it."""

    frames: dict[Key, Frame]
    unreadable: dict[Key, tuple[str, str]]  # key -> (shard, reason)

    @classmethod
    def of(cls, shards: dict[str, Shard]) -> _Entries:
        frames: dict[Key, Frame] = {}
        unreadable: dict[Key, tuple[str, str]] = {}
        for name in sorted(shards, reverse=True):  # the first name wins
            frames.update(shards[name].frames)
            unreadable.update({k: (name, r) for k, r in shards[name].unreadable.items()})
        for key in set(frames) & set(unreadable):  # decoded somewhere after all
            del unreadable[key]
        return cls(frames, unreadable)

    def owned_by(self, shards: set[str]) -> bool:
        return any(f.shard in shards for f in self.frames.values()) \
            or any(owner in shards for owner, _ in self.unreadable.values())

    def owner(self, key: Key) -> str | None:
        if key in self.frames:
            return self.frames[key].shard
        return self.unreadable[key][0] if key in self.unreadable else None

    def drop_stale(self, shards: dict[str, Shard], listed: dict[str, Key]) -> tuple[set[str], int]:
        """Drop the entries of files changed or removed since; return the shards holding a
        dropped entry or a second copy of a key (to rewrite), and how many were dropped."""
        current: dict[str, Key | None] = dict(listed)
        stale: set[str] = set()
        dropped: set[Key] = set()
        for name, shard in shards.items():
            for key in [*shard.frames, *shard.unreadable]:
                if key[0] not in current:
                    try:
                        current[key[0]] = file_key(key[0])
                    except OSError:
                        current[key[0]] = None  # removed
                if current[key[0]] != key:
                    dropped.add(key)
                    self.frames.pop(key, None)
                    self.unreadable.pop(key, None)
                    stale.add(name)
                elif self.owner(key) != name:
                    stale.add(name)  # a second copy: the owner's is read
        return stale, len(dropped)


def _remove_orphans(folder: Path, age_s: float = ORPHAN_AGE_S) -> None:
    """Files a killed builder left (a temporary, a shard without its index), once they
    have not changed for ``age_s``: a running builder keeps writing to its own."""
    now = time.time()
    indexed = {p.stem for p in folder.glob("shard-*.json")}
    for path in [*folder.glob(f".*{TEMP_SUFFIX}"), *folder.glob("shard-*.bin")]:
        if path.suffix == ".bin" and path.stem in indexed:
            continue
        with contextlib.suppress(FileNotFoundError):
            if now - path.stat().st_mtime > age_s:
                path.unlink()
                log.info("input cache: removed %s, left by a killed job", path)


def _delete_shard(folder: Path, name: str) -> None:
    for suffix in (".json", ".bin"):  # index first: no index ever names a missing file
        with contextlib.suppress(FileNotFoundError):
            (folder / f"{name}{suffix}").unlink()
