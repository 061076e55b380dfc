"""The report every data-prep step returns: counts, where its outputs are, what failed.

Steps return a :class:`StepSummary` from ``run(cfg)``; their ``main`` calls :func:`run_step`,
which logs it and exits non-zero when anything failed, and ``python -m data_prep`` collects
one per step for the closing table. :func:`format_names` keeps a failure about many files
readable.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from data_prep.step_lock import StepLockedError
from data_prep.step_settings import check_step_settings
from gmn_base.settings import SettingError

SHOWN_NAMES = 10  # file names quoted per failure message; the log lists them all


@dataclass
class StepSummary:
    step: str
    counts: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def add_failure(self, message: str) -> None:
        self.failures.append(message)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def log(self, logger: logging.Logger) -> None:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts.items()) or "nothing to do"
        logger.info("%s: %s", self.step, counts)
        for what, where in self.outputs.items():
            logger.info("%s: %s -> %s", self.step, what, where)
        for message in self.failures:
            logger.error("%s failed: %s", self.step, message)
        if self.failures:
            logger.error("%s: %d failure(s); rerun the step after fixing them, "
                         "completed work is kept", self.step, len(self.failures))


def run_step(step: str, run: Callable[[DictConfig], StepSummary], cfg: DictConfig,
             logger: logging.Logger, user_errors: tuple[type[BaseException], ...] = ()) -> None:
    """What every step's ``main`` does: run it, log its summary, exit with its status.

    Exit 0 when everything succeeded, 1 when the summary has failures, 2 when a setting is
    out of range (:mod:`data_prep.step_settings`, checked first), another run of the step holds
    its folder (:class:`data_prep.step_lock.StepLockedError`), or ``run`` raised one of
    ``user_errors`` (a bad setting or a missing input, whose message names it: logged
    without a traceback), 130 on Ctrl-C (completed work is kept for the next run). In a
    multirun (``-m``) a job that succeeded returns instead, so the sweep's next job runs.
    """
    try:
        check_step_settings(cfg)
        summary = run(cfg)
    except (SettingError, StepLockedError, *user_errors) as exc:
        logger.error("%s: %s", step, exc)
        sys.exit(2)
    except KeyboardInterrupt:
        logger.error("%s interrupted: completed work is kept and the next run resumes", step)
        sys.exit(130)
    summary.log(logger)
    if summary.exit_code or not _in_multirun():
        sys.exit(summary.exit_code)


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def format_names(names: tuple[str, ...] | list[str]) -> str:
    """The first :data:`SHOWN_NAMES` of ``names``, and how many more."""
    shown = ", ".join(names[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return shown + (f" ... and {more} more" if more > 0 else "")
