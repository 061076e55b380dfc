"""Threshold table and operating-point rule over pooled out-of-fold probabilities.

Pure functions: an image is predicted clear when ``prob_clear >= threshold``; the table
counts tp/fp/tn/fn with ``clear`` as the positive class. The operating point is the
threshold with the highest recall whose precision reaches ``min_precision`` (ties go to
the higher, more conservative threshold), or a fixed threshold the user names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

TABLE_COLUMNS = ["threshold", "precision", "recall", "f1", "tp", "fp", "tn", "fn"]


def threshold_grid(step: float = 0.05) -> np.ndarray:
    if not 0 < step <= 0.5:
        raise ValueError(f"analyze.threshold_step={step}: expected a value in (0, 0.5]")
    n = round(1.0 / step)
    grid = np.round(np.linspace(0.0, 1.0, n + 1), 6)
    return grid


def confusion_at(is_clear: np.ndarray, prob_clear: np.ndarray, threshold: float) -> dict:
    predicted = prob_clear >= threshold
    tp = int(np.sum(predicted & is_clear))
    fp = int(np.sum(predicted & ~is_clear))
    tn = int(np.sum(~predicted & ~is_clear))
    fn = int(np.sum(~predicted & is_clear))
    # Undefined ratios stay NaN (empty cell in the CSV) rather than a made-up 0 or 1.
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    if tp:
        f1 = 2 * precision * recall / (precision + recall)
    else:
        f1 = 0.0 if tp + fp + fn else float("nan")
    return {"threshold": float(threshold), "precision": precision, "recall": recall, "f1": f1,
            "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def threshold_table(labels, prob_clear, thresholds=None) -> pd.DataFrame:
    """One row per threshold with precision, recall, f1 and the confusion counts."""
    is_clear = np.asarray(labels) == "clear" if np.asarray(labels).dtype.kind in "OUS" \
        else np.asarray(labels).astype(bool)
    prob_clear = np.asarray(prob_clear, dtype=float)
    if len(is_clear) != len(prob_clear):
        raise ValueError("labels and prob_clear differ in length")
    if np.isnan(prob_clear).any():
        raise ValueError("prob_clear holds NaN values")
    thresholds = threshold_grid() if thresholds is None else thresholds
    rows = [confusion_at(is_clear, prob_clear, t) for t in thresholds]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


@dataclass
class OperatingPoint:
    threshold: float
    rule: str
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    tn: int
    fn: int
    met: bool = True  # False when no threshold reached the requested precision

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and np.isnan(v) else v)
                for k, v in asdict(self).items()}


def choose_operating_point(
    table: pd.DataFrame,
    labels=None,
    prob_clear=None,
    min_precision: float = 0.95,
    threshold: float | None = None,
) -> OperatingPoint:
    """Pick the operating point from ``table`` (or at a fixed ``threshold``).

    A fixed threshold is evaluated on ``labels``/``prob_clear`` directly, so it need not lie
    on the table's grid. When no threshold reaches ``min_precision`` the most precise one is
    taken and ``met`` is False; callers must say so.
    """
    if threshold is not None:
        if labels is None or prob_clear is None:
            raise ValueError("a fixed threshold needs labels and prob_clear")
        is_clear = np.asarray(labels) == "clear"
        row = confusion_at(is_clear, np.asarray(prob_clear, dtype=float), float(threshold))
        return OperatingPoint(rule=f"fixed threshold (analyze.threshold={threshold})", **row)
    ok = table[table["precision"] >= min_precision]
    if len(ok):
        best = ok.sort_values(["recall", "threshold"], ascending=[False, False]).iloc[0]
        rule = f"highest recall with precision >= {min_precision} (analyze.min_precision)"
        met = True
    else:
        defined = table[table["precision"].notna()]
        if defined.empty:
            raise ValueError("no threshold predicts any image clear; cannot choose a threshold")
        best = defined.sort_values(["precision", "recall", "threshold"],
                                   ascending=[False, False, False]).iloc[0]
        rule = (f"no threshold reaches precision >= {min_precision}; took the most precise "
                "threshold instead (lower analyze.min_precision or set analyze.threshold)")
        met = False
    return OperatingPoint(
        threshold=float(best["threshold"]), rule=rule, precision=float(best["precision"]),
        recall=float(best["recall"]), f1=float(best["f1"]), tp=int(best["tp"]),
        fp=int(best["fp"]), tn=int(best["tn"]), fn=int(best["fn"]), met=met,
    )


def format_table(table: pd.DataFrame) -> str:
    """The table as aligned text for the console."""
    return table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
