"""The experiment's decision files: read the folds, pool them, write what a user decides on.

:func:`pool_folds` reads ``splits.csv`` and every fold's predictions and run info from the
:class:`~gmn_weather.experiment.ExperimentDir`, refuses folds trained under different
configurations, pools them (:func:`gmn_weather.pooling.pool`, pure) and writes the pooled
``oof_predictions.csv``, ``threshold_table.csv``, ``pr_curve.png``, ``operating_point.json``
and ``pooled_metrics.json`` (:func:`write_decision_files`), then the report page made from
them (:func:`gmn_weather.report.write_report`). Used by the fold job that completes the set
(:func:`finish_fold`, from the OOF callback), by ``mode=cv``, the feature baseline and
``analyze.py``; their callers publish the result to W&B (:mod:`gmn_weather.wandb_outputs`)
once the job's own W&B run has finished.

Writing a fold's predictions and pooling happen under the experiment's pooling lock
(:mod:`gmn_weather.experiment_locks`): of fold jobs finishing together, exactly one sees the
set complete and pools it, whatever the order; ``analyze.py`` pools under the same lock.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from gmn_base.atomic import atomic_path, write_csv, write_json
from gmn_weather.experiment import ExperimentDir, OOFRecord, check_same_configuration
from gmn_weather.experiment_locks import pooling
from gmn_weather.pooling import PooledResult, PoolingError, pool
from gmn_weather.report import WrittenReport, write_report
from gmn_weather.thresholds import DEFAULT_MIN_PREDICTED_CLEAR, OperatingPoint

log = logging.getLogger(__name__)

# The analyze.* keys that make the operating-point rule (the others say what to do after).
RULE_KEYS = ("min_precision", "threshold", "threshold_step", "min_predicted_clear")


def pooling_rule(analyze: Mapping) -> dict:
    """The operating-point rule out of the ``analyze`` config section."""
    return {key: analyze[key] for key in RULE_KEYS if key in analyze}


def plot_pr_curve(path: Path, oof: pd.DataFrame, op: OperatingPoint, optimistic: bool,
                  title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y = (oof["label"] == "clear").to_numpy()
    precision, recall, _ = precision_recall_curve(y, oof["prob_clear"].to_numpy())
    ap = average_precision_score(y, oof["prob_clear"].to_numpy())
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot(recall, precision, label=f"pooled OOF (AP {ap:.3f})")
    if op.precision is not None and not np.isnan(op.precision):
        ax.plot([op.recall], [op.precision], "o", color="C3",
                label=f"operating point t={op.threshold:.2f}")
    ax.set_xlabel("recall (clear)")
    ax.set_ylabel("precision (clear)")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.set_title(("OPTIMISTIC (best-epoch OOF) " if optimistic else "") + title, fontsize=9)
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_decision_files(experiment: ExperimentDir, result: PooledResult) -> WrittenReport:
    """Write the pooled table, threshold table, PR curve and operating point, then the
    report page from them (its path goes to ``result.report_page``; the returned report
    feeds :func:`gmn_weather.report.gallery_table`)."""
    write_csv(experiment.oof_csv, result.oof)
    write_csv(experiment.threshold_table_csv, result.table)
    plot_pr_curve(experiment.pr_curve_png, result.oof, result.operating_point, result.optimistic,
                  f"{experiment.name}: {len(result.oof)} images, {result.n_folds} folds")
    write_json(experiment.operating_point_json, result.operating_point_record())
    pooled_utc = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_json(experiment.pooled_metrics_json,
               {**result.pooled_metrics_record(), "pooled_utc": pooled_utc})
    report = write_report(experiment)
    result.report_page, result.written_report = report.path, report
    return report


def pool_folds(experiment: ExperimentDir | str | Path, min_precision: float = 0.95,
               threshold: float | None = None, threshold_step: float = 0.05,
               min_predicted_clear: int = DEFAULT_MIN_PREDICTED_CLEAR) -> PooledResult:
    """Pool every fold of an experiment and write the decision files; raise when impossible."""
    experiment = ExperimentDir.at(experiment)
    with pooling(experiment):
        return _pool_folds(experiment, min_precision=min_precision, threshold=threshold,
                           threshold_step=threshold_step, min_predicted_clear=min_predicted_clear)


class FoldState(NamedTuple):
    """The splits, the number of folds, the finished folds' records and the missing folds."""

    splits: pd.DataFrame
    n_folds: int
    infos: dict[int, OOFRecord]
    missing: list[int]


