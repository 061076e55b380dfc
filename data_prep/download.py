"""Fetch the files listed in ``download_manifest.csv`` into ``paths.data_dir``, resumably.

Each of ``download.workers`` threads holds its own connection to the source. A file is
written to ``<name>.part`` and, after a crash, kill or dropped connection, continued from the
``.part`` file's size, provided the server's file still has the size and mtime recorded in
``<name>.part.source`` when the ``.part`` was started (otherwise it starts again: resuming
onto another version of the file would mix the two; a file of one chunk is fetched again). When complete its size is checked
against the server's, the server's mtime is copied onto it and it is renamed to its final
name in one ``os.replace``. A file already present with the server's size and mtime is
skipped. Dropped connections are retried with exponential backoff (tenacity) on a fresh
connection. Small files are asked for in batches per connection (:func:`fetch_small`), any
it does not complete one by one. :func:`fetch_all` is the engine ``data_prep.find`` uses for
interval files too.
"""

from __future__ import annotations

import csv
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import hydra
from omegaconf import DictConfig
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)
from tqdm import tqdm

from data_prep.host_keys import HostKeyError
from data_prep.source import (
    READ_REQUEST_SIZE,
    RemoteSource,
    SourceError,
    SourceFactory,
    SourceUnreachable,
    UnsafeNameError,
    check_remote_name,
    is_retryable,
    resolve_inside,
    source_factory,
)
from data_prep.summary import StepSummary, run_step

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
PART_SOURCE_SUFFIX = ".part.source"  # "size mtime" of the server's file the .part belongs to
MANIFEST_COLUMNS = ["station", "night", "kind", "remote_path", "local_path", "size", "mtime"]
SMALL_BATCH = 32  # small files a worker asks for at once (RemoteSource.read_small)


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


@dataclass(frozen=True)
class DownloadResult:
    job: DownloadJob
    status: str  # downloaded | skipped | missing | failed
    bytes: int = 0
    attempts: int = 1
    error: str = ""


class SizeMismatchError(RuntimeError):
    """The file on disk does not have the size the server reported."""


class DownloadInterrupted(Exception):
    """The run is stopping (Ctrl-C); the ``.part`` file is kept for the next run."""


def settings_from_config(cfg: DictConfig) -> DownloadSettings:
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
        transferred = 0
        started = time.monotonic()
        with open(part, "r+b" if offset else "wb") as out:
            out.seek(offset)
            out.truncate()
            pipelined = settings.max_bytes_per_s is None
            for data in remote.chunks(offset, settings.chunk_size, pipelined=pipelined):
                out.write(data)
                transferred += len(data)
                if on_bytes is not None:
                    on_bytes(len(data))
                if not pipelined:
                    out.flush()  # a paced download shows its progress on disk as it goes
                    ahead = transferred / settings.max_bytes_per_s - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
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


def is_small(job: DownloadJob, expect_small: bool = False) -> bool:
    """A file that fits one read request (by the listing's size, or ``expect_small`` when the
    size is not known): worth batching with others."""
    return (expect_small and job.size is None) or (job.size is not None
                                                   and job.size <= READ_REQUEST_SIZE)


def fetch_small(source: RemoteSource, jobs: list[DownloadJob],
                on_bytes: Callable[[int], None] | None = None) -> dict[DownloadJob, int]:
    """Fetch the small files of ``jobs`` that are not on disk yet in one batch of requests
    (:meth:`RemoteSource.read_small`); return ``{job: bytes}`` for those written. The others
    (already on disk, unsafe names, files the batch could not read whole) are left for
    :func:`fetch_file`, which skips, resumes, retries or reports them."""
    fresh = []
    for job in jobs:
        try:
            check_remote_name(job.local_path.name, job.remote_path)
        except UnsafeNameError:
            continue
        if not job.local_path.exists() and not part_path(job.local_path).exists():
            fresh.append(job)
    done: dict[DownloadJob, int] = {}
    if not fresh:
        return done
    for job, whole in zip(fresh, source.read_small([j.remote_path for j in fresh]), strict=True):
        if whole is None:
            continue
        part = part_path(job.local_path)
        part.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "wb") as out:
            out.write(whole.data)
        os.utime(part, (time.time(), whole.mtime))
        os.replace(part, job.local_path)
        done[job] = whole.size
        if on_bytes is not None:
            on_bytes(whole.size)
    return done


