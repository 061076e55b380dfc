"""Threshold table, exact precision-recall curve and operating-point rule over pooled OOF scores.

Pure functions. An image is predicted clear when ``prob_clear >= threshold``; ``clear`` is the
positive class. The 0.00, 0.05, ..., 1.00 table is for reading. The operating point is
chosen on the exact curve (every distinct score, from scikit-learn's
``precision_recall_curve``): the highest recall whose precision reaches ``min_precision``,
among thresholds that predict enough images clear and lie below a saturated 1.0; or a
fixed threshold the user names. :func:`choose_operating_point` documents the rule.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

TABLE_COLUMNS = ["threshold", "precision", "recall", "f1", "tp", "fp", "tn", "fn"]
DEFAULT_MIN_PREDICTED_CLEAR = 10
SATURATED = 1.0


class ThresholdSettingError(ValueError):
    """A threshold or operating-point setting outside its range; the message names it."""


def threshold_grid(step: float = 0.05) -> np.ndarray:
    if isinstance(step, bool) or not isinstance(step, numbers.Real) or not 0 < step <= 0.5:
        raise ThresholdSettingError(f"analyze.threshold_step={step!r}: expected a number in "
                                    "(0, 0.5]")
    n = round(1.0 / step)
    grid = np.round(np.linspace(0.0, 1.0, n + 1), 6)
    return grid


def _as_arrays(labels, prob_clear) -> tuple[np.ndarray, np.ndarray]:
    """``(is_clear, prob_clear)`` from ``clear``/``cloudy`` strings (or booleans) and scores."""
    labels = np.asarray(labels)
    is_clear = labels == "clear" if labels.dtype.kind in "OUS" else labels.astype(bool)
    prob_clear = np.asarray(prob_clear, dtype=float)
    if len(is_clear) != len(prob_clear):
        raise ValueError("labels and prob_clear differ in length")
    if np.isnan(prob_clear).any():
        raise ValueError("prob_clear holds NaN values")
    if len(prob_clear) and (prob_clear.min() < 0 or prob_clear.max() > 1):
        raise ValueError(f"prob_clear must lie in [0, 1]; found values from "
                         f"{prob_clear.min():g} to {prob_clear.max():g}")
    return is_clear, prob_clear


def _ratios(tp, fp, fn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and f1 from count arrays; undefined ratios stay NaN (an empty CSV
    cell), never a made-up 0 or 1."""
    tp, fp, fn = (np.asarray(v, dtype=float) for v in (tp, fp, fn))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        f1 = np.where(tp > 0, 2 * tp / (2 * tp + fp + fn),
                      np.where(tp + fp + fn > 0, 0.0, np.nan))
    return precision, recall, f1


def confusion_at(is_clear: np.ndarray, prob_clear: np.ndarray, threshold: float) -> dict:
    predicted = prob_clear >= threshold
    tp = int(np.sum(predicted & is_clear))
    fp = int(np.sum(predicted & ~is_clear))
    tn = int(np.sum(~predicted & ~is_clear))
    fn = int(np.sum(~predicted & is_clear))
    precision, recall, f1 = (float(v) for v in _ratios(tp, fp, fn))
    return {"threshold": float(threshold), "precision": precision, "recall": recall, "f1": f1,
            "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def threshold_table(labels, prob_clear, thresholds=None) -> pd.DataFrame:
    """One row per threshold with precision, recall, f1 and the confusion counts."""
    is_clear, prob_clear = _as_arrays(labels, prob_clear)
    thresholds = threshold_grid() if thresholds is None else thresholds
    rows = [confusion_at(is_clear, prob_clear, t) for t in thresholds]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def exact_curve(labels, prob_clear) -> pd.DataFrame:
    """The threshold table at every distinct score (scikit-learn's ``precision_recall_curve``),
    ascending, with the confusion counts there.

    A row at threshold ``s`` predicts clear every image scored ``>= s``. The curve's recall
    gives tp; the number of scores ``>= s`` gives tp + fp.
    """
    is_clear, prob_clear = _as_arrays(labels, prob_clear)
    n_clear = int(is_clear.sum())
    if n_clear == 0:
        raise ValueError("no image is labelled clear: the precision-recall curve of the clear "
                         "class is undefined")
    _, recall, thresholds = precision_recall_curve(is_clear, prob_clear)
    predicted = len(prob_clear) - np.searchsorted(np.sort(prob_clear), thresholds, side="left")
    tp = np.rint(recall[:-1] * n_clear).astype(int)
    fp = predicted - tp
    fn = n_clear - tp
    tn = int((~is_clear).sum()) - fp
    precision, recall, f1 = _ratios(tp, fp, fn)
    return pd.DataFrame({"threshold": thresholds.astype(float), "precision": precision,
                         "recall": recall, "f1": f1, "tp": tp, "fp": fp, "tn": tn, "fn": fn},
                        columns=TABLE_COLUMNS)


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
    # Predicted-clear images the rule required (analyze.min_predicted_clear after its cap);
    # None for a fixed threshold.
    min_predicted_clear: int | None = None

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and np.isnan(v) else v)
                for k, v in asdict(self).items()}


