"""Jobs beside each other in one experiment folder: who may write where, and when.

Three locks (:class:`gmn_base.locks.FileLock`, released by the kernel however a holder dies;
their paths come from :mod:`gmn_weather.experiment`):

- a run folder's **claim** (``fold_k/.claim.lock``, ``final/.claim.lock``), held by the job
  training into it for as long as it runs, its note the job's settings fingerprint;
- the experiment's **claims lock** (``.claims.lock``), held for the moment a job checks the
  folder and takes its claim, and while ``splits.csv`` is made: of two jobs starting together
  one claims first and the other sees that claim;
- the experiment's **pooling lock** (``.pooling.lock``), held while a fold job writes its
  out-of-fold predictions and pools when its fold completed the set, and while ``analyze.py``
  pools: the set is completed, and pooled, by exactly one job.

:func:`claim_run` refuses, before the job writes anything, a job with other settings under
the same name (:meth:`~gmn_weather.experiment.ExperimentDir.check_accepts`) and a second job
for a folder another job is training now (same settings too: the running one's result is
kept; waiting for it would hold a second allocation for nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from gmn_base.locks import FileLock, LockTimeout
from gmn_weather.experiment import ExperimentDir, ExperimentError, RunDir, RunInfo

log = logging.getLogger(__name__)

# How long a job waits for the claims or pooling lock: both are held for seconds (pooling a
# large experiment, with its report, for a few minutes at most).
LOCK_WAIT_S = 1800.0


@contextmanager
def holding(path: Path, what: str, note: str = "", wait_s: float = LOCK_WAIT_S) -> Iterator[FileLock]:
    """Hold the lock at ``path`` for the block; say so when another job has it first."""
    lock = FileLock(path, note=note)
    holder = lock.try_acquire()
    if holder is not None:
        log.info("%s: waiting for %s to release %s", what, holder.describe(), path)
        try:
            lock.acquire(timeout=wait_s)
        except LockTimeout as exc:
            raise ExperimentError(
                f"{what}: the lock {path} is still held by {exc.holder.describe()} after "
                f"{exc.waited_s:.0f} s. If that job hangs, stop it (its lock goes with it)") from None
    try:
        yield lock
    finally:
        lock.release()


def claims(experiment: ExperimentDir) -> AbstractContextManager[FileLock]:
    """The experiment's claims lock, for a ``with`` block (also guards ``splits.csv``)."""
    return holding(experiment.claims_lock, f"{experiment.name}: claims")


def pooling(experiment: ExperimentDir) -> AbstractContextManager[FileLock]:
    """The experiment's pooling lock, for a ``with`` block."""
    return holding(experiment.pooling_lock, f"{experiment.name}: pooling", note="pooling")


def claim_run(experiment: ExperimentDir, run: RunDir, start: RunInfo,
              one_configuration: bool) -> FileLock:
    """Claim ``run`` for this job and return the held claim (release it when the job ends).

    ``start`` is the job's run record (fingerprint, settings). ``one_configuration``: refuse
    settings that differ from the experiment's other folds (fold jobs; the final model may be
    trained under other settings). The record is written to ``run_info.json`` while the
    claims lock is held, so a contender that sees the claim can also say how settings differ.
    """
    fingerprint, settings = start.fingerprint, start.settings
    with claims(experiment):
        if one_configuration:
            experiment.check_accepts(fingerprint, settings)
        holder = run.claim_holder()
        if holder is not None:
            raise ExperimentError(
                f"{run.path} is being trained now by {holder.describe()}, under "
                f"{'these' if holder.note == fingerprint else 'other'} settings (lock "
                f"{run.claim_lock}); this job stops and changes nothing. Let that job finish "
                "(a rerun then skips the finished fold) or stop it first (a rerun resumes it)")
        run.path.mkdir(parents=True, exist_ok=True)
        claim = FileLock(run.claim_lock, note=fingerprint)
        holder = claim.try_acquire()
        if holder is not None:  # a job that does not take the claims lock (an older version)
            raise ExperimentError(f"{run.path} is being trained now by {holder.describe()} "
                                  f"(lock {run.claim_lock}); this job stops and changes nothing")
        try:
            run.write_run_info(start)
        except BaseException:
            claim.release()
            raise
    return claim
