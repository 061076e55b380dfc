"""Fetch files over one connection, resumably: one file at a time, or small files in a batch.

A file is written to ``<name>.part`` and, after a crash, kill or dropped connection, continued
from the ``.part`` file's size, provided the server's file still has the size and mtime
recorded in ``<name>.part.source`` when the ``.part`` was started (otherwise it starts again:
resuming onto another version of the file would mix the two; a file of one chunk is fetched
again). When complete its size is checked against the server's, the server's mtime is copied
onto it and it is renamed to its final name in one ``os.replace``. A file already present with
the server's size and mtime is skipped. :func:`fetch_small` asks for many small files at once
(:meth:`RemoteSource.read_small`) and leaves any it does not complete to :func:`fetch_file`.
Many files over many connections, with retries: :mod:`data_prep.remote.fetch_pool`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from data_prep.remote.source import (
    READ_REQUEST_SIZE,
    RemoteSource,
    UnsafeNameError,
    check_remote_name,
)

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
PART_SOURCE_SUFFIX = ".part.source"  # "size mtime" of the server's file the .part belongs to


@dataclass(frozen=True)
class DownloadJob:
    remote_path: str
    local_path: Path
    size: int | None = None  # from the listing; None: ask the server
    mtime: int | None = None


@dataclass(frozen=True)
class DownloadSettings:
    workers: int = 4
    chunk_size: int = 1 << 18
    retries: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    max_bytes_per_s: float | None = None  # per worker; reads become sequential and paced


class SizeMismatchError(RuntimeError):
    """The file on disk does not have the size the server reported."""


def settings_from_config(cfg: DictConfig) -> DownloadSettings:
    """:class:`DownloadSettings` from the ``download`` config group."""
    limit = cfg.get("max_bytes_per_s")
    return DownloadSettings(
        workers=max(1, int(cfg.workers)), chunk_size=int(cfg.chunk_size), retries=int(cfg.retries),
        backoff_s=float(cfg.backoff_s), backoff_max_s=float(cfg.backoff_max_s),
        max_bytes_per_s=float(limit) if limit else None)


def part_path(local_path: Path) -> Path:
    return local_path.with_name(local_path.name + PART_SUFFIX)


def part_source_path(local_path: Path) -> Path:
    return local_path.with_name(local_path.name + PART_SOURCE_SUFFIX)


def part_source_text(size: int, mtime: int) -> str:
    return f"{size} {mtime}\n"


def resume_offset(part: Path, part_size: int, recorded_source: str | None, size: int, mtime: int,
                  remote_path: str) -> int:
    """Where to continue ``part``: its size, or 0 when it belongs to another version of the
    server's file (or an unknown one) or is longer than the server's file."""
    if part_size == 0:
        return 0
    if recorded_source != part_source_text(size, mtime):
        log.warning("%s was started from another version of %s (or its %s is missing): "
                    "starting it again", part, remote_path, PART_SOURCE_SUFFIX)
        return 0
    if part_size > size:
        log.warning("%s is larger than %s on the server: starting it again", part, remote_path)
        return 0
    return part_size


def is_complete(local_path: Path, size: int, mtime: int) -> bool:
    """True when the final file exists with the server's size and (whole-second) mtime."""
    try:
        st = local_path.stat()
    except FileNotFoundError:
        return False
    return st.st_size == size and int(st.st_mtime) == int(mtime)