def _fold_state(experiment: ExperimentDir) -> FoldState:
    splits = experiment.read_splits()
    n_folds = int(splits["fold"].max()) + 1
    return FoldState(splits, n_folds, *experiment.finished_folds(n_folds))


def _pool_folds(experiment: ExperimentDir, min_precision: float = 0.95,
                threshold: float | None = None, threshold_step: float = 0.05,
                min_predicted_clear: int = DEFAULT_MIN_PREDICTED_CLEAR,
                state: FoldState | None = None) -> PooledResult:
    """``state``: what :func:`_fold_state` found, when the caller (holding the pooling lock)
    has just read it."""
    splits, n_folds, infos, missing = state or _fold_state(experiment)
    if missing:
        raise PoolingError(
            f"{experiment.path}: fold(s) {', '.join(map(str, missing))} of {n_folds} have no "
            "finished out-of-fold predictions yet (oof_predictions.csv with its record "
            "oof_predictions.json); run python train.py -m fold="
            f"{','.join(map(str, missing))} with the same settings")
    check_same_configuration(infos)
    fold_tables = {k: experiment.read_fold_oof(k) for k in range(n_folds)}
    result = pool(fold_tables, splits, infos, experiment.path, min_precision=min_precision,
                  threshold=threshold, threshold_step=threshold_step,
                  min_predicted_clear=min_predicted_clear)
    write_decision_files(experiment, result)
    return result


def finish_fold(experiment: ExperimentDir, k: int, table: pd.DataFrame, record: OOFRecord,
                **rule) -> tuple[Path, PooledResult | None]:
    """Write fold ``k``'s predictions and record; pool when that completed the set.

    Returns the fold's CSV and the pooled result (None when folds are still missing).
    """
    with pooling(experiment):
        path = experiment.write_fold_oof(k, table, record)
        return path, _pool_if_complete(experiment, record.fingerprint, **rule)


def pool_if_complete(experiment: ExperimentDir | str | Path, fingerprint: str,
                     **rule) -> PooledResult | None:
    """Pool when every fold is finished and trained like this job; otherwise say why not."""
    experiment = ExperimentDir.at(experiment)
    with pooling(experiment):
        return _pool_if_complete(experiment, fingerprint, **rule)


def pool_if_unpooled(experiment: ExperimentDir, fingerprint: str, **rule) -> PooledResult | None:
    """Pool a complete set that has no decision files yet (its pooling job was stopped);
    used by a rerun that found its fold finished. None when pooled already or incomplete."""
    with pooling(experiment):
        if experiment.operating_point_json.is_file():
            return None
        return _pool_if_complete(experiment, fingerprint, **rule)


def _pool_if_complete(experiment: ExperimentDir, fingerprint: str,
                      **rule) -> PooledResult | None:
    """Pool when every fold is present and trained like this job; otherwise say why not."""
    state = _fold_state(experiment)
    infos, missing = state.infos, state.missing
    if missing:
        log.info("pooling: waiting for fold(s) %s; the job that completes the set pools them",
                 ", ".join(map(str, missing)))
        return None
    stale = [k for k, info in infos.items() if info.fingerprint != fingerprint]
    if stale:
        # Not fatal here: this fold's own result is valid, and a rerun of the other folds
        # (same command) completes the set. analyze.py refuses such a mix outright.
        log.warning("pooling skipped: fold(s) %s of %s were trained under a different "
                    "configuration; rerun them with these settings or set name=<new name>",
                    ", ".join(map(str, stale)), experiment.path)
        return None
    return _pool_folds(experiment, **pooling_rule(rule), state=state)
