"""``mode=cv``: one job trains every fold of an experiment in turn and pools them.

What a sweeper needs: one job per configuration that ends with the pooled metric
(``hparams_search=optuna`` runs one per trial). Each fold is trained by the ordinary fold job
(its own ``fold_{k}/`` folder, W&B run and OOF file), so a ``mode=cv`` experiment is
indistinguishable from one trained with ``-m fold=0,1,2``. A fold that already finished
under the same settings is kept, not retrained: a rerun after an interruption, or a trial
that repeats an earlier one, picks up where it stopped. The job's own Hydra log goes to
``cv/`` in the experiment folder.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from gmn_weather.decision_files import pool_folds, pooling_rule
from gmn_weather.experiment import ExperimentDir
from gmn_weather.fingerprint import fingerprint, training_settings
from gmn_weather.pooling import PooledResult

log = logging.getLogger(__name__)


def fold_config(cfg: DictConfig, fold: int) -> DictConfig:
    """The configuration of fold ``fold``'s job within a ``mode=cv`` job."""
    fold_cfg = copy.deepcopy(cfg)
    OmegaConf.update(fold_cfg, "mode", "fold")
    OmegaConf.update(fold_cfg, "fold", int(fold))
    return fold_cfg


def finished_here(experiment: ExperimentDir, n_folds: int, fingerprint_: str) -> list[int]:
    """Folds whose OOF predictions exist and were made under these settings."""
    infos, _ = experiment.finished_folds(n_folds)
    return sorted(k for k, info in infos.items() if info.fingerprint == fingerprint_)


def train_cv(cfg: DictConfig, fold_job: Callable[[DictConfig], Any]) -> PooledResult:
    """Train every fold not yet finished under these settings with ``fold_job`` (the fold
    job, :func:`gmn_weather.training.train_fold`), then return the pooled result."""
    n_folds = int(cfg.data.n_folds)
    experiment = ExperimentDir.of(cfg.paths.output_root, cfg.name)
    done = finished_here(experiment, n_folds, fingerprint(training_settings(cfg)))
    if done:
        log.info("cv: fold(s) %s already finished under these settings in %s; kept",
                 ", ".join(map(str, done)), experiment.path)
    pooled = None
    for k in range(n_folds):
        if k in done:
            continue
        log.info("cv: fold %d of %d", k, n_folds)
        pooled = fold_job(fold_config(cfg, k)).pooled or pooled
    if pooled is None:
        # Every fold was already there (or the last one trained is not the last to finish).
        pooled = pool_folds(experiment, **pooling_rule(cfg.analyze))
        log.info("all folds present; pooled:\n%s", pooled.report())
    return pooled
