"""Gradient boosting on image features, fold by fold on an experiment's own splits.

The baseline every network is measured against (gradient boosting on hand-made sky
statistics has beaten a ResNet on all-sky cloud data): scikit-learn's
``HistGradientBoostingClassifier`` is fitted on the training folds of ``splits.csv`` and
predicts ``prob_clear`` for the held-out fold, giving per-fold OOF tables in the columns of
``fold_{k}/oof_predictions.csv``, so the baseline pools and compares like any experiment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from gmn_weather.baseline.feature_cache import image_feature_table
from gmn_weather.pooling import OOF_COLUMNS
from gmn_weather.splits import SPLIT_COLUMNS, SplitError, check_folds

log = logging.getLogger(__name__)

# scikit-learn's defaults, except early stopping: by default it switches on above 10 000
# images and holds out part of the training folds, so results would change with data size.
DEFAULT_PARAMS: dict[str, Any] = {"early_stopping": False}


def _check_splits(splits: pd.DataFrame) -> list[str]:
    missing = [c for c in SPLIT_COLUMNS if c not in splits.columns]
    if missing:
        raise SplitError(f"splits lack column(s) {', '.join(missing)} (expected "
                         f"{','.join(SPLIT_COLUMNS)})")
    labels = set(splits["label"]) - {"clear", "cloudy"}
    if labels:
        raise SplitError(f"unknown label value(s) {', '.join(map(repr, sorted(labels)))} in the "
                         "splits; expected 'clear' or 'cloudy'")
    return check_folds(splits)


def fold_oof(
    splits: pd.DataFrame,
    features: pd.DataFrame,
    fold: int,
    seed: int = 42,
    params: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Fit on every fold but ``fold``; OOF table of ``fold`` (``image_filename`` ... ``prob_clear``).

    ``features`` is indexed by ``image_filename`` (see :func:`image_feature_table`).
    """
    train = splits[splits["fold"] != fold]
    held_out = splits[splits["fold"] == fold]
    if held_out.empty:
        raise SplitError(f"fold {fold} holds no image in the splits")
    model = HistGradientBoostingClassifier(**{**DEFAULT_PARAMS, **(params or {}),
                                              "random_state": seed})
    model.fit(features.loc[train["image_filename"]].to_numpy(),
              (train["label"] == "clear").to_numpy())
    clear_column = list(model.classes_).index(True)
    prob = model.predict_proba(features.loc[held_out["image_filename"]].to_numpy())
    oof = held_out[SPLIT_COLUMNS].reset_index(drop=True)
    oof["prob_clear"] = prob[:, clear_column]
    return oof[OOF_COLUMNS]


def baseline_oof(
    splits: pd.DataFrame,
    image_dir: str | Path,
    cache_path: str | Path,
    seed: int = 42,
    params: Mapping[str, Any] | None = None,
) -> dict[int, pd.DataFrame]:
    """Per-fold OOF tables of the feature baseline on ``splits`` (``splits.csv`` rows).

    Features come from :func:`image_feature_table` (computed once per image, cached in
    ``cache_path``); ``params`` go to ``HistGradientBoostingClassifier`` over
    DEFAULT_PARAMS, with ``random_state=seed``. Returns ``{fold: table}`` for every fold.
    """
    for warning in _check_splits(splits):
        log.warning("baseline: %s", warning)
    features = image_feature_table(splits["image_filename"], image_dir, cache_path)
    tables = {}
    for fold in sorted(int(k) for k in splits["fold"].unique()):
        tables[fold] = fold_oof(splits, features, fold, seed, params)
        log.info("baseline: fold %d predicted (%d images)", fold, len(tables[fold]))
    return tables
