"""Pooling: the folds' out-of-fold predictions become one table, one operating point and
the pooled metrics experiments are compared by.

Pure: from the fold tables (fold -> predictions), the experiment's split and the folds'
OOF records to a :class:`PooledResult` (the pooled OOF table, the threshold table, the
operating point, the :class:`~gmn_weather.pooled_metrics.PooledMetrics`, and the records
``operating_point.json`` and ``pooled_metrics.json`` hold). Every image of the split
must be predicted exactly once, by the fold ``splits.csv`` holds it in and with the label and
group it has there. Nothing here reads or writes a file:
:mod:`gmn_weather.decision_files` reads the fold files, checks that the folds share one
configuration and writes the results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gmn_weather.experiment import ExperimentError, OOFRecord
from gmn_weather.pooled_metrics import PooledMetrics, pooled_metrics

if TYPE_CHECKING:  # the report is written from this result, never the other way round
    from gmn_weather.report import WrittenReport
from gmn_weather.thresholds import (
    DEFAULT_MIN_PREDICTED_CLEAR,
    OperatingPoint,
    choose_operating_point,
    format_table,
    threshold_grid,
    threshold_table,
)

OOF_COLUMNS = ["image_filename", "label", "group", "fold", "prob_clear"]
POSITIVE_CLASS = "clear (predicted clear when prob_clear >= threshold)"
# Key figures of pooled_metrics.json repeated in operating_point.json.
KEY_FIGURES = ("ap", "auroc", "recall_at_min_precision", "precision_ci", "recall_ci")


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
    metrics: PooledMetrics
    settings: dict  # the folds' training settings (secret-free)
    overrides: list[str]  # the command-line overrides that define the experiment
    group_by: str = "station_night"  # data.group_by: what one cross-validation group was
    report_page: Path | None = None  # report.html, once written beside the decision files
    written_report: WrittenReport | None = None  # that page's content (its gallery: W&B)

    @property
    def n_folds(self) -> int:
        return int(self.oof["fold"].nunique())

    def operating_point_record(self) -> dict:
        """The content of ``operating_point.json``."""
        metrics = self.metrics.to_dict()
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
            **{key: metrics[key] for key in KEY_FIGURES},
        }

    def pooled_metrics_record(self) -> dict:
        """The content of ``pooled_metrics.json`` (and the pooled W&B run's summary)."""
        op = self.operating_point
        return {
            "experiment": self.experiment_dir.name,
            **self.metrics.to_dict(),
            "rule": op.rule,
            "met": op.met,
            "min_predicted_clear": op.min_predicted_clear,
            "optimistic": self.optimistic,
            "fingerprint": self.fingerprint,
            "overrides": list(self.overrides),
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
            self._metrics_line(),
        ]
        if not op.met:
            lines.append("WARNING: the requested precision was not reached")
        if self.report_page is not None:
            lines.append(f"report page: {self.report_page}")
        return "\n".join(lines)


    def _metrics_line(self) -> str:
        m = self.metrics
        return (f"pooled AP {_fmt(m.ap)}, AUROC {_fmt(m.auroc)} (per fold AP {_fmt(m.fold_ap.min)}"
                f"..{_fmt(m.fold_ap.max)}); recall at precision >= {m.min_precision:g}: "
                f"{_fmt(m.recall_at_min_precision)}; 95% interval over {m.n_groups} "
                f"{m.grouping} groups: precision {_fmt(m.precision_ci.low)}.."
                f"{_fmt(m.precision_ci.high)}, recall {_fmt(m.recall_ci.low)}.."
                f"{_fmt(m.recall_ci.high)}")


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
    for k, table in fold_tables.items():
        other = table[table["fold"] != k]
        if len(other):
            raise PoolingError(f"fold {k}'s predictions hold rows of fold "
                               f"{other['fold'].iloc[0]} (first: {other['image_filename'].iloc[0]})")
    _check_against_splits(oof, splits)
    oof = oof.sort_values(["fold", "image_filename"]).reset_index(drop=True)
    keep = OOF_COLUMNS + (["optimistic"] if "optimistic" in oof.columns else [])
    return oof[keep]


def _check_against_splits(oof: pd.DataFrame, splits: pd.DataFrame) -> None:
    """Every prediction's fold, label and group must be the ones ``splits.csv`` gives it."""
    expected = splits.set_index("image_filename")
    got = oof.set_index("image_filename")
    for column in ("fold", "label", "group"):
        theirs = expected[column].reindex(got.index)
        if column == "group":  # read as text or numbers depending on the file: compare as text
            differs = got[column].astype(str) != theirs.astype(str)
        else:
            differs = got[column] != theirs
        if differs.any():
            name = differs[differs].index[0]
            raise PoolingError(
                f"{differs.sum()} prediction(s) disagree with splits.csv on {column} (first: "
                f"{name}: {got.at[name, column]} in the fold's predictions, "
                f"{theirs.at[name]} in splits.csv); the fold files were not made from this "
                "split: rerun those folds")


def pool(
    fold_tables: Mapping[int, pd.DataFrame],
    splits: pd.DataFrame,
    infos: Mapping[int, OOFRecord],
    experiment_dir: str | Path,
    min_precision: float = 0.95,
    threshold: float | None = None,
    threshold_step: float = 0.05,
    min_predicted_clear: int = DEFAULT_MIN_PREDICTED_CLEAR,
) -> PooledResult:
    """Pool the folds, choose the operating point (``threshold`` fixes it instead) and
    compute the pooled metrics, bootstrapping over the folds' groups."""
    oof = pool_predictions(fold_tables, splits)
    optimistic = any(info.oof_weights == "best" for info in infos.values())
    table = threshold_table(oof["label"], oof["prob_clear"], threshold_grid(threshold_step))
    op = choose_operating_point(table, oof["label"], oof["prob_clear"], min_precision, threshold,
                                min_predicted_clear=min_predicted_clear)
    first = infos[min(infos)]
    metrics = pooled_metrics(oof, op, group_by_of(first), min_precision, min_predicted_clear)
    if optimistic:
        table["optimistic"] = True
    return PooledResult(
        oof=oof, table=table, operating_point=op, optimistic=optimistic,
        experiment_dir=Path(experiment_dir), fingerprint=first.fingerprint,
        min_precision=None if threshold is not None else min_precision, metrics=metrics,
        settings=dict(first.settings), overrides=list(first.overrides),
        group_by=group_by_of(first),
    )


def group_by_of(info: OOFRecord) -> str:
    """The ``data.group_by`` a fold was trained with (folds before the key: station-night)."""
    return str((info.settings.get("data") or {}).get("group_by", "station_night"))
