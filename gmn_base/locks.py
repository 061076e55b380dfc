"""An exclusive lock on a path, held by one process at a time, that says who holds it.

A lock is a file (say ``fold_0/.claim.lock``) locked with ``flock``; while held it contains
the holder's :class:`LockRecord` as JSON: pid, host, start time, the SLURM job if any, and a
note from the caller (e.g. a settings fingerprint). A contender that finds the lock busy gets
that record, so it can refuse with a message that names the holder, or wait.

Why ``flock`` rather than creating the file with ``O_EXCL``: the kernel releases a flock when
its holder dies, however it dies (SIGKILL, OOM, a SLURM preemption), so a dead holder's lock
is taken over at once and exactly once, with no guessing from pids (which are reused) and no
race between two contenders removing the same stale file. A lock file a dead holder left
behind still holds its record; the next holder reports it (:attr:`FileLock.took_over`) and
overwrites it. The holder removes the file on release; a contender that had opened the file
before that notices (the path no longer names its file) and tries again.

File systems: correct on local disks, on NFSv4 and on NFSv3 with lockd (Linux maps flock to
NFS byte-range locks there), and on Lustre mounted with ``-o flock``. Where locks are not
supported the acquire fails with :class:`LockError` naming the path. A Lustre ``localflock``
or an NFS ``nolock``/``local_lock`` mount locks per node only: jobs on different nodes are
then not kept apart. NFS locks belong to a process, not to an open file: there a process
must not open a lock file it holds a second time (closing it would drop the lock; the holder
reads its own record from :attr:`FileLock.record`, never with :func:`read_holder`), and two
:class:`FileLock` objects of one process do not exclude each other (on local disks they do).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import final

from gmn_base.process_identity import host_token

log = logging.getLogger(__name__)

_RECORD_MAX_BYTES = 64 * 1024
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class LockError(RuntimeError):
    """The lock cannot be used at all (file system without locks, no permission)."""


class LockTimeout(LockError):
    """:meth:`FileLock.acquire` ran out of time; ``holder`` is who still holds the lock."""

    def __init__(self, path: Path, holder: LockRecord, waited_s: float):
        super().__init__(f"{path} is held by {holder.describe()}; gave up after {waited_s:.0f} s")
        self.path, self.holder, self.waited_s = path, holder, waited_s


@dataclass(frozen=True)
class LockRecord:
    """Who holds (or held) a lock."""

    pid: int
    host: str
    started_utc: str  # when the lock was taken, ISO 8601
    note: str = ""
    slurm_job: str | None = None  # SLURM_JOB_ID, plus ".rN" after N requeues

    @classmethod
    def for_this_process(cls, note: str = "") -> LockRecord:
        job = os.environ.get("SLURM_JOB_ID")
        restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
        if job and restarts not in ("", "0"):
            job = f"{job}.r{restarts}"
        return cls(os.getpid(), host_token(),
                   datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), note, job)

    @classmethod
    def from_json(cls, text: str) -> LockRecord | None:
        """The record in a lock file's text; None when empty or not a record (being written)."""
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["started_utc"]),
                       str(data.get("note", "")), data.get("slurm_job"))
        except (ValueError, TypeError, KeyError):
            return None

    def to_json(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    def describe(self) -> str:
        """One line for messages: ``pid 123 on node7 (SLURM job 456) since ... [note]``."""
        text = f"pid {self.pid} on {self.host}" if self.pid > 0 else "an unknown holder"
        if self.slurm_job:
            text += f" (SLURM job {self.slurm_job})"
        if self.started_utc:
            text += f" since {self.started_utc}"
        return text + (f" [{self.note}]" if self.note else "")


# What a contender reports when the holder has not written its record yet (a few microseconds
# after it took the lock) or the file holds something else.
UNKNOWN_HOLDER = LockRecord(pid=0, host="", started_utc="")


def read_holder(path: str | Path) -> LockRecord | None:
    """The record in lock file ``path`` without locking it: the holder while it is held, the
    last holder if that one died; None when there is no lock file or no readable record."""
    try:
        with open(path, "rb") as fh:  # a contender's own descriptor; never the holder's
            return LockRecord.from_json(fh.read(_RECORD_MAX_BYTES).decode("utf-8", "replace"))
    except FileNotFoundError:
        return None


def held_by(path: str | Path) -> LockRecord | None:
    """The holder of the lock at ``path`` while someone holds it; None when nobody does (no
    file, or one its holder left when it died). Takes nothing and removes nothing: a probe for
    a contender that only needs to know (e.g. which configuration a running job trains)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    try:
        try:
            # A shared lock is refused only while an exclusive holder exists.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_fd(fd) or UNKNOWN_HOLDER
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                raise LockError(f"{path}: this file system does not support locks "
                                f"({exc.strerror})") from exc
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@final
class FileLock:
    """An exclusive lock on ``path`` (created if missing, removed on release).

    ``note`` is stored in the record for contenders to read. Not reentrant: a second
    :class:`FileLock` on the same path in the same process is a contender like any other.
    Use as a context manager (``with FileLock(p, note=fp).acquire(timeout=60): ...``) or call
    :meth:`try_acquire` / :meth:`acquire` and :meth:`release`.
    """

    def __init__(self, path: str | Path, note: str = ""):
        self.path = Path(path)
        self.note = note
        self.record: LockRecord | None = None  # ours, while held
        self.took_over: LockRecord | None = None  # left by a holder that died holding it
        self._fd: int | None = None
        self._owner_pid: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None and self._owner_pid == os.getpid()

    def try_acquire(self) -> LockRecord | None:
        """Take the lock if it is free and return None; if it is busy, return the holder's
        record (:data:`UNKNOWN_HOLDER` while that one is still being written)."""
        if self.held:
            raise LockError(f"{self.path}: already held by this FileLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd, writable = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_fd(fd)
                os.close(fd)
                return holder or UNKNOWN_HOLDER
            except OSError as exc:
                os.close(fd)
                if exc.errno in _UNSUPPORTED:
                    raise LockError(f"{self.path}: this file system does not support locks "
                                    f"({exc.strerror}); put the folder on a local disk or an "
                                    "NFS/Lustre mount with locking enabled") from exc
                raise
            if not _names_same_file(fd, self.path):
                os.close(fd)  # the holder released (and removed) it meanwhile: start again
                continue
            if not writable:
                self._remove_leftover(fd)  # another user's, and its holder is gone
                continue
            self._claim(fd)
            return None

    def acquire(self, timeout: float | None = None, poll_s: float = 0.2) -> FileLock:
        """Wait for the lock (``timeout`` None: for ever); :class:`LockTimeout` when time runs
        out. Returns the lock itself, so ``with lock.acquire(timeout=10):`` works."""
        started = time.monotonic()
        while (holder := self.try_acquire()) is not None:
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise LockTimeout(self.path, holder, waited)
            time.sleep(poll_s if timeout is None else max(0.0, min(poll_s, timeout - waited)))
        return self

    def release(self) -> None:
        """Remove the lock file and unlock. Does nothing if not held by this process (a
        forked child's copy of a held lock never releases its parent's lock)."""
        if not self.held:
            return
        fd, self._fd, self.record = self._fd, None, None
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # while still locked: no contender can be inside
        finally:
            os.close(fd)  # drops the flock

    def __enter__(self) -> FileLock:
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def _open(self) -> tuple[int, bool]:
        """A descriptor on the lock file (created if missing) and whether we may write it."""
        flags = os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
        try:
            return os.open(self.path, os.O_RDWR | flags, 0o666), True  # 0666 less the umask
        except PermissionError:
            # Another user's lock file: it can still be tested, and replaced if its holder died.
            try:
                return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC), False
            except OSError as exc:
                raise LockError(f"{self.path}: cannot open the lock file ({exc.strerror})") from exc

    def _remove_leftover(self, fd: int) -> None:
        try:
            os.unlink(self.path)  # under its flock: nobody else is judging it now
        except FileNotFoundError:
            pass
        except PermissionError as exc:
            raise LockError(f"{self.path}: left by {(_read_fd(fd) or UNKNOWN_HOLDER).describe()}, "
                            "which has ended, but this user may not replace it; remove it "
                            "or make the folder group-writable") from exc
        finally:
            os.close(fd)

    def _claim(self, fd: int) -> None:
        """We hold the flock on the file ``path`` names: replace its content with our record."""
        previous = _read_fd(fd)
        record = LockRecord.for_this_process(self.note)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.to_json().encode(), 0)  # no fsync: a lock dies with its host
        except OSError:
            os.close(fd)
            raise
        if previous is not None:
            log.warning("%s: took over the lock from %s, which ended without releasing it",
                        self.path, previous.describe())
        self._fd, self._owner_pid = fd, os.getpid()
        self.record, self.took_over = record, previous


def _read_fd(fd: int) -> LockRecord | None:
    return LockRecord.from_json(os.pread(fd, _RECORD_MAX_BYTES, 0).decode("utf-8", "replace"))


def _names_same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)
