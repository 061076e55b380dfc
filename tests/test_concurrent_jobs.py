"""Fold jobs beside each other in one experiment folder, as real ``train.py`` processes.

A job is paused (SIGSTOP) at the moment it holds the lock of interest, so the other job
certainly starts while it is mid-run whatever the machine's speed, then resumed (SIGCONT):

- two configurations racing for one name: while a job trains fold 0, jobs of other settings
  (for fold 0 or fold 1) are refused before they write anything, and a second job of the same
  settings for fold 0 is refused too; the first finishes untouched;
- a fold job starting while another pools: its start-up leaves the pooling job's live
  temporaries alone, it trains while the pool is being written, waits for the pooling lock,
  and pools the set again after the first has finished; both succeed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from fixtures_train import PYTHON, REPO, compose_train, make_dataset, tiny_overrides

from gmn_base.atomic import remove_stale_temporaries
from gmn_base.locks import read_holder
from gmn_base.process_identity import host_token
from gmn_weather.training import train

EXPERIMENT = "tiny_test_resnet_light"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


def _start(*overrides: str) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "train.py", *overrides], cwd=REPO, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def _holds(lock: Path, proc: subprocess.Popen) -> bool:
    holder = read_holder(lock)
    return holder is not None and holder.pid == proc.pid


def _pause_when_holding(lock: Path, proc: subprocess.Popen, not_holding: Path | None = None) -> None:
    """SIGSTOP ``proc`` as soon as it holds ``lock`` (and no longer holds ``not_holding``)."""
    deadline = time.monotonic() + 300
    while not _holds(lock, proc) or (not_holding is not None and _holds(not_holding, proc)):
        assert proc.poll() is None, _finish(proc)[1][-3000:]
        assert time.monotonic() < deadline, f"{lock} never taken"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGSTOP)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_a_second_configuration_or_a_second_job_for_a_fold_is_refused(tmp_path):
    make_dataset(tmp_path / "data")
    base = tiny_overrides(tmp_path / "data", tmp_path / "out")
    experiment = tmp_path / "out" / EXPERIMENT
    # Other settings land in another experiment by default (the name carries the overrides);
    # here every job names the same experiment, as a sweep given name= does.
    base = [*base, f"name={EXPERIMENT}"]
    first = _start("fold=0", *base)
    try:
        # Claimed, and out of the moment of claiming (the experiment's claims lock).
        _pause_when_holding(experiment / "fold_0" / ".claim.lock", first,
                            not_holding=experiment / ".claims.lock")
        before = _snapshot(experiment)
        others = {"fold0_seed7": _start("fold=0", "seed=7", *base),
                  "fold1_seed7": _start("fold=1", "seed=7", *base),
                  "fold0_same": _start("fold=0", *base)}
        results = {name: _finish(proc) for name, proc in others.items()}
        after = _snapshot(experiment)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    code, log = _finish(first)
    assert code == 0, log[-3000:]

    holder = f"pid {first.pid} on {host_token()}"
    for name in ("fold0_seed7", "fold1_seed7"):
        code, log = results[name]
        assert code == 1, log[-3000:]
        assert (f"already holds fold_0 being trained by {holder}" in log
                and "under a different configuration (seed: 42 vs 7)" in log
                and "name=<new experiment name>" in log), log[-3000:]
    code, log = results["fold0_same"]
    assert code == 1 and f"fold_0 is being trained now by {holder}" in log, log[-3000:]
    assert "under these settings" in log and ".claim.lock" in log
    assert after == before  # the refused jobs wrote nothing (Hydra's record and log included)
    assert not [p for p in (experiment / "fold_1").rglob("*") if p.is_file()]

    record = json.loads((experiment / "fold_0" / "oof_predictions.json").read_text())
    assert record["settings"]["seed"] == 42
    # Once it has finished, its fold still refuses other settings.
    from gmn_weather.experiment import ExperimentError

    with pytest.raises(ExperimentError, match="already holds fold_0 trained under a different "
                                              "configuration \\(seed: 42 vs 7\\)"):
        train(compose_train("fold=1", "seed=7", *base))


@pytest.mark.slow
def test_a_fold_job_starting_while_another_pools(tmp_path):
    make_dataset(tmp_path / "data")
    base = tiny_overrides(tmp_path / "data", tmp_path / "out")
    experiment = tmp_path / "out" / EXPERIMENT
    for k in (0, 1):
        train(compose_train(f"fold={k}", *base))

    pooling = _start("fold=2", *base)
    try:
        _pause_when_holding(experiment / ".pooling.lock", pooling)
        # Temporaries the paused pooling job is writing: alive, so nobody may remove them.
        live = [folder / f".{name}.{pooling.pid}@{host_token()}.0123abcd.tmp"
                for folder, name in ((experiment, "oof_predictions.csv"),
                                     (experiment / "fold_2", "oof_predictions.csv"))]
        for path in live:
            path.write_text("being written")
        rerun = _start("fold=0", "retrain=true", *base)
        log_file = experiment / "fold_0" / "train.log"
        deadline = time.monotonic() + 600
        while "pooling: waiting for" not in (log_file.read_text() if log_file.exists() else ""):
            assert rerun.poll() is None, _finish(rerun)[1][-3000:]
            assert time.monotonic() < deadline, "the rerun never reached the pooling lock"
            time.sleep(0.05)
        # The rerun started, claimed, cleaned up and trained fold 0 while fold 2 was pooling.
        assert all(path.exists() for path in live)
        assert f"waiting for pid {pooling.pid} on {host_token()}" in log_file.read_text()
    finally:
        os.kill(pooling.pid, signal.SIGCONT)
    code, log = _finish(pooling)
    assert code == 0 and "operating point: threshold" in log, log[-3000:]
    code, log = _finish(rerun)
    assert code == 0 and "operating point: threshold" in log, log[-3000:]  # pooled again

    # The pooled table is the three fold files as they are now (fold 0 retrained last).
    import pandas as pd

    pooled = pd.read_csv(experiment / "oof_predictions.csv")
    folds = pd.concat([pd.read_csv(experiment / f"fold_{k}" / "oof_predictions.csv")
                       for k in range(3)]).sort_values(["fold", "image_filename"])
    pd.testing.assert_frame_equal(pooled, folds.reset_index(drop=True), check_exact=True)
    # The pooling job is gone now: its leftovers go at the next start-up.
    assert sum(remove_stale_temporaries(path.parent) for path in live) == 2