def fetch_file(source: RemoteSource, job: DownloadJob, settings: DownloadSettings,
               on_bytes: Callable[[int], None] | None = None) -> tuple[str, int]:
    """Fetch one file (or continue its ``.part``); return ``(status, bytes transferred)``.

    ``on_bytes`` is told of every block written (progress bars, counters across retries).
    """
    check_remote_name(job.local_path.name, job.remote_path)
    if job.size is not None and job.mtime is not None and is_complete(job.local_path, job.size,
                                                                      job.mtime):
        return "skipped", 0
    part, part_source = part_path(job.local_path), part_source_path(job.local_path)
    part_size = part.stat().st_size if part.exists() else 0
    # Nothing on disk yet: the file will be read from offset 0, so its first block can be asked
    # for together with its size and mtime (one round trip less per file).
    fresh = part_size == 0 and not job.local_path.exists()
    remote = source.open(job.remote_path, read_ahead=fresh)
    try:
        if not fresh and is_complete(job.local_path, remote.size, remote.mtime):
            return "skipped", 0
        part.parent.mkdir(parents=True, exist_ok=True)
        recorded = part_source.read_text() if part_size and part_source.is_file() else None
        offset = resume_offset(part, part_size, recorded, remote.size, remote.mtime,
                               job.remote_path)
        # Only a file of more than one chunk is worth resuming: a smaller one left as .part
        # (no record) is fetched again, which spares two file operations per small file.
        resumable = remote.size - offset > settings.chunk_size
        if offset == 0 and resumable:
            # Not atomic on purpose (no fsync per file): a torn record only fails to match,
            # and the .part then starts again.
            part_source.write_text(part_source_text(remote.size, remote.mtime))
        transferred = _write_part(part, offset, remote.chunks, settings, on_bytes)
        size = part.stat().st_size
        if size != remote.size:
            raise SizeMismatchError(f"{part}: {size} bytes on disk, the server reports "
                                    f"{remote.size} for {job.remote_path}")
        os.utime(part, (time.time(), remote.mtime))
        os.replace(part, job.local_path)
        if resumable or recorded is not None:
            part_source.unlink(missing_ok=True)
        return "downloaded", transferred
    finally:
        remote.close()


def _write_part(part: Path, offset: int, chunks, settings: DownloadSettings,
                on_bytes: Callable[[int], None] | None) -> int:
    """Write the remote file's bytes from ``offset`` into ``part``; return how many."""
    transferred = 0
    started = time.monotonic()
    with open(part, "r+b" if offset else "wb") as out:
        out.seek(offset)
        out.truncate()
        pipelined = settings.max_bytes_per_s is None
        for data in chunks(offset, settings.chunk_size, pipelined=pipelined):
            out.write(data)
            transferred += len(data)
            if on_bytes is not None:
                on_bytes(len(data))
            if not pipelined:
                out.flush()  # a paced download shows its progress on disk as it goes
                ahead = transferred / settings.max_bytes_per_s - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    return transferred


def is_small(job: DownloadJob, expect_small: bool = False) -> bool:
    """A file that fits one read request (by the listing's size, or ``expect_small`` when the
    size is not known): worth batching with others."""
    return (expect_small and job.size is None) or (job.size is not None
                                                   and job.size <= READ_REQUEST_SIZE)


def fetch_small(source: RemoteSource, jobs: list[DownloadJob],
                on_bytes: Callable[[int], None] | None = None) -> dict[DownloadJob, tuple[str, int]]:
    """Fetch the small files of ``jobs`` in one batch of requests
    (:meth:`RemoteSource.read_small`); return ``{job: (status, bytes)}`` for those it settled:
    ``downloaded``, or ``skipped`` for a local copy with the server's size and mtime (a copy
    that differs is replaced: the server's file changed). The others (complete by the job's
    own size and mtime, a ``.part`` to resume, unsafe names, files the batch could not read
    whole) are left for :func:`fetch_file`, which skips, resumes, retries or reports them."""
    asked = []
    for job in jobs:
        try:
            check_remote_name(job.local_path.name, job.remote_path)
        except UnsafeNameError:
            continue
        known_complete = job.size is not None and job.mtime is not None and is_complete(
            job.local_path, job.size, job.mtime)
        if not known_complete and not part_path(job.local_path).exists():
            asked.append(job)
    done: dict[DownloadJob, tuple[str, int]] = {}
    if not asked:
        return done
    for job, whole in zip(asked, source.read_small([j.remote_path for j in asked]), strict=True):
        if whole is None:
            continue
        if is_complete(job.local_path, whole.size, whole.mtime):
            done[job] = ("skipped", 0)
            continue
        part = part_path(job.local_path)
        part.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "wb") as out:
            out.write(whole.data)
        os.utime(part, (time.time(), whole.mtime))
        os.replace(part, job.local_path)
        done[job] = ("downloaded", whole.size)
        if on_bytes is not None:
            on_bytes(whole.size)
    return done
