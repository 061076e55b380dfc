"""Cross-validation folds grouped (by station-night unless ``data.group_by`` says night or
station), written once per experiment.

Frames a few seconds apart are near-copies, so a fold split by frame leaks the validation
set into training. :func:`assign_folds` uses scikit-learn's ``StratifiedGroupKFold`` so each
station-night lies in exactly one validation fold, with a split seed of its own. The
experiment's ``splits.csv`` is written by the first fold job and reused by every later one;
:func:`load_or_create_splits` refuses to continue when the labelled data or the split seed
no longer match it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from gmn_base.atomic import write_csv

log = logging.getLogger(__name__)

SPLIT_COLUMNS = ["image_filename", "label", "group", "fold"]


class SplitError(ValueError):
    """Folds cannot be made from the data, or the data no longer match ``splits.csv``."""


def assign_folds(table: pd.DataFrame, n_folds: int, split_seed: int) -> pd.DataFrame:
    """Return ``image_filename,label,group,fold`` with every group in exactly one fold.

    Deterministic for a given table (order-independent: rows are sorted first) and seed.
    """
    if n_folds < 2:
        raise SplitError(f"data.n_folds={n_folds}: cross-validation needs at least 2 folds")
    table = table.sort_values("image_filename").reset_index(drop=True)
    n_groups = table["group"].nunique()
    if n_groups < n_folds:
        raise SplitError(
            f"data.n_folds={n_folds} but the data hold only {n_groups} group(s) "
            f"({', '.join(sorted(table['group'].unique())[:5])}); lower data.n_folds, add nights "
            "or stations, or group otherwise (data.group_by)"
        )
    if table["label"].nunique() < 2:
        raise SplitError(
            f"every image is labelled {table['label'].iloc[0]!r}; a classifier needs both "
            "'clear' and 'cloudy' images"
        )
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=split_seed)
    folds = pd.Series(-1, index=table.index)
    y = (table["label"] == "clear").astype(int)
    for k, (_, val_idx) in enumerate(splitter.split(table, y, groups=table["group"])):
        folds.iloc[val_idx] = k
    out = table[["image_filename", "label", "group"]].copy()
    out["fold"] = folds.astype(int)
    return out


def check_folds(splits: pd.DataFrame) -> list[str]:
    """Return warnings about folds; raise when a fold cannot be trained.

    A training part with a single class cannot teach a classifier: error. A validation fold
    with a single class still yields valid out-of-fold probabilities, but its own AUROC is
    undefined: warning.
    """
    warnings = []
    leaking = splits.groupby("group")["fold"].nunique()
    if (leaking > 1).any():
        raise SplitError(f"groups in more than one fold: {', '.join(leaking[leaking > 1].index)}")
    for k in sorted(splits["fold"].unique()):
        val = splits[splits["fold"] == k]
        train = splits[splits["fold"] != k]
        if train["label"].nunique() < 2:
            raise SplitError(
                f"fold {k}: its training part holds only {train['label'].iloc[0]!r} images; "
                "add station-nights with the other class or lower data.n_folds"
            )
        if val["label"].nunique() < 2:
            warnings.append(
                f"fold {k}: validation holds only {val['label'].iloc[0]!r} images "
                f"({len(val)} images); its own AUROC is undefined, pooled OOF results stay valid"
            )
    return warnings


def compare_splits(stored: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """Differences between a stored ``splits.csv`` and the current labelled data."""
    old = stored.set_index("image_filename")
    new = table.set_index("image_filename")
    added = sorted(set(new.index) - set(old.index))
    removed = sorted(set(old.index) - set(new.index))
    common = sorted(set(new.index) & set(old.index))
    relabelled = [n for n in common if old.at[n, "label"] != new.at[n, "label"]]
    regrouped = [n for n in common if old.at[n, "group"] != new.at[n, "group"]]
    diffs = []
    for what, names in (("added", added), ("removed", removed),
                        ("relabelled", relabelled), ("regrouped", regrouped)):
        if names:
            diffs.append(f"{len(names)} image(s) {what} (first: {names[0]})")
    return diffs


def load_or_create_splits(
    splits_csv: str | Path, table: pd.DataFrame, n_folds: int, split_seed: int
) -> pd.DataFrame:
    """Reuse the experiment's ``splits.csv`` or write it; refuse when the data changed.

    Callers that may run beside each other hold the experiment's claims lock around this
    (the datamodule's ``splits_guard``), so one job makes the file and the others read it.
    """
    splits_csv = Path(splits_csv)
    if splits_csv.is_file():
        stored = pd.read_csv(splits_csv, dtype={"group": str})
        missing = [c for c in SPLIT_COLUMNS if c not in stored.columns]
        if missing:
            raise SplitError(f"{splits_csv}: missing column(s) {', '.join(missing)}; "
                             "delete it or choose another name=")
        diffs = compare_splits(stored, table)
        if diffs:
            raise SplitError(
                f"the labelled data changed since {splits_csv} was written: {'; '.join(diffs)}. "
                "Folds of one experiment must share one split, so this run is refused. "
                "Start a new experiment with name=<new name> (or delete that experiment folder)"
            )
        stored_folds = stored["fold"].nunique()
        if stored_folds != n_folds:
            raise SplitError(
                f"{splits_csv} has {stored_folds} folds but data.n_folds={n_folds}; "
                "set name=<new name> for a different number of folds"
            )
        # Same data, same number of folds: the folds must also be this seed's (a job that
        # stopped before training leaves splits.csv but no fold that would catch the change).
        expected = assign_folds(table, n_folds, split_seed).set_index("image_filename")["fold"]
        if not (stored.set_index("image_filename")["fold"].reindex(expected.index)
                == expected).all():
            raise SplitError(
                f"{splits_csv} holds other folds than data.split_seed={split_seed} gives (made "
                "with another split seed or by hand); set name=<new name> for this seed "
                "(or delete that experiment folder)")
        log.info("splits: reusing %s (%d images, %d folds)", splits_csv, len(stored), n_folds)
        return stored[SPLIT_COLUMNS]
    splits = assign_folds(table, n_folds, split_seed)
    write_csv(splits_csv, splits)
    log.info("splits: wrote %s (%d images, %d groups, %d folds, split seed %d)", splits_csv,
             len(splits), splits["group"].nunique(), n_folds, split_seed)
    return splits
