"""Lightning DataModule: labelled images, grouped folds, train/validation/predict loaders.

``mode="fold"`` trains on every fold but ``fold`` and validates on ``fold``; ``mode="final"``
trains on all labelled images and has no validation set. The table work (validation,
overrides, grouping, splits.csv) happens in :meth:`GMNDataModule.prepare_table` through
:mod:`gmn_weather.labelled_images` and :mod:`gmn_weather.splits`. Before that, every listed
image is checked and decoded into the input cache (:mod:`gmn_weather.inputs.frames`): the
unreadable ones are named all at once, or dropped and counted with ``skip_unreadable``; none
is ever replaced by a blank one. Items are dicts (``image``: uint8 [3, H, W], ``target``,
``index``: the row in its table), the batch form :class:`~gmn_weather.model.SkyClassifier`
reads; the model normalises the batch on its device.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from gmn_weather.inputs.frames import (
    Frames,
    UnreadableImagesError,
    prepare_frames,
    unreadable_message,
)
from gmn_weather.labelled_images import load_labelled_images
from gmn_weather.preprocessing import resolve_preprocessing
from gmn_weather.splits import SplitError, check_folds, load_or_create_splits
from gmn_weather.transforms_factory import eval_transform, train_transform

log = logging.getLogger(__name__)


class LabelledImageDataset(Dataset):
    """``{"image" (uint8), "target" (1.0 = clear), "index" (row)}`` for the rows of a table."""

    def __init__(self, table: pd.DataFrame, frames: Frames, positions: Mapping[str, int],
                 transform):
        self.positions = [positions[name] for name in table["image_filename"]]
        self.targets = [1.0 if label == "clear" else 0.0 for label in table["label"]]
        self.frames, self.transform = frames, transform

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> dict:
        image = torch.from_numpy(self.frames.pixels(self.positions[index]))
        return {"image": self.transform(image), "target": torch.tensor(self.targets[index]),
                "index": index}


def _loader_workers(num_workers: int) -> int:
    """``data.num_workers``, at most the machine's CPUs: more loader processes than CPUs
    only add contention (torch warns about it too)."""
    cpus = os.cpu_count() or 1
    if num_workers > cpus:
        log.info("data.num_workers=%d lowered to the %d CPUs of this machine", num_workers, cpus)
    return min(num_workers, cpus)


class GMNDataModule(pl.LightningDataModule):
    def __init__(
        self,
        labels_csv: str,
        image_dir: str,
        n_folds: int = 3,
        split_seed: int = 42,
        image_size: tuple[int, int] = (216, 384),
        batch_size: int = 32,
        num_workers: int = 4,
        min_edge_distance_s: float | None = None,
        label_overrides: str | None = None,
        group_by: str = "station_night",
        augmentation: Mapping[str, Any] | None = None,
        mode: str = "fold",
        fold: int = 0,
        splits_csv: str | None = None,
        preprocessing: Mapping[str, Any] | None = None,
        splits_guard: Callable[[], AbstractContextManager] | None = None,
        cache: bool = True,
        cache_dir: str | None = None,
        skip_unreadable: bool = False,
    ):
        """``preprocessing`` is the resolved input spec (training resolves it with the
        backbone's timm config); without it, ``image_size`` and ``augmentation`` resolve one
        with ImageNet normalisation. ``splits_guard`` gives a lock held while ``splits.csv``
        is read or made (jobs starting together must not both make it). ``cache_dir``
        (default: ``input_cache`` beside ``image_dir``) holds the decoded frames unless
        ``cache`` is false."""
        super().__init__()
        if mode not in ("fold", "final"):
            raise ValueError(f"mode={mode!r}: expected 'fold' or 'final'")
        if mode == "fold" and not 0 <= int(fold) < int(n_folds):
            raise SplitError(f"fold={fold} is outside 0..{int(n_folds) - 1} (data.n_folds={n_folds})")
        if mode == "fold" and splits_csv is None:
            raise ValueError("mode=fold needs splits_csv (the file holding the experiment's folds)")
        self.labels_csv, self.image_dir = Path(labels_csv), Path(image_dir)
        self.n_folds, self.split_seed, self.fold = int(n_folds), int(split_seed), int(fold)
        self.batch_size, self.num_workers = int(batch_size), _loader_workers(int(num_workers))
        self.min_edge_distance_s = min_edge_distance_s
        self.label_overrides = label_overrides
        self.group_by = group_by
        self.augmentation = dict(augmentation or {})
        self.preprocessing = dict(preprocessing or
                                  resolve_preprocessing(self.augmentation, image_size))
        self.mode = mode
        self.splits_csv = None if splits_csv is None else Path(splits_csv)
        self.splits_guard = splits_guard or nullcontext
        self.cache_dir = None if not cache else \
            Path(cache_dir) if cache_dir else self.image_dir.parent / "input_cache"
        self.skip_unreadable = bool(skip_unreadable)
        self.frames: Frames | None = None
        self.positions: dict[str, int] = {}
        self.table: pd.DataFrame | None = None
        self.splits: pd.DataFrame | None = None
        self.train_table: pd.DataFrame | None = None
        self.val_table: pd.DataFrame | None = None
        self.report = None
        self.fold_warnings: list[str] = []

    def prepare_table(self) -> None:
        """Load labels, make or check splits, and cut this job's train/validation tables."""
        if self.table is not None:
            return
        table, self.report = load_labelled_images(
            self.labels_csv, self.image_dir, self.min_edge_distance_s, self.label_overrides,
            self.group_by)
        self.report.log(log, self.labels_csv, self.image_dir)
        self.table = table = self._readable(table)
        if self.mode == "final":
            if table["label"].nunique() < 2:
                raise SplitError(f"every image in {self.labels_csv} is labelled "
                                 f"{table['label'].iloc[0]!r}; a classifier needs both classes")
            self.train_table, self.val_table = table, table.iloc[0:0]
            return
        with self.splits_guard():
            self.splits = load_or_create_splits(self.splits_csv, table, self.n_folds,
                                                self.split_seed)
        self.fold_warnings = check_folds(self.splits)
        for warning in self.fold_warnings:
            log.warning("splits: %s", warning)
        fold_of = self.splits.set_index("image_filename")["fold"]
        in_val = table["image_filename"].map(fold_of) == self.fold
        self.train_table = table[~in_val].reset_index(drop=True)
        self.val_table = table[in_val].reset_index(drop=True).assign(fold=self.fold)
        log.info("fold %d: %d training images, %d validation images (%d groups held out)",
                 self.fold, len(self.train_table), len(self.val_table),
                 self.val_table["group"].nunique())

    def _readable(self, table: pd.DataFrame) -> pd.DataFrame:
        """Check and cache every listed image; name the unreadable ones or drop them."""
        names = list(table["image_filename"])
        prepared = prepare_frames([self.image_dir / n for n in names],
                                  self.preprocessing["resize"], self.cache_dir, self.num_workers)
        if prepared.cache_line:
            log.info("%s", prepared.cache_line)
        self.frames, self.positions = prepared.frames, {n: i for i, n in enumerate(names)}
        if not prepared.unreadable:
            return table
        if not self.skip_unreadable:
            raise UnreadableImagesError(unreadable_message(
                prepared.unreadable, len(names), str(self.labels_csv)))
        bad = [str(self.image_dir / n) in prepared.unreadable for n in names]
        log.warning("data.skip_unreadable=true: %d unreadable images left out: %s", sum(bad),
                    ", ".join(n for n, b in zip(names, bad) if b))
        return table[[not b for b in bad]].reset_index(drop=True)

    def setup(self, stage: str | None = None) -> None:
        self.prepare_table()

    def sample_inputs(self, n: int) -> np.ndarray:
        """uint8 network inputs [n, 3, H, W] of ``n`` training frames spread over the table
        (checks and calibrates the ONNX export)."""
        rows = np.unique(np.linspace(0, len(self.train_table) - 1, num=max(1, n)).astype(int))
        crop = eval_transform(self.preprocessing)
        names = self.train_table["image_filename"].iloc[rows]
        return np.stack([crop(torch.from_numpy(self.frames.pixels(self.positions[name]))).numpy()
                         for name in names])

    def _dataset(self, table: pd.DataFrame, transform) -> LabelledImageDataset:
        return LabelledImageDataset(table, self.frames, self.positions, transform)

    def _loader(self, table: pd.DataFrame, transform, shuffle: bool) -> DataLoader:
        # Shuffling draws from torch's global generator, which seed_everything(seed) fixes.
        # A last training batch of one image would break BatchNorm layers: drop only that.
        return DataLoader(
            self._dataset(table, transform),
            batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0, pin_memory=torch.cuda.is_available(),
            drop_last=shuffle and len(table) % self.batch_size == 1,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_table,
                            train_transform(self.augmentation, self.preprocessing), shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_table, eval_transform(self.preprocessing), shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """The validation images for ``Trainer.predict``: the fold's out-of-fold predictions.

        A plain loader (no persistent workers: it runs once); ``index`` in its batches is
        the row of :attr:`val_table`.
        """
        return DataLoader(self._dataset(self.val_table, eval_transform(self.preprocessing)),
                          batch_size=self.batch_size, shuffle=False,
                          num_workers=self.num_workers, pin_memory=torch.cuda.is_available())
