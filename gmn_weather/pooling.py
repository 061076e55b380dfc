"""Pool the folds' out-of-fold predictions into the experiment's decision files.

Reads ``splits.csv`` and every ``fold_{k}/oof_predictions.csv``, checks that the folds were
trained under one configuration (their ``run_info.json`` fingerprints agree) and that every
image of the split appears exactly once, then writes ``oof_predictions.csv``,
``threshold_table.csv``, ``pr_curve.png`` and ``operating_point.json``. Used by the fold job
that completes the set (any launcher) and by ``analyze.py``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gmn_base.atomic import atomic_path, write_csv, write_json
from gmn_weather.thresholds import (
    OperatingPoint,
    choose_operating_point,
    format_table,
    threshold_grid,
    threshold_table,
)

log = logging.getLogger(__name__)

RUN_INFO = "run_info.json"
OOF_COLUMNS = ["image_filename", "label", "group", "fold", "prob_clear"]


class PoolingError(RuntimeError):
    """The folds cannot be pooled (missing, incomplete or trained differently)."""


@dataclass
class PooledResult:
    oof: pd.DataFrame
    table: pd.DataFrame
    operating_point: OperatingPoint
    optimistic: bool
    experiment_dir: Path

    def report(self) -> str:
        op = self.operating_point
        lines = []
        if self.optimistic:
            lines.append("OPTIMISTIC: out-of-fold predictions used the best epoch chosen on "
                         "the validation fold itself")
        lines += [
            (f"pooled out-of-fold predictions: {len(self.oof)} images, "
             f"{int((self.oof['label'] == 'clear').sum())} clear, "
             f"{self.oof['fold'].nunique()} folds ({self.experiment_dir})"),
            format_table(self.table),
            (f"operating point: threshold {op.threshold:.3f}, precision "
             f"{_fmt(op.precision)}, recall {_fmt(op.recall)} ({op.rule})"),
        ]
        if not op.met:
            lines.append("WARNING: the requested precision was not reached")
        return "\n".join(lines)


def _fmt(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"


def read_run_info(run_dir: Path) -> dict | None:
    path = run_dir / RUN_INFO
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def configuration_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two settings dicts."""
    diffs = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "<absent>"), b.get(key, "<absent>")
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += configuration_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            diffs.append(f"{prefix}{key}: {va!r} vs {vb!r}")
    return diffs


def read_splits(experiment_dir: Path) -> pd.DataFrame:
    path = experiment_dir / "splits.csv"
    if not path.is_file():
        raise PoolingError(f"no splits.csv in {experiment_dir}: run the folds first "
                           "(python train.py -m fold=0,1,2) or check name=")
    return pd.read_csv(path, dtype={"group": str})


def fold_runs(experiment_dir: Path, n_folds: int) -> tuple[dict[int, dict], list[int]]:
    """Run infos of folds whose OOF file exists, and the list of folds still missing."""
    infos, missing = {}, []
    for k in range(n_folds):
        run_dir = experiment_dir / f"fold_{k}"
        info = read_run_info(run_dir)
        if info is None or not (run_dir / "oof_predictions.csv").is_file():
            missing.append(k)
        else:
            infos[k] = info
    return infos, missing


def check_same_configuration(infos: dict[int, dict]) -> None:
    folds = sorted(infos)
    first = infos[folds[0]]
    for k in folds[1:]:
        if infos[k]["fingerprint"] != first["fingerprint"]:
            diffs = configuration_differences(first["settings"], infos[k]["settings"])
            raise PoolingError(
                f"fold_{folds[0]} and fold_{k} were trained under different configurations "
                f"({'; '.join(diffs[:5]) or 'fingerprints differ'}); folds are never pooled "
                "across configurations. Rerun every fold with one configuration, or set "
                "name=<new experiment name> so each configuration gets its own folder"
            )


def check_experiment_consistency(experiment_dir: str | Path, fingerprint: str,
                                 settings: dict) -> None:
    """Refuse to start a fold job where folds of another configuration already lie.

    An experiment folder holds one configuration; a job with other settings under the same
    ``name`` would otherwise overwrite one fold and leave a set that can never be pooled.
    Only folds that finished (their OOF file exists) count: a job that stopped before
    training (say, no network for pretrained weights) must not block its corrected rerun.
    """
    experiment_dir = Path(experiment_dir)
    for run_dir in sorted(experiment_dir.glob("fold_*")):
        info = read_run_info(run_dir)
        if info is None or info.get("fingerprint") == fingerprint \
                or not (run_dir / "oof_predictions.csv").is_file():
            continue
        diffs = configuration_differences(info.get("settings", {}), settings)
        raise PoolingError(
            f"{experiment_dir} already holds {run_dir.name} trained under a different "
            f"configuration ({'; '.join(diffs[:5]) or 'fingerprints differ'}); folds are never "
            "pooled across configurations. Set name=<new experiment name> for these settings "
            f"(or delete {experiment_dir} to start it over)"
        )


