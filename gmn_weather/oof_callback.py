"""Out-of-fold predictions: after a fold's training, score its validation images.

By default the weights of the last epoch are used: picking the best epoch on the very fold
that is then reported makes the pooled table optimistic. ``weights="best"`` is allowed
(it needs a monitoring ModelCheckpoint) and is then recorded as optimistic, and every pooled
output made from it says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch

from gmn_base.atomic import write_csv
from gmn_weather.pooling import OOF_COLUMNS

log = logging.getLogger(__name__)


def predict_table(model: torch.nn.Module, loader, device: torch.device) -> list[float]:
    """prob_clear for every item of ``loader``, in its order."""
    was_training = model.training
    model.eval()
    probs: list[float] = []
    with torch.no_grad():
        for images, _, _ in loader:
            probs.extend(torch.sigmoid(model(images.to(device))).float().cpu().tolist())
    model.train(was_training)
    return probs


class OOFPredictionWriter(pl.Callback):
    def __init__(self, output_csv: str | Path, weights: str = "last"):
        if weights not in ("last", "best"):
            raise ValueError(f"callbacks.oof.weights={weights!r}: expected 'last' or 'best'")
        self.output_csv = Path(output_csv)
        self.weights = weights

    @property
    def optimistic(self) -> bool:
        return self.weights == "best"

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datamodule = trainer.datamodule
        if datamodule is None or datamodule.val_table is None or datamodule.val_table.empty:
            return
        model = pl_module
        if self.weights == "best":
            best = getattr(trainer.checkpoint_callback, "best_model_path", "")
            if not best:
                raise RuntimeError("callbacks.oof.weights=best needs a ModelCheckpoint with a "
                                   "monitor (callbacks.model_checkpoint.monitor=val/loss)")
            log.warning("OOF predictions from the best epoch (%s): chosen on this very fold, so "
                        "the pooled results are OPTIMISTIC", best)
            state = torch.load(best, map_location=pl_module.device, weights_only=True)
            pl_module.load_state_dict(state["state_dict"])
        probs = predict_table(model, datamodule.oof_dataloader(), pl_module.device)
        table = datamodule.val_table[OOF_COLUMNS[:-1]].copy()
        table["prob_clear"] = probs
        if self.optimistic:
            table["optimistic"] = True
        write_csv(self.output_csv, table)
        log.info("fold %s: wrote %d out-of-fold predictions (%s-epoch weights) to %s",
                 table["fold"].iloc[0], len(table), self.weights, self.output_csv)
