"""``python analyze.py mode=compare``: one table of every experiment under the output root.

Each experiment folder's ``pooled_metrics.json`` gives a row: name, the overrides that define
it, pooled AP and AUROC, the operating threshold with its precision and recall, recall at
the minimum precision, image counts, when it was pooled, and its report page where one
exists. Rows are sorted by ``optimized_metric`` (higher first); experiments that are not
pooled yet, or were pooled before ``pooled_metrics.json`` existed, are listed last with what
to run. :func:`comparison_table` is pure; :func:`compare_experiments` reads the folders and
writes ``${paths.output_root}/comparison.csv`` atomically.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from gmn_base.atomic import write_csv
from gmn_weather.experiment import COMPARISON_CSV, ExperimentDir
from gmn_weather.objective import check_metric

log = logging.getLogger(__name__)

COLUMNS = ["rank", "name", "overrides", "ap", "auroc", "threshold", "precision", "recall",
           "recall_at_min_precision", "min_precision", "n_images", "n_clear", "n_folds",
           "optimistic", "pooled_utc", "status", "report"]
_FROM_RECORD = ("ap", "auroc", "threshold", "precision", "recall", "recall_at_min_precision",
                "min_precision", "n_images", "n_clear", "n_folds", "optimistic", "pooled_utc")


def experiment_row(name: str, record: Mapping | None, status: str = "pooled",
                   report: str | None = None) -> dict:
    """One row of the comparison from a ``pooled_metrics.json`` record (None: not pooled)."""
    row = {"name": name, "status": status, "report": report,
           "overrides": " ".join((record or {}).get("overrides") or [])}
    for key in _FROM_RECORD:
        row[key] = None if record is None else record.get(key)
    return row


def comparison_table(rows: Sequence[Mapping], metric: str) -> pd.DataFrame:
    """The rows ranked by ``metric``, highest first; rows without it last, by name."""
    check_metric(metric)
    table = pd.DataFrame(list(rows), columns=[c for c in COLUMNS if c != "rank"])
    value = pd.to_numeric(table[metric], errors="coerce")
    table = table.assign(_missing=value.isna(), _value=value.fillna(-math.inf)) \
        .sort_values(["_missing", "_value", "name"], ascending=[True, False, True]) \
        .drop(columns=["_missing", "_value"]).reset_index(drop=True)
    ranked = ~pd.to_numeric(table[metric], errors="coerce").isna()
    table.insert(0, "rank", [i + 1 if ok else None for i, ok in enumerate(ranked)])
    table["rank"] = table["rank"].astype("Int64")
    return table


def _not_pooled_status(experiment: ExperimentDir) -> str | None:
    """Why an experiment folder has no pooled metrics (None: not an experiment folder)."""
    if experiment.operating_point_json.is_file():
        return (f"pooled before {experiment.pooled_metrics_json.name} existed: run "
                f"python analyze.py name={experiment.name}")
    if not experiment.splits_csv.is_file():
        return None
    n_folds = int(experiment.read_splits()["fold"].max()) + 1
    _, missing = experiment.finished_folds(n_folds)
    return f"not pooled: fold(s) {', '.join(map(str, missing))} of {n_folds} missing" \
        if missing else f"not pooled: run python analyze.py name={experiment.name}"


def collect_rows(output_root: str | Path) -> list[dict]:
    """A row per experiment folder directly under ``output_root``."""
    rows = []
    root = Path(output_root)
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for folder in folders:
        experiment = ExperimentDir(folder)
        report_path = str(experiment.report_html) if experiment.report_html.is_file() else None
        record = experiment.read_pooled_metrics()
        if record is not None:
            rows.append(experiment_row(experiment.name, record, report=report_path))
            continue
        status = _not_pooled_status(experiment)
        if status is not None:
            rows.append(experiment_row(experiment.name, None, status, report_path))
    return rows


def compare_experiments(output_root: str | Path, metric: str) -> tuple[pd.DataFrame, Path]:
    """The ranked table of every experiment under ``output_root``, written to its
    ``comparison.csv``; returns the table and the file."""
    table = comparison_table(collect_rows(output_root), metric)
    path = Path(output_root) / COMPARISON_CSV
    write_csv(path, table)
    log.info("comparison of %d experiment(s) written to %s", len(table), path)
    return table, path


def format_comparison(table: pd.DataFrame, metric: str) -> str:
    """The table for the console: the figures, then each row's status and report page."""
    if table.empty:
        return "no experiment found"
    shown = table[["rank", "name", "ap", "auroc", "threshold", "precision", "recall",
                   "n_images", "pooled_utc"]]
    lines = [f"experiments ranked by {metric} (higher is better):",
             shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")]
    for _, row in table.iterrows():
        notes = [f"overrides: {row['overrides']}" if row["overrides"] else None,
                 row["status"] if row["status"] != "pooled" else None,
                 f"report: {row['report']}" if row["report"] else None]
        notes = [n for n in notes if n]
        if notes:
            lines.append(f"  {row['name']}: " + "; ".join(notes))
    return "\n".join(lines)
