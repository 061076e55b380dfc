"""Fetch many files over ``workers`` connections, retried on a fresh connection, with progress.

:func:`fetch_all` is the engine ``download`` uses for the manifest and ``find`` for interval
files. Each worker thread holds its own connection (:class:`Connections`); small files are asked
for in batches per connection (:func:`plan_batches`, :func:`~data_prep.remote.fetch.fetch_small`),
any the batch does not complete one by one (:func:`~data_prep.remote.fetch.fetch_file`).
Dropped connections are retried with exponential backoff (tenacity) after reconnecting; errors
a retry cannot fix are not retried (:func:`is_retryable`). A source that cannot be used at all
(host key, authentication, configuration, no connection after a file's retries) stops the
whole run; Ctrl-C stops the workers at their next block, keeping their ``.part`` files.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import paramiko
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)
from tqdm import tqdm

from data_prep.remote.fetch import (
    DownloadJob,
    DownloadSettings,
    SizeMismatchError,
    fetch_file,
    fetch_small,
    is_small,
)
from data_prep.remote.host_keys import HostKeyError
from data_prep.remote.source import (
    RemoteSource,
    SourceError,
    SourceFactory,
    SourceUnreachable,
    UnsafeNameError,
)

log = logging.getLogger(__name__)

SMALL_BATCH = 32  # small files a worker asks for at once (RemoteSource.read_small)


@dataclass(frozen=True)
class DownloadResult:
    job: DownloadJob
    status: str  # downloaded | skipped | missing | failed
    bytes: int = 0
    attempts: int = 1
    error: str = ""


class DownloadInterrupted(Exception):
    """The run is stopping (Ctrl-C); the ``.part`` file is kept for the next run."""


def is_permanent(exc: BaseException) -> bool:
    """Errors that a reconnect and retry cannot fix."""
    if isinstance(exc, (SourceError, HostKeyError, UnsafeNameError, paramiko.AuthenticationException,
                        paramiko.BadHostKeyException)):
        return True
    return isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.EACCES, errno.EPERM,
                                                      errno.EISDIR, errno.ENOTDIR, errno.ENOSPC)


def is_retryable(exc: BaseException) -> bool:
    """Dropped or refused connections and timeouts: reconnect and try again."""
    if is_permanent(exc):
        return False
    return isinstance(exc, (paramiko.SSHException, EOFError, ConnectionError, socket.timeout,
                            TimeoutError, OSError))


def plan_batches(jobs: list[DownloadJob], workers: int, expect_small: bool = False
                 ) -> list[list[DownloadJob]]:
    """The units of work: small files in batches of up to :data:`SMALL_BATCH`, shared evenly
    among ``workers``, then every other file alone (each job exactly once)."""
    small = [job for job in jobs if is_small(job, expect_small)]
    size = max(1, min(SMALL_BATCH, -(-len(small) // max(1, workers))))
    batches = [small[i:i + size] for i in range(0, len(small), size)]
    return batches + [[job] for job in jobs if not is_small(job, expect_small)]


class Connections:
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


class _JobBytes:
    """A job's byte counter over all its attempts (a resumed file counts each byte once); it
    also feeds the progress bar and stops the transfer at its next block when the run stops."""

    def __init__(self, pool: FetchPool, job: DownloadJob):
        self.pool, self.job, self.moved = pool, job, 0

    def __call__(self, n: int) -> None:
        self.moved += n
        self.pool.progress.update(n)
        if self.pool.stopping.is_set():
            raise DownloadInterrupted(f"{self.job.remote_path}: interrupted, .part file kept")


class FetchPool:
    """One run of :func:`fetch_all`: the connections, the shared progress bar, the fatal error
    that stops every worker, and the Ctrl-C flag."""

    def __init__(self, factory: SourceFactory, settings: DownloadSettings, progress: tqdm):
        self.settings = settings
        self.progress = progress
        self.connections = Connections(factory)
        self.fatal: list[Exception] = []
        self.stopping = threading.Event()

    def _before_retry(self, state: RetryCallState) -> None:
        self.connections.drop()
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s: %s; reconnecting (attempt %d of %d)", state.args[0].remote_path,
                    exc, state.attempt_number + 1, self.settings.retries + 1)

    def fetch_one(self, job: DownloadJob) -> DownloadResult:
        """One file with retries; every outcome is a result, a fatal one also stops the run."""
        if self.fatal or self.stopping.is_set():
            return DownloadResult(job, "failed", 0, 0, f"{job.remote_path}: not attempted")
        counter = _JobBytes(self, job)
        s = self.settings
        retrying = Retrying(
            retry=retry_if_exception(is_retryable), stop=stop_after_attempt(s.retries + 1),
            wait=wait_exponential(multiplier=s.backoff_s, max=s.backoff_max_s),
            before_sleep=self._before_retry, reraise=True)
        try:
            status = retrying(lambda j: fetch_file(self.connections.get(), j, s, counter)[0], job)
            return DownloadResult(job, status, counter.moved,
                                  retrying.statistics.get("attempt_number", 1))
        except Exception as exc:  # noqa: BLE001 - every error becomes this file's result
            return self._failed(job, exc, counter.moved,
                                retrying.statistics.get("attempt_number", 1))

    def _failed(self, job: DownloadJob, exc: Exception, moved: int, attempts: int
                ) -> DownloadResult:
        if isinstance(exc, FileNotFoundError):
            return DownloadResult(job, "missing", 0, error=f"{job.remote_path}: "
                                                           f"{exc.strerror or exc}")
        if isinstance(exc, (UnsafeNameError, SizeMismatchError)):
            return DownloadResult(job, "failed", 0, error=str(exc))
        if isinstance(exc, (SourceError, HostKeyError)):
            self.fatal.append(exc)
            return DownloadResult(job, "failed", 0, error=str(exc))
        if isinstance(exc, SourceUnreachable):  # retries used up without even a connection
            self.fatal.append(exc)
            return DownloadResult(job, "failed", moved, attempts, str(exc))
        if not is_retryable(exc):
            self.connections.drop()
        return DownloadResult(job, "failed", moved, attempts,
                              f"{job.remote_path}: {type(exc).__name__}: {exc}")

    def fetch_batch(self, batch: list[DownloadJob]) -> list[DownloadResult]:
        """A batch of small files in one go; any it does not complete, one by one."""
        done: dict[DownloadJob, tuple[str, int]] = {}
        if len(batch) > 1 and not (self.fatal or self.stopping.is_set()):
            try:
                done = fetch_small(self.connections.get(), batch, self.progress.update)
            except Exception as exc:  # noqa: BLE001 - the batch is only a shortcut: each of its
                # files not written yet is fetched again on its own, where errors are retried
                # and reported by name
                log.debug("batch of %d small files: %s; fetching them one by one", len(batch), exc)
                self.connections.drop()
        return [DownloadResult(job, *done[job]) if job in done else self.fetch_one(job)
                for job in batch]

    def run(self, jobs: list[DownloadJob], expect_small: bool) -> list[DownloadResult]:
        workers = min(self.settings.workers, len(jobs))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="download")
        try:
            by_job = {id(r.job): r for rs in pool.map(self.fetch_batch,
                                                      plan_batches(jobs, workers, expect_small))
                      for r in rs}
            results = [by_job[id(job)] for job in jobs]
        except KeyboardInterrupt:
            # Let the workers stop at their next block instead of finishing the whole manifest.
            self.stopping.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.connections.close_all()
        if self.fatal:
            raise self.fatal[0]
        return results


def fetch_all(jobs: list[DownloadJob], factory: SourceFactory, settings: DownloadSettings,
              description: str = "download", expect_small: bool = False) -> list[DownloadResult]:
    """Fetch ``jobs`` with ``settings.workers`` connections; one result per job, in order.

    Small files (by the job's size, or every job of unknown size with ``expect_small``) are
    asked for in batches per connection; any the batch does not complete go through
    :func:`~data_prep.remote.fetch.fetch_file` one by one. A missing remote file is reported
    as ``missing``; unsafe names and size mismatches as ``failed``, without retrying. A source
    that cannot be used at all (host key, authentication, configuration, or no connection
    after a file's retries) stops the run: the error is raised once all workers stop.
    """
    if not jobs:
        return []
    known = [j.size for j in jobs]
    total = sum(known) if all(s is not None for s in known) else None
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=description,
              disable=None) as progress:
        return FetchPool(factory, settings, progress).run(jobs, expect_small)
