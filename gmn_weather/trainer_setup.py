"""Lightning and W&B plumbing around one training job's Trainer.

Metric loggers from the ``logger`` config (with W&B's quirks handled), the run config
logged to them (a clear error when W&B cannot start), the checkpoint callback pointed at
the run folder, the Trainer itself, Lightning's known-harmless hints silenced, and one W&B
run per job: :func:`job_loggers` finishes it when the job ends, so the next multirun job
starts its own.

The Trainer writes checkpoints atomically (:class:`~gmn_weather.checkpoints.AtomicCheckpointIO`).
Inside a SLURM job, requeueing belongs to submitit (``USR2``, then a rerun that resumes from
``last.ckpt``); Lightning's own auto-requeue (``USR1``: an ``hpc_ckpt_*.ckpt`` and a requeue
behind submitit's back, which the next start would load in place of ``last.ckpt``) is off.
Lightning's ``SIGTERM`` handling stays: the job stops at the next batch, and its last
finished epoch is in ``last.ckpt``.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pytorch_lightning as pl
from hydra.utils import instantiate
from lightning_fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf

from gmn_weather.checkpoints import AtomicCheckpointIO
from gmn_weather.experiment import RunDir
from gmn_weather.hydra_config import loggable_config
from gmn_weather.metric_logs import RunCSVLogger

log = logging.getLogger(__name__)


class LoggerSetupError(RuntimeError):
    """A metric logger could not start (e.g. W&B without a key)."""


# Lightning hints that do not apply here (small CPU data sets, optional cloud packages).
_HARMLESS_WARNINGS = (
    r".*does not have many workers.*",
    r".*The number of training batches .* is smaller than the logging interval.*",
    r".*litlogger.*",
    r".*litmodels.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
)
_HARMLESS_INFO = ("litlogger", "litmodels")
# Lightning's hint to start with `srun` when SLURM is installed: it matters only inside a SLURM
# allocation (where it stays); outside one, `srun` on the PATH means nothing for this run.
_SRUN_HINT = r".*The `srun` command is available on your system but is not used.*"


def _not_a_sales_tip(record: logging.LogRecord) -> bool:
    return not any(word in str(record.msg) for word in _HARMLESS_INFO)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's known-harmless hints for the duration of one job."""
    lightning_log = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    lightning_log.addFilter(_not_a_sales_tip)
    try:
        with warnings.catch_warnings():
            for pattern in _HARMLESS_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            if "SLURM_JOB_ID" not in os.environ:
                warnings.filterwarnings("ignore", message=_SRUN_HINT)
            yield
    finally:
        lightning_log.removeFilter(_not_a_sales_tip)


def _is_wandb(logger) -> bool:
    return type(logger).__name__ == "WandbLogger"


def build_loggers(cfg: DictConfig) -> list:
    loggers = [instantiate(spec) for spec in (cfg.get("logger") or {}).values()
               if spec is not None and "_target_" in spec]
    for logger in loggers:
        # Lightning always passes wandb.init(anonymous=None), which recent wandb answers with a
        # deprecation warning on every run; the setting has no effect, so it is dropped.
        init_kwargs = getattr(logger, "_wandb_init", None)
        if isinstance(init_kwargs, dict) and init_kwargs.get("anonymous") is None:
            init_kwargs.pop("anonymous", None)
    return loggers


def log_config(loggers: list, config: dict) -> None:
    """The run config (secret-free) to every logger; W&B's run starts here."""
    for logger in loggers:
        if not _is_wandb(logger):
            logger.log_hyperparams(config)
            continue
        import wandb

        try:
            logger.log_hyperparams(config)
        except wandb.errors.UsageError as exc:
            raise LoggerSetupError(
                f"W&B could not start ({exc}). Log in with `wandb login` or WANDB_API_KEY, "
                "or run offline with WANDB_MODE=offline (sync later with `wandb sync`), "
                "or use logger=csv"
            ) from exc


def finish_runs(loggers: list) -> None:
    """One W&B run per job: close it so the next multirun job starts a new one."""
    if any(_is_wandb(logger) for logger in loggers):
        import wandb

        wandb.finish()


@contextmanager
def job_loggers(cfg: DictConfig, continue_after_epochs: int | None = None) -> Iterator[list]:
    """The job's loggers with its config logged; W&B's run is finished however the job ends.

    ``continue_after_epochs``: the job resumes after that many epochs, so the run folder's
    metric table keeps their rows (None: it starts over).
    """
    loggers = build_loggers(cfg)
    for logger in loggers:
        if isinstance(logger, RunCSVLogger):
            logger.continue_after(continue_after_epochs)
    try:
        log_config(loggers, loggable_config(cfg))
        yield loggers
    finally:
        finish_runs(loggers)


def build_callbacks(cfg: DictConfig, run: RunDir, monitor_best: bool = False) -> list:
    """The configured callbacks except ``oof`` (the fold job adds that one itself).

    The checkpoint callback writes into the run folder; ``monitor_best`` makes it keep the
    best ``val/loss`` epoch when it monitors nothing else (``callbacks.oof.weights=best``).
    """
    specs = OmegaConf.to_container(cfg.get("callbacks") or {}, resolve=True)
    specs.pop("oof", None)
    callbacks = []
    checkpoint = specs.pop("model_checkpoint", None)
    if checkpoint is not None:
        checkpoint["dirpath"] = str(run.checkpoints_dir)
        if monitor_best and not checkpoint.get("monitor"):
            checkpoint.update(monitor="val/loss", mode="min", save_top_k=1,
                              filename="best-epoch{epoch:02d}", save_last=True)
        callbacks.append(instantiate(checkpoint))
    for spec in specs.values():
        if spec and "_target_" in spec:
            callbacks.append(instantiate(spec))
    return callbacks


def trainer_plugins() -> list:
    """Atomic checkpoints; inside SLURM, Lightning's auto-requeue off (module docstring)."""
    plugins: list = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return plugins


def build_trainer(cfg: DictConfig, run: RunDir, loggers: list, callbacks: list,
                  **overrides) -> pl.Trainer:
    return instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks,
                       default_root_dir=str(run.path), plugins=trainer_plugins(), **overrides)
