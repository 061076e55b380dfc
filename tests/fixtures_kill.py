"""Lightning callbacks that stop a training job at a chosen point, for the resume tests: a
real kill -9 of its own process (no cleanup, no atexit, files as the kernel leaves them), or
a wait to be signalled by SLURM; at a point that does not depend on how fast the machine is.
Jobs load them from the command line (``+callbacks.kill._target_=fixtures_kill.KillAt
+callbacks.kill.epoch=2``) with ``tests/`` on ``PYTHONPATH``; callbacks are not part of the
settings fingerprint, so the rerun without them resumes."""

from __future__ import annotations

import os
import signal
import time

import pytorch_lightning as pl


class KillAt(pl.Callback):
    """SIGKILL this process when training batch ``batch`` of epoch ``epoch`` starts."""

    def __init__(self, epoch: int, batch: int = 0):
        self.epoch, self.batch = int(epoch), int(batch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)


class HoldUntilRequeued(pl.Callback):
    """On a SLURM job's first start, stop at the start of epoch ``epoch`` (after the previous
    epochs' checkpoints) and wait there to be signalled; write the SLURM job id to ``marker``
    first, so the test knows whom to signal. A requeued start (``SLURM_RESTART_COUNT`` >= 1)
    runs through."""

    def __init__(self, epoch: int, marker: str, timeout_s: float = 600):
        self.epoch, self.marker, self.timeout_s = int(epoch), marker, float(timeout_s)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch != self.epoch or os.environ.get("SLURM_RESTART_COUNT", "0") != "0":
            return
        with open(self.marker, "w") as fh:
            fh.write(os.environ.get("SLURM_JOB_ID", ""))
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:  # the signal handler ends this wait
            time.sleep(0.1)
        raise RuntimeError(f"not signalled within {self.timeout_s:.0f} s")