def required_predicted_clear(min_predicted_clear: int, n_clear: int) -> int:
    """Support the rule asks of a threshold: ``min_predicted_clear`` predicted clear, capped
    at half the clear images (rounded up) so a small set can still reach its full recall,
    and at least one."""
    if isinstance(min_predicted_clear, bool) \
            or not isinstance(min_predicted_clear, numbers.Integral) or min_predicted_clear < 0:
        raise ValueError(f"analyze.min_predicted_clear={min_predicted_clear!r}: expected a "
                         "whole number >= 0")
    return int(max(1, min(min_predicted_clear, math.ceil(n_clear / 2))))


def check_unit(key: str, value) -> float:
    """``value`` as a float in [0, 1] (a threshold, a precision); ThresholdSettingError
    naming ``key`` otherwise. Text is refused even when it spells a number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not 0.0 <= float(value) <= 1.0:
        raise ThresholdSettingError(f"{key}={value!r}: expected a number in [0, 1]")
    return float(value)


def check_rule(min_precision: float = 0.95, threshold: float | None = None,
               threshold_step: float = 0.05, **_other) -> None:
    """The ``analyze`` keys, checked before any work uses them (a fold job pools only after
    training; other keys of the group are checked where they are used)."""
    if threshold is not None:
        check_unit("analyze.threshold", threshold)
    check_unit("analyze.min_precision", min_precision)
    threshold_grid(threshold_step)


def _below_saturation(candidates: pd.DataFrame, prob_clear: np.ndarray | None) -> pd.DataFrame:
    """Candidates without a threshold at the saturated 1.0 (see choose_operating_point).

    On the exact curve the saturated row moves to halfway between the highest score below
    1.0 and 1.0: it predicts the same images clear, from a threshold that no float rounding
    decides. Without the scores (a table only) that row is dropped.
    """
    saturated = candidates["threshold"] >= SATURATED
    if not saturated.any():
        return candidates
    unsaturated = None if prob_clear is None else prob_clear[prob_clear < SATURATED]
    if unsaturated is None or not len(unsaturated):
        return candidates[~saturated]
    candidates = candidates.copy()
    candidates.loc[saturated, "threshold"] = (float(unsaturated.max()) + SATURATED) / 2
    return candidates


def _rule_point(candidates: pd.DataFrame, min_precision: float, required: int,
                source: str) -> OperatingPoint:
    supported = candidates[candidates["tp"] + candidates["fp"] >= required]
    if supported.empty:
        raise ValueError(f"no threshold below 1.0 predicts at least {required} image(s) clear "
                         f"on the {source}: the scores cannot be ranked (every prob_clear "
                         "saturated at 1.0?); lower analyze.min_predicted_clear or set "
                         "analyze.threshold")
    support = f"at least {required} predicted clear (analyze.min_predicted_clear)"
    ok = supported[supported["precision"] >= min_precision]
    if len(ok):
        # Equal recall means equal tp: prefer the higher precision, then the higher threshold.
        best = ok.sort_values(["tp", "precision", "threshold"], ascending=False).iloc[0]
        rule = (f"highest recall with precision >= {min_precision} (analyze.min_precision) "
                f"on the {source}, {support}")
        met = True
    else:
        best = supported.sort_values(["precision", "tp", "threshold"], ascending=False).iloc[0]
        rule = (f"no threshold reaches precision >= {min_precision} with {support} on the "
                f"{source}; took the most precise one instead (lower analyze.min_precision "
                "or set analyze.threshold)")
        met = False
    return OperatingPoint(
        threshold=float(best["threshold"]), rule=rule, precision=float(best["precision"]),
        recall=float(best["recall"]), f1=float(best["f1"]), tp=int(best["tp"]),
        fp=int(best["fp"]), tn=int(best["tn"]), fn=int(best["fn"]), met=met,
        min_predicted_clear=required,
    )


def choose_operating_point(
    table: pd.DataFrame | None,
    labels=None,
    prob_clear=None,
    min_precision: float = 0.95,
    threshold: float | None = None,
    *,
    min_predicted_clear: int = DEFAULT_MIN_PREDICTED_CLEAR,
) -> OperatingPoint:
    """The operating point of pooled OOF scores, by rule or at a fixed ``threshold``.

    Rule: the highest recall whose precision is at least ``min_precision``; where several
    thresholds give that recall, the most precise, then the highest, wins (on a plateau of
    equal recall the rule takes its top, not its bottom). Candidates:

    * every distinct score of ``prob_clear`` (the exact curve, :func:`exact_curve`) when
      ``labels`` and ``prob_clear`` are given; only the rows of ``table`` otherwise.
    * Minimum support: a candidate must predict at least ``min_predicted_clear`` images
      clear (:func:`required_predicted_clear` caps it on small sets), so the point never
      rests on a handful of confident predictions whose precision is luck.
    * Never a threshold of 1.0. Under ``prob_clear >= t``, t = 1.0 predicts clear only the
      images whose probability saturated to exactly 1.0 (a float32 sigmoid does so from a
      logit of about 17; half precision or another runtime much earlier). All saturated
      images tie, so such a threshold cannot rank them, and whether a new image passes would
      hinge on float rounding rather than the model's ranking. Any threshold below 1.0
      predicts every saturated image clear, which is what the model's most confident scores
      should mean; the saturated candidate therefore moves just below 1.0 (see
      :func:`_below_saturation`). When every score is 1.0 nothing can be chosen: ValueError.

    When no candidate reaches ``min_precision``, the most precise one is taken and ``met``
    is False; callers must say so. A fixed ``threshold`` (in [0, 1]) is evaluated on
    ``labels``/``prob_clear`` directly, so it need not lie on any grid.
    """
    if threshold is not None:
        threshold = check_unit("analyze.threshold", threshold)
        if labels is None or prob_clear is None:
            raise ValueError("a fixed threshold needs labels and prob_clear")
        row = confusion_at(*_as_arrays(labels, prob_clear), threshold)
        return OperatingPoint(rule=f"fixed threshold (analyze.threshold={threshold:g})", **row)
    min_precision = check_unit("analyze.min_precision", min_precision)
    scores = None
    if labels is not None and prob_clear is not None:
        is_clear, scores = _as_arrays(labels, prob_clear)
        candidates, source = exact_curve(is_clear, scores), "exact precision-recall curve"
    elif table is not None:
        candidates, source = table, "threshold table"
    else:
        raise ValueError("choose_operating_point needs labels and prob_clear, or a table")
    if candidates.empty:
        raise ValueError("no threshold to choose from: the table is empty")
    n_clear = int(candidates["tp"].iloc[0] + candidates["fn"].iloc[0])
    required = required_predicted_clear(min_predicted_clear, n_clear)
    return _rule_point(_below_saturation(candidates, scores), min_precision, required, source)


def format_table(table: pd.DataFrame) -> str:
    """The table as aligned text for the console."""
    return table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
