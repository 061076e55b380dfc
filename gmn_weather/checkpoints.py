"""Checkpoints a job can resume from: written atomically, stamped with the job's settings.

Lightning's own checkpoint writer saves through an fsspec transaction whose temporary file
lives in the system's temp folder; where that is another file system than the run folder (a
tmpfs ``/tmp``, a cluster's scratch) the final step is a copy onto ``last.ckpt``, and a job
killed during it leaves a truncated ``last.ckpt``. :class:`AtomicCheckpointIO` writes every
checkpoint to a temporary beside its target and renames it (:mod:`gmn_base.atomic`), so a
kill at any moment leaves the previous checkpoint or the new one.

:class:`SettingsStamp` puts the job's settings fingerprint into each checkpoint, with the
random number generators' states: a job resumed from it draws the same shuffles and
augmentations as one that never stopped, so on CPU its out-of-fold predictions are the
same. :func:`plan_resume` decides where a job starts: ``ckpt_path=`` when given; else the
run folder's ``last.ckpt`` when it carries this job's fingerprint (``resume=true``, the
default); else from scratch.
"""

from __future__ import annotations

import logging
import pickle
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from gmn_base.atomic import atomic_path
from gmn_weather.experiment import ExperimentError, RunDir

log = logging.getLogger(__name__)

STAMP_KEY = "gmn_weather"


class ResumeError(ExperimentError):
    """A checkpoint to resume from cannot be used; the message says what to do."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written to a temporary beside the target, then renamed."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


def rng_states() -> dict[str, Any]:
    """torch's, numpy's and Python's generator states as tensors and plain numbers (so the
    checkpoint stays loadable with ``weights_only=True``)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    states = {"torch": torch.get_rng_state(),
              "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "gauss": float(gauss)},
              "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64),
                         "gauss_next": gauss_next}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Mapping[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    numpy_state = states["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"], numpy_state["gauss"]))
    python_state = states["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"].tolist()),
                     python_state["gauss_next"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class SettingsStamp(pl.Callback):
    """Stamps checkpoints with the job's fingerprint and RNG states; restores the states."""

    def __init__(self, fingerprint: str):
        self.fingerprint = fingerprint

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint[STAMP_KEY] = {"fingerprint": self.fingerprint, "rng": rng_states()}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        stamp = checkpoint.get(STAMP_KEY) or {}
        if stamp.get("rng") is not None:
            set_rng_states(stamp["rng"])


@dataclass(frozen=True)
class ResumePlan:
    """Where a job starts: ``ckpt_path`` (None: from scratch) after ``epochs_done`` epochs."""

    ckpt_path: str | None = None
    epochs_done: int = 0
    note: str = ""  # why, for the log

    @property
    def resuming(self) -> bool:
        return self.ckpt_path is not None

    @property
    def resumed_after_epochs(self) -> int | None:
        """The epochs done before this job, when it resumes (None: from scratch)."""
        return self.epochs_done if self.resuming else None


@dataclass(frozen=True)
class CheckpointStamp:
    fingerprint: str | None  # None: not written by this project's training
    epochs_done: int


def read_stamp(path: Path) -> CheckpointStamp:
    """The fingerprint and finished epochs recorded in a checkpoint; ResumeError if unreadable."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except FileNotFoundError:
        raise
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError) as exc:
        raise ResumeError(
            f"cannot resume from {path}: not a readable checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Delete it, or set resume=false "
            "to start this run over (ckpt_path= names another checkpoint)") from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ResumeError(f"cannot resume from {path}: not a Lightning checkpoint")
    # "processed": epochs whose training and validation ran (an end-of-epoch checkpoint is
    # saved before Lightning counts its epoch "completed").
    progress = (checkpoint.get("loops") or {}).get("fit_loop", {}).get("epoch_progress", {})
    done = progress.get("current", {}).get("processed", checkpoint.get("epoch", 0))
    stamp = checkpoint.get(STAMP_KEY) or {}
    return CheckpointStamp(stamp.get("fingerprint"), int(done))


def plan_resume(run: RunDir, fingerprint: str, resume: bool = True,
                ckpt_path: str | None = None, no_resume_reason: str = "resume=false") -> ResumePlan:
    """Where this job starts (see the module docstring); logs what it decided and why.
    ``no_resume_reason`` names the setting that turned ``resume`` off, for the log."""
    if ckpt_path:
        path = Path(ckpt_path)
        if not path.is_file():
            raise ResumeError(f"ckpt_path={ckpt_path}: no such file")
        stamp = read_stamp(path)
        if stamp.fingerprint != fingerprint:
            log.warning("ckpt_path=%s was written under %s; this run's settings fingerprint "
                        "is %s. Its weights, optimizer and epoch count are taken as they are",
                        path, f"fingerprint {stamp.fingerprint}" if stamp.fingerprint
                        else "no recorded settings", fingerprint)
        return ResumePlan(str(path), stamp.epochs_done, f"ckpt_path={path}")
    last = run.last_ckpt
    if not last.is_file():
        return ResumePlan(note="no checkpoint")
    if not resume:
        log.info("%s: starting %s over; %s is removed", no_resume_reason, run.name, last)
        return ResumePlan(note=no_resume_reason)
    try:
        stamp = read_stamp(last)
    except FileNotFoundError:  # rank zero removed it (starting over) as this rank looked
        return ResumePlan(note="no checkpoint")
    if stamp.fingerprint != fingerprint:
        log.warning("%s was written under other settings (fingerprint %s, this run %s): "
                    "starting %s over, the checkpoint is removed", last,
                    stamp.fingerprint, fingerprint, run.name)
        return ResumePlan(note=f"{last.name} of other settings")
    return ResumePlan(str(last), stamp.epochs_done, f"{run.name}/{last.relative_to(run.path)}")
