"""One run of a step per output folder: a second ``extract`` (``night_to_day``, ``download``,
``find``) on the same data refuses at once and names the lock and the run holding it.

Each of those steps decides what to do from what is on disk (which images, parts or manifest
rows exist) and then writes for minutes; two runs side by side would both decide to write the
same files, one would resume a ``.part`` the other is still appending to, and their manifests
would overwrite each other's rows. The lock (:class:`gmn_base.locks.FileLock`, released by the
kernel however its holder ends) is a hidden file in the folder the step writes; a run that is
refused has changed nothing, so it can simply be started again once the other has finished.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gmn_base.locks import FileLock


class StepLockedError(RuntimeError):
    """Another run of the step holds the folder; the message names the lock and the holder."""


def step_lock_path(step: str, folder: Path) -> Path:
    return Path(folder) / f".{step}.lock"


@contextmanager
def step_lock(step: str, folder: Path) -> Iterator[FileLock]:
    """Hold ``{folder}/.{step}.lock`` for the block; :class:`StepLockedError` when another
    run of the step holds it."""
    lock = FileLock(step_lock_path(step, folder), note=f"python -m data_prep.{step}")
    holder = lock.try_acquire()
    if holder is not None:
        raise StepLockedError(
            f"another {step} run is writing to {folder}: {holder.describe()} holds "
            f"{lock.path}. This run changed nothing; start it again when that one has "
            "finished (it skips what that run completed)")
    try:
        yield lock
    finally:
        lock.release()
