"""Pooling: the folds' out-of-fold predictions become one table and one operating point.

Pure: from the fold tables (fold -> predictions), the experiment's split and the folds'
run info to a :class:`PooledResult` (the pooled OOF table, the threshold table, the
operating point and the record ``operating_point.json`` holds). Every image of the split
must be predicted exactly once. Nothing here reads or writes a file:
:mod:`gmn_weather.decision_files` reads the fold files, checks that the folds share one
configuration and writes the results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gmn_weather.experiment import ExperimentError, RunInfo
from gmn_weather.thresholds import (
    OperatingPoint,
    choose_operating_point,
    format_table,
    threshold_grid,
    threshold_table,
)

OOF_COLUMNS = ["image_filename", "label", "group", "fold", "prob_clear"]
POSITIVE_CLASS = "clear (predicted clear when prob_clear >= threshold)"


class PoolingError(ExperimentError):
    """The folds cannot be pooled (missing, incomplete, overlapping or trained differently)."""


@dataclass
class PooledResult:
    oof: pd.DataFrame
    table: pd.DataFrame
    operating_point: OperatingPoint
    optimistic: bool
    experiment_dir: Path
    fingerprint: str
    min_precision: float | None
    group_by: str = "station_night"  # data.group_by: what one cross-validation group was
    report_page: Path | None = None  # report.html, once written beside the decision files

    @property
    def n_folds(self) -> int:
        return int(self.oof["fold"].nunique())

    def operating_point_record(self) -> dict:
        """The content of ``operating_point.json``."""
        return {
            **self.operating_point.to_dict(),
            "min_precision": self.min_precision,
            "optimistic": self.optimistic,
            "oof_weights": "best" if self.optimistic else "last",
            "n_images": len(self.oof),
            "n_clear": int((self.oof["label"] == "clear").sum()),
            "n_folds": self.n_folds,
            "fingerprint": self.fingerprint,
            "group_by": self.group_by,
            "n_groups": int(self.oof["group"].nunique()),
            "experiment": self.experiment_dir.name,
            "positive_class": POSITIVE_CLASS,
        }

    def report(self) -> str:
        op = self.operating_point
        lines = []
        if self.optimistic:
            lines.append("OPTIMISTIC: out-of-fold predictions used the best epoch chosen on "
                         "the validation fold itself")
        lines += [
            (f"pooled out-of-fold predictions: {len(self.oof)} images, "
             f"{int((self.oof['label'] == 'clear').sum())} clear, "
             f"{self.n_folds} folds, {self.oof['group'].nunique()} groups by {self.group_by} "
             f"({self.experiment_dir})"),
            format_table(self.table),
            (f"operating point: threshold {op.threshold:.3f}, precision "
             f"{_fmt(op.precision)}, recall {_fmt(op.recall)} ({op.rule})"),
        ]
        if not op.met:
            lines.append("WARNING: the requested precision was not reached")
        if self.report_page is not None:
            lines.append(f"report page: {self.report_page}")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"


def pool_predictions(fold_tables: Mapping[int, pd.DataFrame], splits: pd.DataFrame) -> pd.DataFrame:
    """One table of every fold's predictions, each image of ``splits`` exactly once."""
    oof = pd.concat([fold_tables[k] for k in sorted(fold_tables)], ignore_index=True)
    counts = oof["image_filename"].value_counts()
    twice = counts[counts > 1]
    if len(twice):
        raise PoolingError(f"images predicted by more than one fold (first: {twice.index[0]}); "
                           "the fold files do not come from one split")
    expected = set(splits["image_filename"])
    got = set(oof["image_filename"])
    if expected != got:
        missing, extra = sorted(expected - got), sorted(got - expected)
        raise PoolingError(
            f"pooled OOF predictions do not cover the split exactly: {len(missing)} missing "
            f"(first: {missing[:1]}), {len(extra)} not in the split (first: {extra[:1]})")
    oof = oof.sort_values(["fold", "image_filename"]).reset_index(drop=True)
    keep = OOF_COLUMNS + (["optimistic"] if "optimistic" in oof.columns else [])
    return oof[keep]


def pool(
    fold_tables: Mapping[int, pd.DataFrame],
    splits: pd.DataFrame,
    infos: Mapping[int, RunInfo],
    experiment_dir: str | Path,
    min_precision: float = 0.95,
    threshold: float | None = None,
    threshold_step: float = 0.05,
) -> PooledResult:
    """Pool the folds and choose the operating point (``threshold`` fixes it instead)."""
    oof = pool_predictions(fold_tables, splits)
    optimistic = any(info.oof_weights == "best" for info in infos.values())
    table = threshold_table(oof["label"], oof["prob_clear"], threshold_grid(threshold_step))
    op = choose_operating_point(table, oof["label"], oof["prob_clear"], min_precision, threshold)
    if optimistic:
        table["optimistic"] = True
    first = infos[min(infos)]
    return PooledResult(
        oof=oof, table=table, operating_point=op, optimistic=optimistic,
        experiment_dir=Path(experiment_dir), fingerprint=first.fingerprint,
        min_precision=None if threshold is not None else min_precision,
        group_by=group_by_of(first),
    )


def group_by_of(info: RunInfo) -> str:
    """The ``data.group_by`` a fold was trained with (folds before the key: station-night)."""
    return str((info.settings.get("data") or {}).get("group_by", "station_night"))
