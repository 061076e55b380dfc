"""Metrics of a pooled out-of-fold table: the numbers worth comparing between experiments.

Pure functions over the pooled OOF table (``image_filename,label,group,fold,prob_clear``, and
optionally ``station,night,timestamp,edge_distance_s``) and its operating point: pooled AP
and AUROC (scikit-learn), recall at ``min_precision`` under the operating-point rule, per-fold
AP/AUROC with their spread, counts, and a bootstrap-over-groups interval for precision and
recall at the threshold; :func:`by` breaks the same figures down per station or night.
Results are dataclasses whose ``to_dict()`` is JSON-ready (undefined values are ``None``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from gmn_weather.thresholds import (
    DEFAULT_MIN_PREDICTED_CLEAR,
    OperatingPoint,
    choose_operating_point,
    confusion_at,
)

REQUIRED_COLUMNS = ["image_filename", "label", "group", "fold", "prob_clear"]
# 2000 resamples put the 2.5 % and 97.5 % percentiles about 50 resamples in from each end:
# stable to about 0.01 for the interval ends; bench/pooled_metrics.py times it.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
# Bound on the resample x group matrix held at once (elements), so memory stays small.
_BOOTSTRAP_CHUNK = 1_000_000


def _json_ready(value):
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _check_columns(oof: pd.DataFrame, needed: list[str]) -> None:
    missing = [c for c in needed if c not in oof.columns]
    if missing:
        raise ValueError(f"the pooled OOF table lacks column(s) {', '.join(missing)} "
                         f"(it has {', '.join(map(str, oof.columns))})")


def _is_clear(oof: pd.DataFrame) -> np.ndarray:
    return (oof["label"] == "clear").to_numpy()


def ap_auroc(is_clear: np.ndarray, prob_clear: np.ndarray) -> tuple[float, float]:
    """Average precision and AUROC; both NaN where only one class is present (undefined)."""
    if len(is_clear) == 0 or is_clear.all() or not is_clear.any():
        return float("nan"), float("nan")
    return (float(average_precision_score(is_clear, prob_clear)),
            float(roc_auc_score(is_clear, prob_clear)))


@dataclass
class Interval:
    low: float
    high: float


@dataclass
class FoldMetrics:
    fold: int
    n_images: int
    n_clear: int
    ap: float  # NaN for a single-class fold
    auroc: float


@dataclass
class Spread:
    """Mean, sample standard deviation, min and max over the folds where a metric is defined."""
    mean: float
    std: float
    min: float
    max: float
    n_defined: int

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        defined = np.array([v for v in values if not math.isnan(v)], dtype=float)
        if not len(defined):
            return cls(math.nan, math.nan, math.nan, math.nan, 0)
        std = float(defined.std(ddof=1)) if len(defined) > 1 else math.nan
        return cls(float(defined.mean()), std, float(defined.min()), float(defined.max()),
                   len(defined))


@dataclass
class PooledMetrics:
    n_images: int
    n_clear: int
    n_groups: int
    n_folds: int
    grouping: str  # what a group is, e.g. "station-night"
    ap: float
    auroc: float
    min_precision: float
    recall_at_min_precision: float  # 0.0 when no supported threshold reaches min_precision
    threshold: float
    precision: float  # at the threshold
    recall: float
    tp: int
    fp: int
    tn: int
    fn: int
    precision_ci: Interval
    recall_ci: Interval
    bootstrap_resamples: int
    bootstrap_seed: int
    confidence: float
    fold_ap: Spread
    fold_auroc: Spread
    folds: list[FoldMetrics] = field(default_factory=list)

    def to_dict(self) -> dict:
        return _json_ready(asdict(self))


def bootstrap_precision_recall(
    group_codes: np.ndarray,
    tp: np.ndarray,
    fp: np.ndarray,
    fn: np.ndarray,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[Interval, Interval]:
    """Percentile intervals for precision and recall, resampling groups with replacement.

    ``tp``/``fp``/``fn`` are per-image 0/1 indicators and ``group_codes`` the image's group
    as 0..G-1. Frames of one station-night are not independent, so whole groups are drawn:
    each resample takes G groups with replacement and sums their counts. A resample whose
    precision or recall is undefined (nothing predicted clear, no clear image) is left out
    of that interval; when every one is, the interval is NaN.
    """
    n_groups = int(group_codes.max()) + 1 if len(group_codes) else 0
    if n_groups == 0:
        nan = Interval(math.nan, math.nan)
        return nan, nan
    counts = np.stack([np.bincount(group_codes, weights=v, minlength=n_groups)
                       for v in (tp, fp, fn)], axis=1)  # G x 3
    rng = np.random.default_rng(seed)
    sums = np.empty((n_resamples, 3))
    chunk = max(1, _BOOTSTRAP_CHUNK // n_groups)
    for start in range(0, n_resamples, chunk):
        rows = min(n_resamples, start + chunk) - start
        drawn = rng.integers(0, n_groups, size=(rows, n_groups))
        # How often each group was drawn in each resample, then its counts summed by weight.
        offsets = (drawn + n_groups * np.arange(rows)[:, None]).ravel()
        times = np.bincount(offsets, minlength=rows * n_groups).reshape(rows, n_groups)
        sums[start:start + rows] = times @ counts
    b_tp, b_fp, b_fn = sums.T
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(b_tp + b_fp > 0, b_tp / (b_tp + b_fp), np.nan)
        recall = np.where(b_tp + b_fn > 0, b_tp / (b_tp + b_fn), np.nan)
    tail = 100 * (1 - confidence) / 2
    return _percentiles(precision, tail), _percentiles(recall, tail)


def _percentiles(values: np.ndarray, tail: float) -> Interval:
    defined = values[~np.isnan(values)]
    if not len(defined):
        return Interval(math.nan, math.nan)
    low, high = np.percentile(defined, [tail, 100 - tail])
    return Interval(float(low), float(high))


def _fold_metrics(oof: pd.DataFrame) -> list[FoldMetrics]:
    rows = []
    for fold, part in oof.groupby("fold", sort=True):
        is_clear = _is_clear(part)
        ap, auroc = ap_auroc(is_clear, part["prob_clear"].to_numpy(dtype=float))
        rows.append(FoldMetrics(int(fold), len(part), int(is_clear.sum()), ap, auroc))
    return rows


def pooled_metrics(
    oof: pd.DataFrame,
    operating_point: OperatingPoint,
    grouping: str,
    min_precision: float = 0.95,
    min_predicted_clear: int = DEFAULT_MIN_PREDICTED_CLEAR,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> PooledMetrics:
    """Everything an experiment is compared by, from its pooled OOF table.

    ``recall_at_min_precision`` is the recall of the point the rule of
    :func:`~gmn_weather.thresholds.choose_operating_point` picks (exact curve, same minimum
    support, never at a saturated 1.0), or 0.0 when no such point reaches ``min_precision``;
    it does not depend on whether ``operating_point`` came from that rule or a fixed
    threshold. Precision, recall and counts are recounted at ``operating_point.threshold``.
    """
    _check_columns(oof, REQUIRED_COLUMNS)
    if oof.empty:
        raise ValueError("the pooled OOF table is empty")
    is_clear = _is_clear(oof)
    prob_clear = oof["prob_clear"].to_numpy(dtype=float)
    ap, auroc = ap_auroc(is_clear, prob_clear)
    best = choose_operating_point(None, oof["label"], prob_clear, min_precision,
                                  min_predicted_clear=min_predicted_clear)
    at = confusion_at(is_clear, prob_clear, operating_point.threshold)
    predicted = prob_clear >= operating_point.threshold
    group_codes = pd.factorize(oof["group"].astype(str))[0]
    precision_ci, recall_ci = bootstrap_precision_recall(
        group_codes, predicted & is_clear, predicted & ~is_clear, ~predicted & is_clear,
        n_resamples, seed)
    folds = _fold_metrics(oof)
    return PooledMetrics(
        n_images=len(oof), n_clear=int(is_clear.sum()), n_groups=int(group_codes.max()) + 1,
        n_folds=len(folds), grouping=grouping, ap=ap, auroc=auroc, min_precision=min_precision,
        recall_at_min_precision=best.recall if best.met else 0.0,
        threshold=at["threshold"], precision=at["precision"], recall=at["recall"],
        tp=at["tp"], fp=at["fp"], tn=at["tn"], fn=at["fn"],
        precision_ci=precision_ci, recall_ci=recall_ci, bootstrap_resamples=n_resamples,
        bootstrap_seed=seed, confidence=CONFIDENCE,
        fold_ap=Spread.of([f.ap for f in folds]), fold_auroc=Spread.of([f.auroc for f in folds]),
        folds=folds,
    )


@dataclass
class BreakdownRow:
    value: str  # the station id, night, ... of this row
    n_images: int
    n_clear: int
    clear_share: float
    ap: float  # NaN where the row holds one class only
    precision: float  # at the threshold; NaN where nothing is predicted clear
    recall: float  # NaN where no image is clear
    tp: int
    fp: int
    fn: int


@dataclass
class Breakdown:
    column: str
    threshold: float
    rows: list[BreakdownRow]

    def to_dict(self) -> dict:
        return _json_ready(asdict(self))

    def to_frame(self) -> pd.DataFrame:
        """One row per value (NaN where undefined), e.g. for a report page or a W&B table."""
        columns = list(BreakdownRow.__dataclass_fields__)
        return pd.DataFrame([asdict(r) for r in self.rows], columns=columns) \
            .rename(columns={"value": self.column})


def by(oof: pd.DataFrame, column: str, threshold: float) -> Breakdown:
    """Per value of ``column`` (``station``, ``night``, ...): counts, clear share, AP where
    defined, and precision/recall/tp/fp/fn at ``threshold``; rows sorted by value."""
    _check_columns(oof, ["label", "prob_clear", column])
    if oof[column].isna().any():
        raise ValueError(f"column {column} of the pooled OOF table has empty values; "
                         "every image needs one to be broken down by it")
    rows = []
    for value, part in oof.groupby(oof[column].astype(str), sort=True):
        is_clear = _is_clear(part)
        prob_clear = part["prob_clear"].to_numpy(dtype=float)
        at = confusion_at(is_clear, prob_clear, threshold)
        rows.append(BreakdownRow(
            value=str(value), n_images=len(part), n_clear=int(is_clear.sum()),
            clear_share=float(is_clear.mean()), ap=ap_auroc(is_clear, prob_clear)[0],
            precision=at["precision"], recall=at["recall"], tp=at["tp"], fp=at["fp"],
            fn=at["fn"]))
    return Breakdown(column=column, threshold=float(threshold), rows=rows)
