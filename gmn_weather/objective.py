"""The number a training job returns to a sweeper: one pooled metric, always maximised.

``optimized_metric`` names a figure of ``pooled_metrics.json``: ``ap`` (pooled average
precision, the default), ``auroc`` or ``recall_at_min_precision``; higher is better for each.
A job that pooled the experiment (the last fold job, ``mode=cv``, the feature baseline) or
finds it pooled (``mode=final``) returns the pooled value. A fold job that does not complete
the set returns the same metric computed the same way on its own fold's out-of-fold table,
so the number keeps its name and direction (it is noisier: one fold's images). Pure
functions; :func:`gmn_weather.training.train` picks which one applies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from gmn_weather.pooled_metrics import ap_auroc
from gmn_weather.thresholds import DEFAULT_MIN_PREDICTED_CLEAR, choose_operating_point

OPTIMIZED_METRICS = ("ap", "auroc", "recall_at_min_precision")
DIRECTION = "maximize"


class ObjectiveSettingError(ValueError):
    """``optimized_metric`` names no pooled metric."""


def check_metric(name: str) -> str:
    if name not in OPTIMIZED_METRICS:
        raise ObjectiveSettingError(f"optimized_metric={name!r}: expected one of "
                         f"{', '.join(OPTIMIZED_METRICS)} (each is maximised)")
    return name


def pooled_value(record: Mapping, name: str) -> float:
    """The metric from a ``pooled_metrics.json`` record (NaN where it is undefined)."""
    value = record.get(check_metric(name))
    return math.nan if value is None else float(value)


def fold_value(oof: pd.DataFrame, name: str, min_precision: float = 0.95,
               min_predicted_clear: int = DEFAULT_MIN_PREDICTED_CLEAR) -> float:
    """The metric on one fold's OOF table, as :func:`~gmn_weather.pooled_metrics.pooled_metrics`
    computes it on the pooled one (NaN where the fold holds one class only)."""
    check_metric(name)
    is_clear = (oof["label"] == "clear").to_numpy()
    prob_clear = oof["prob_clear"].to_numpy(dtype=float)
    if name in ("ap", "auroc"):
        ap, auroc = ap_auroc(is_clear, prob_clear)
        return ap if name == "ap" else auroc
    if not is_clear.any():
        return math.nan
    try:
        point = choose_operating_point(None, oof["label"], prob_clear, min_precision,
                                       min_predicted_clear=min_predicted_clear)
    except ValueError:  # every score saturated at 1.0: no threshold can rank them
        return math.nan
    return point.recall if point.met else 0.0