def pool_oof(experiment_dir: Path, splits: pd.DataFrame, n_folds: int) -> pd.DataFrame:
    frames = [pd.read_csv(experiment_dir / f"fold_{k}" / "oof_predictions.csv",
                          dtype={"group": str}) for k in range(n_folds)]
    oof = pd.concat(frames, ignore_index=True)
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
            f"pooled OOF predictions do not cover splits.csv exactly: {len(missing)} missing "
            f"(first: {missing[:1]}), {len(extra)} not in the split (first: {extra[:1]})")
    oof = oof.sort_values(["fold", "image_filename"]).reset_index(drop=True)
    return oof


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


def pool_folds(
    experiment_dir: str | Path,
    min_precision: float = 0.95,
    threshold: float | None = None,
    threshold_step: float = 0.05,
) -> PooledResult:
    """Pool every fold of an experiment and write the decision files; raise when impossible."""
    experiment_dir = Path(experiment_dir)
    splits = read_splits(experiment_dir)
    n_folds = int(splits["fold"].max()) + 1
    infos, missing = fold_runs(experiment_dir, n_folds)
    if missing:
        raise PoolingError(
            f"{experiment_dir}: fold(s) {', '.join(map(str, missing))} of {n_folds} have no "
            f"out-of-fold predictions yet; run python train.py -m fold="
            f"{','.join(map(str, missing))} with the same settings")
    check_same_configuration(infos)
    oof = pool_oof(experiment_dir, splits, n_folds)
    optimistic = any(info.get("oof_weights") == "best" for info in infos.values())
    table = threshold_table(oof["label"], oof["prob_clear"], threshold_grid(threshold_step))
    op = choose_operating_point(table, oof["label"], oof["prob_clear"], min_precision, threshold)
    first = infos[min(infos)]
    if optimistic:
        table["optimistic"] = True
    oof_out = oof[OOF_COLUMNS + (["optimistic"] if "optimistic" in oof.columns else [])]
    write_csv(experiment_dir / "oof_predictions.csv", oof_out)
    write_csv(experiment_dir / "threshold_table.csv", table)
    plot_pr_curve(experiment_dir / "pr_curve.png", oof, op, optimistic,
                  f"{experiment_dir.name}: {len(oof)} images, {n_folds} folds")
    write_json(experiment_dir / "operating_point.json", {
        **op.to_dict(),
        "min_precision": None if threshold is not None else min_precision,
        "optimistic": optimistic,
        "oof_weights": "best" if optimistic else "last",
        "n_images": len(oof),
        "n_clear": int((oof["label"] == "clear").sum()),
        "n_folds": n_folds,
        "fingerprint": first["fingerprint"],
        "experiment": experiment_dir.name,
        "positive_class": "clear (predicted clear when prob_clear >= threshold)",
    })
    return PooledResult(oof, table, op, optimistic, experiment_dir)


def pool_if_complete(experiment_dir: str | Path, fingerprint: str, **rule) -> PooledResult | None:
    """Pool when every fold is present and trained like this job; otherwise say why not."""
    experiment_dir = Path(experiment_dir)
    splits = read_splits(experiment_dir)
    n_folds = int(splits["fold"].max()) + 1
    infos, missing = fold_runs(experiment_dir, n_folds)
    if missing:
        log.info("pooling: waiting for fold(s) %s; the job that completes the set pools them",
                 ", ".join(map(str, missing)))
        return None
    stale = [k for k, info in infos.items() if info["fingerprint"] != fingerprint]
    if stale:
        # Not fatal here: this fold's own result is valid, and a rerun of the other folds
        # (same command) completes the set. analyze.py refuses such a mix outright.
        log.warning("pooling skipped: fold(s) %s of %s were trained under a different "
                    "configuration; rerun them with these settings or set name=<new name>",
                    ", ".join(map(str, stale)), experiment_dir)
        return None
    return pool_folds(experiment_dir, **rule)
