"""Training jobs on several devices (``trainer=ddp``): which process is rank zero, and one
set of ranks per job.

On one node Lightning's DDP launcher starts ranks 1.. by running the script's command line
again (with ``hydra.run.dir`` set to the job's folder). In a Hydra multirun that command line
is the whole sweep (``-m fold=0,1,2``): every rank would start a sweep of its own; in a
``mode=cv`` job it would train every fold. :func:`ddp_job` makes the command line the
training job's own for as long as it runs (its config options, its own overrides, no ``-m``,
and its ``mode`` and ``fold``) and afterwards removes what the launcher left in
this process (the process group and the ``MASTER_*``/``*_RANK``/``WORLD_SIZE`` variables), so
the next job of a sequential multirun starts ranks of its own. Under SLURM (one task per
device, ``hydra.launcher.tasks_per_node``) or ``torchrun`` the ranks are started from outside
and nothing is rerun.

Only rank zero claims the run folder, writes files and pools (:func:`job_rank`); every rank
decides alike whether to skip or resume, from the same files.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from pytorch_lightning.utilities.rank_zero import rank_zero_only

# Set in this process by Lightning's launcher when it starts the other ranks.
_LAUNCHER_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# Hydra options that take a value and must reach the other ranks: where the config lives.
_CONFIG_OPTIONS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")


def job_rank() -> int:
    """This process's global rank, from the environment its launcher set (0 when alone)."""
    return int(getattr(rank_zero_only, "rank", 0) or 0)


def job_command_line(arguments: Sequence[str], job_overrides: Sequence[str],
                     pinned: Mapping[str, object] | None = None) -> list[str]:
    """The arguments that run this one job: the config options of ``arguments`` (a sweep's
    command line, without the script), the job's own overrides without ``--multirun``, and
    ``pinned`` keys (``mode``, ``fold``) set to their values in place of any override of them."""
    pinned = dict(pinned or {})
    kept: list[str] = []
    take_value = False
    for argument in arguments:
        if take_value:
            kept.append(argument)
            take_value = False
        elif argument.split("=", 1)[0] in _CONFIG_OPTIONS:
            kept.append(argument)
            take_value = "=" not in argument
    own = [o for o in job_overrides if o.split("=", 1)[0].lstrip("+~") not in pinned]
    return kept + own + [f"{key}={value}" for key, value in pinned.items()]


@contextmanager
def ddp_job(mode: str, fold: int | None) -> Iterator[None]:
    """Around a training job's ``fit`` and ``predict``: see the module docstring."""
    saved_argv = sys.argv[:]
    saved_env = {name: os.environ.get(name) for name in _LAUNCHER_VARIABLES}
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        task = list(HydraConfig.get().overrides.task)
        pinned = {"mode": mode} if fold is None else {"mode": mode, "fold": fold}
        sys.argv = [sys.argv[0], *job_command_line(sys.argv[1:], task, pinned)]
    try:
        yield
    finally:
        sys.argv = saved_argv
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