class _Connections:
    """One source connection per worker thread, reopened after a failure."""

    def __init__(self, factory: SourceFactory):
        self.factory = factory
        self.local = threading.local()
        self.lock = threading.Lock()
        self.opened: list[RemoteSource] = []

    def get(self) -> RemoteSource:
        source = getattr(self.local, "source", None)
        if source is None:
            source = self.factory()
            self.local.source = source
            with self.lock:
                self.opened.append(source)
        return source

    def drop(self) -> None:
        source = getattr(self.local, "source", None)
        self.local.source = None
        if source is not None:
            source.close()

    def close_all(self) -> None:
        with self.lock:
            for source in self.opened:
                source.close()
            self.opened.clear()


def fetch_all(jobs: list[DownloadJob], factory: SourceFactory, settings: DownloadSettings,
              description: str = "download", expect_small: bool = False) -> list[DownloadResult]:
    """Fetch ``jobs`` with ``settings.workers`` connections; one result per job, in order.

    Small files (by the job's size, or every job of unknown size with ``expect_small``) are
    asked for in batches of up to :data:`SMALL_BATCH` per connection (:func:`fetch_small`);
    any the batch does not complete go through :func:`fetch_file` one by one.

    A missing remote file is reported as ``missing``; unsafe names and size mismatches as
    ``failed``, without retrying. A source that cannot be used at all (host key,
    authentication, configuration, or no connection after a file's retries) stops the run:
    the error is raised once all workers stop.
    """
    if not jobs:
        return []
    connections = _Connections(factory)
    fatal: list[Exception] = []
    stopping = threading.Event()
    known = [j.size for j in jobs]
    total = sum(known) if all(s is not None for s in known) else None
    progress = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=description, disable=None)

    def before_retry(state: RetryCallState) -> None:
        connections.drop()
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s: %s; reconnecting (attempt %d of %d)", state.args[0].remote_path,
                    exc, state.attempt_number + 1, settings.retries + 1)

    def run_job(job: DownloadJob) -> DownloadResult:
        if fatal or stopping.is_set():
            return DownloadResult(job, "failed", 0, 0, f"{job.remote_path}: not attempted")
        moved = [0]  # bytes over all attempts: a resumed file counts each byte once

        def on_bytes(n: int) -> None:
            moved[0] += n
            progress.update(n)
            if stopping.is_set():
                raise DownloadInterrupted(f"{job.remote_path}: interrupted, .part file kept")

        def attempt(job: DownloadJob) -> str:
            return fetch_file(connections.get(), job, settings, on_bytes)[0]

        retrying = Retrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(settings.retries + 1),
            wait=wait_exponential(multiplier=settings.backoff_s, max=settings.backoff_max_s),
            before_sleep=before_retry, reraise=True)
        try:
            status = retrying(attempt, job)
            return DownloadResult(job, status, moved[0], retrying.statistics.get("attempt_number", 1))
        except FileNotFoundError as exc:
            return DownloadResult(job, "missing", 0, error=f"{job.remote_path}: {exc.strerror or exc}")
        except (UnsafeNameError, SizeMismatchError) as exc:
            return DownloadResult(job, "failed", 0, error=str(exc))
        except (SourceError, HostKeyError) as exc:
            fatal.append(exc)
            return DownloadResult(job, "failed", 0, error=str(exc))
        except SourceUnreachable as exc:  # retries used up without even a connection
            fatal.append(exc)
            return DownloadResult(job, "failed", moved[0],
                                  retrying.statistics.get("attempt_number", 1), str(exc))
        except Exception as exc:  # noqa: BLE001 - every other error is reported per file
            if not is_retryable(exc):
                connections.drop()
            attempts = retrying.statistics.get("attempt_number", 1)
            return DownloadResult(job, "failed", moved[0], attempts,
                                  f"{job.remote_path}: {type(exc).__name__}: {exc}")

    def run_batch(batch: list[DownloadJob]) -> list[DownloadResult]:
        done: dict[DownloadJob, int] = {}
        if len(batch) > 1 and not (fatal or stopping.is_set()):
            try:
                done = fetch_small(connections.get(), batch, progress.update)
            except Exception as exc:  # noqa: BLE001 - the batch is only a shortcut: each of its
                # files not written yet is fetched again on its own, where errors are retried
                # and reported by name
                log.debug("batch of %d small files: %s; fetching them one by one", len(batch), exc)
                connections.drop()
        return [DownloadResult(job, "downloaded", done[job]) if job in done else run_job(job)
                for job in batch]

    workers = min(settings.workers, len(jobs))
    small = [job for job in jobs if is_small(job, expect_small)]
    size = max(1, min(SMALL_BATCH, -(-len(small) // workers)))
    batches = [small[i:i + size] for i in range(0, len(small), size)]
    batches += [[job] for job in jobs if not is_small(job, expect_small)]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="download")
    try:
        by_job = {id(r.job): r for rs in pool.map(run_batch, batches) for r in rs}
        results = [by_job[id(job)] for job in jobs]
    except KeyboardInterrupt:
        # Let the workers stop at their next block instead of finishing the whole manifest.
        stopping.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        connections.close_all()
        progress.close()
    if fatal:
        raise fatal[0]
    return results


# --- manifest -------------------------------------------------------------------------------


def read_manifest(path: Path, data_dir: Path) -> tuple[list[DownloadJob], list[str]]:
    """Jobs from ``download_manifest.csv``; rows with unsafe local paths come back as errors."""
    if not path.is_file():
        raise FileNotFoundError(f"download manifest {path} not found: run `python -m data_prep.plan` "
                                f"first, or set download.manifest")
    jobs, errors = [], []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"remote_path", "local_path"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected {MANIFEST_COLUMNS}")
        for lineno, row in enumerate(reader, start=2):
            where = f"{path}:{lineno}"
            try:
                local = resolve_inside(data_dir, row["local_path"], where)
                check_remote_name(local.name, where)
                size = int(row["size"]) if row.get("size") else None
                mtime = int(row["mtime"]) if row.get("mtime") else None
            except (UnsafeNameError, ValueError) as exc:
                errors.append(str(exc))
                continue
            jobs.append(DownloadJob(row["remote_path"], local, size, mtime))
    return jobs, errors


def summarize(results: list[DownloadResult], summary: StepSummary, missing_is_failure: bool = True) -> None:
    for result in results:
        summary.count(result.status)
        if result.attempts > 1:
            summary.count("retries", result.attempts - 1)
        if result.bytes:
            summary.count("bytes", result.bytes)
        if result.status == "failed" or (result.status == "missing" and missing_is_failure):
            summary.add_failure(result.error or result.job.remote_path)
            if result.status == "missing":
                summary.count("failed")  # reported as failed too: the manifest promised it


def run(cfg: DictConfig) -> StepSummary:
    started = time.monotonic()
    summary = StepSummary("download")
    data_dir = Path(str(cfg.paths.data_dir))
    manifest = Path(str(cfg.download.manifest))
    jobs, errors = read_manifest(manifest, data_dir)
    for error in errors:
        summary.count("failed")
        summary.add_failure(error)
    try:
        results = fetch_all(jobs, source_factory(cfg.source), settings_from_config(cfg.download))
    except (SourceError, HostKeyError, SourceUnreachable) as exc:
        summary.add_failure(str(exc))
        results = []
    summarize(results, summary)
    for name in ("downloaded", "skipped", "failed"):
        summary.counts.setdefault(name, 0)
    summary.outputs["raw_data"] = str(data_dir / "raw_data")
    summary.seconds = time.monotonic() - started
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    # Ctrl-C exits 130; partial files stay as .part and the next run resumes them.
    run_step("download", run, cfg, log, user_errors=(SourceError, HostKeyError, FileNotFoundError,
                                                     ValueError))


if __name__ == "__main__":
    main()
