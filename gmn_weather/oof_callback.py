"""Out-of-fold predictions: the callback that writes a fold's OOF table and pools the set.

After a fold's training, :func:`gmn_weather.training.train_fold` runs ``Trainer.predict``
on the datamodule, whose prediction loader holds the fold's validation images; the model's
``predict_step`` scores them (the same inference path ``predict.py`` uses). This Lightning
prediction writer receives those predictions, joins them to the validation table by row
index, writes the fold's OOF file and its record (the settings fingerprint it was made under)
through :func:`gmn_weather.decision_files.finish_fold`, which pools the experiment when this
fold completes the set.

Under DDP every rank predicts a share of the images (Lightning's DistributedSampler pads the
shares to equal length by repeating images); the shares are gathered on every rank
(:func:`gather_predictions`), each image is kept once, and rank zero alone writes and pools.

By default the weights of the last epoch are used: picking the best epoch on the very fold
that is then reported makes the pooled table optimistic. ``weights="best"`` is allowed
(it needs a monitoring ModelCheckpoint) and is then recorded as optimistic, and every pooled
output made from it says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from gmn_weather.decision_files import finish_fold
from gmn_weather.experiment import ExperimentDir, OOFRecord
from gmn_weather.pooling import OOF_COLUMNS, PooledResult

log = logging.getLogger(__name__)

OOF_WEIGHTS = ("last", "best")


def gather_predictions(predictions: Sequence[Mapping[str, torch.Tensor]], world_size: int
                       ) -> list[dict[str, torch.Tensor]]:
    """Every rank's predictions, each validation row once (DistributedSampler's padding
    repeats rows across ranks). Called on every rank: a collective when ``world_size > 1``."""
    index = [int(i) for p in predictions for i in p["index"].tolist()]
    prob = [float(v) for p in predictions for v in p["prob_clear"].tolist()]
    if world_size > 1:
        shares: list = [None] * world_size
        torch.distributed.all_gather_object(shares, (index, prob))
        index = [i for share in shares for i in share[0]]
        prob = [v for share in shares for v in share[1]]
    first = {}
    for i, v in zip(index, prob, strict=True):
        first.setdefault(i, v)
    return [{"index": torch.tensor(list(first), dtype=torch.long),
             "prob_clear": torch.tensor(list(first.values()), dtype=torch.float64)}]


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
        self.experiment = ExperimentDir.at(experiment)
        self.fold, self.fingerprint, self.weights = int(fold), fingerprint, weights
        self.rule = dict(rule or {})
        self.settings: dict = {}  # the settings fingerprinted, recorded (set by training)
        self.fit_metrics: dict[str, float] = {}  # the fold's last validation metrics, recorded
        self.overrides: list[str] = []  # the overrides that define the experiment, recorded
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
        predictions = gather_predictions(predictions, trainer.world_size)
        if not trainer.is_global_zero:
            return
        table = fold_predictions(trainer.datamodule.val_table, predictions, self.optimistic)
        record = OOFRecord(self.fingerprint, self.settings, self.weights,
                           written_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           metrics=self.fit_metrics, overrides=self.overrides)
        path, self.pooled = finish_fold(self.experiment, self.fold, table, record, **self.rule)
        log.info("fold %d: wrote %d out-of-fold predictions (%s-epoch weights) to %s",
                 self.fold, len(table), self.weights, path)
        if self.pooled is not None:
            log.info("all folds present; pooled:\n%s", self.pooled.report())
