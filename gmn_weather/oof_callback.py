"""Out-of-fold predictions: the callback that writes a fold's OOF table and pools the set.

After a fold's training, :func:`gmn_weather.training.train_fold` runs ``Trainer.predict``
on the datamodule, whose prediction loader holds the fold's validation images; the model's
``predict_step`` scores them (the same inference path ``predict.py`` uses). This Lightning
prediction writer receives those predictions, joins them to the validation table by row
index, writes the fold's OOF file through the :class:`~gmn_weather.experiment.ExperimentDir`
and, when this fold completes the set, pools the experiment
(:func:`gmn_weather.decision_files.pool_if_complete`).

By default the weights of the last epoch are used: picking the best epoch on the very fold
that is then reported makes the pooled table optimistic. ``weights="best"`` is allowed
(it needs a monitoring ModelCheckpoint) and is then recorded as optimistic, and every pooled
output made from it says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from gmn_weather.decision_files import pool_if_complete
from gmn_weather.experiment import ExperimentDir
from gmn_weather.pooling import OOF_COLUMNS, PooledResult

log = logging.getLogger(__name__)

OOF_WEIGHTS = ("last", "best")


def fold_predictions(val_table: pd.DataFrame, predictions: Sequence[Mapping[str, torch.Tensor]],
                     optimistic: bool = False) -> pd.DataFrame:
    """The fold's OOF table: its validation rows (in table order) with their ``prob_clear``."""
    index = torch.cat([p["index"] for p in predictions]).tolist() if predictions else []
    prob = torch.cat([p["prob_clear"] for p in predictions]).tolist() if predictions else []
    if sorted(index) != list(range(len(val_table))):
        raise RuntimeError(f"out-of-fold predictions cover {len(set(index))} of the "
                           f"{len(val_table)} validation images; every image needs exactly one")
    table = val_table[OOF_COLUMNS[:-1]].copy()
    table["prob_clear"] = pd.Series(prob, index=index).sort_index().to_numpy()
    if optimistic:
        table["optimistic"] = True
    return table


class OOFPredictionWriter(BasePredictionWriter):
    def __init__(self, experiment: ExperimentDir | str | Path, fold: int, fingerprint: str,
                 weights: str = "last", rule: Mapping[str, Any] | None = None):
        if weights not in OOF_WEIGHTS:
            raise ValueError(f"callbacks.oof.weights={weights!r}: expected 'last' or 'best'")
        super().__init__(write_interval="epoch")
        self.experiment = experiment if isinstance(experiment, ExperimentDir) \
            else ExperimentDir(Path(experiment))
        self.fold, self.fingerprint, self.weights = int(fold), fingerprint, weights
        self.rule = dict(rule or {})
        self.pooled: PooledResult | None = None

    @property
    def optimistic(self) -> bool:
        return self.weights == "best"

    def ckpt_path(self, trainer: pl.Trainer) -> str | None:
        """The checkpoint ``Trainer.predict`` should load (None: the last epoch's weights)."""
        if self.weights == "last":
            return None
        best = getattr(trainer.checkpoint_callback, "best_model_path", "")
        if not best:
            raise RuntimeError("callbacks.oof.weights=best needs a ModelCheckpoint with a "
                               "monitor (callbacks.model_checkpoint.monitor=val/loss)")
        log.warning("OOF predictions from the best epoch (%s): chosen on this very fold, so "
                    "the pooled results are OPTIMISTIC", best)
        return best

    def write_on_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           predictions: Sequence[Any], batch_indices: Sequence[Any]) -> None:
        if trainer.fast_dev_run:
            # A dry run scores one batch: the path runs, but a partial OOF file must not exist.
            log.info("fold %d: fast_dev_run scored %d validation image(s) out-of-fold; "
                     "nothing written", self.fold, sum(len(p["index"]) for p in predictions))
            return
        table = fold_predictions(trainer.datamodule.val_table, predictions, self.optimistic)
        path = self.experiment.write_fold_oof(self.fold, table)
        log.info("fold %d: wrote %d out-of-fold predictions (%s-epoch weights) to %s",
                 self.fold, len(table), self.weights, path)
        self.pooled = pool_if_complete(self.experiment, self.fingerprint, **self.rule)
        if self.pooled is not None:
            log.info("all folds present; pooled:\n%s", self.pooled.report())
