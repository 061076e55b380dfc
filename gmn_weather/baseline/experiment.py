"""``model=features_gbm``: the feature baseline as an experiment, on the networks' own folds.

``python train.py mode=cv model=features_gbm`` (or ``-m fold=0,1,2 model=features_gbm``)
writes what a network's fold jobs write: ``splits.csv`` from the same labelled data and split
seed (so the very same folds), ``fold_{k}/run_info.json`` and ``config.yaml`` with the
settings fingerprint, and ``fold_{k}/oof_predictions.csv``; then it pools like any
experiment (``pooled_metrics.json``, the operating point, the pooled W&B run), so the
baseline takes part in every comparison. The model config names scikit-learn's
``HistGradientBoostingClassifier`` as its ``_target_``; its other keys are that class's
arguments. Image features are cached once per image folder under
``${paths.output_root}/feature_cache/``. There is no final model: the baseline is there to
be compared with.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from sklearn.ensemble import HistGradientBoostingClassifier

from gmn_weather.baseline.feature_cache import cache_path_for, image_feature_table
from gmn_weather.baseline.gbm import fold_oof
from gmn_weather.decision_files import finish_fold
from gmn_weather.experiment import ExperimentDir, ExperimentError, OOFRecord, RunInfo
from gmn_weather.experiment_locks import claim_run, claims
from gmn_weather.fingerprint import fingerprint, training_settings
from gmn_weather.hydra_config import loggable_config, save_hydra_record
from gmn_weather.labelled_images import load_labelled_images
from gmn_weather.pooling import PooledResult
from gmn_weather.splits import check_folds, load_or_create_splits

log = logging.getLogger(__name__)

BASELINE_TARGET = "sklearn.ensemble.HistGradientBoostingClassifier"
_ESTIMATOR_ARGUMENTS = set(inspect.signature(HistGradientBoostingClassifier).parameters)


def is_feature_baseline(model_cfg) -> bool:
    return (model_cfg or {}).get("_target_") == BASELINE_TARGET


@dataclass
class BaselineRun:
    run_dir: Path
    fingerprint: str
    pooled: PooledResult | None


def estimator_params(model_cfg: DictConfig) -> dict:
    """The model config's scikit-learn arguments; a key the estimator does not take is an
    error (network keys such as model.backbone come from debug/ or experiment/ configs)."""
    params = OmegaConf.to_container(model_cfg, resolve=True)
    params.pop("_target_", None)
    unknown = sorted(set(params) - _ESTIMATOR_ARGUMENTS)
    if unknown:
        raise ExperimentError(
            f"model.{unknown[0]} is not an argument of {BASELINE_TARGET} (model=features_gbm); "
            "network settings (model.backbone, debug=tiny, experiment=...) do not apply to the "
            "feature baseline: drop them from the command line")
    if "random_state" in params:
        raise ExperimentError("model.random_state: the feature baseline takes its seed from "
                              "seed=; drop model.random_state")
    return params


def _run_info(cfg: DictConfig, fold: int, fingerprint_: str, settings: dict, splits,
              warnings: list[str]) -> RunInfo:
    n_val = int((splits["fold"] == fold).sum())
    return RunInfo(
        mode="fold", fold=fold, n_folds=int(cfg.data.n_folds), name=str(cfg.name),
        fingerprint=fingerprint_, oof_weights="last", settings=settings,
        n_train=len(splits) - n_val, n_val=n_val, fold_warnings=warnings,
        started_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        overrides=list(cfg.get("experiment_overrides") or []))


def _baseline_fold(cfg: DictConfig, experiment: ExperimentDir, fold: int, features, splits,
                   params: dict, start: RunInfo) -> PooledResult | None:
    """One fold like a fold job does it: claim its folder (other settings under this name are
    refused), fit and predict, write the predictions with their record, pool when complete."""
    run = experiment.fold(fold)
    claim = claim_run(experiment, run, start, one_configuration=True)
    try:
        experiment.prepare_run(run)
        save_hydra_record(cfg, run.path)
        run.write_config(OmegaConf.to_yaml(loggable_config(cfg)))
        oof = fold_oof(splits, features, fold, int(cfg.seed), params)
        record = OOFRecord(start.fingerprint, start.settings, start.oof_weights,
                           written_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           overrides=start.overrides)
        path, pooled = finish_fold(experiment, fold, oof, record, **cfg.analyze)
    finally:
        claim.release()
    log.info("baseline fold %d: wrote %d out-of-fold predictions to %s", fold, len(oof), path)
    return pooled


def run_baseline(cfg: DictConfig) -> BaselineRun:
    """Fit and predict the folds ``mode`` asks for (``cv``: all; ``fold``: ``cfg.fold``),
    write them like fold jobs do, and pool when the set is complete."""
    mode = str(cfg.mode)
    if mode not in ("fold", "cv"):
        raise ExperimentError(f"mode={mode}: the feature baseline (model=features_gbm) has no "
                              "final model; it is trained fold by fold for comparison "
                              "(mode=cv or mode=fold)")
    params = estimator_params(cfg.model)
    experiment = ExperimentDir.of(cfg.paths.output_root, cfg.name)
    settings = training_settings(cfg)
    fingerprint_ = fingerprint(settings)
    experiment.check_accepts(fingerprint_, settings)  # early; each fold's claim checks again
    data = cfg.data
    # The datamodule's own call: same labels, overrides, grouping and seed give the same folds.
    table, report = load_labelled_images(data.labels_csv, data.image_dir,
                                         data.get("min_edge_distance_s"),
                                         data.get("label_overrides"), data.group_by)
    report.log(log, data.labels_csv, data.image_dir)
    with claims(experiment):  # jobs starting together: one makes splits.csv
        splits = load_or_create_splits(experiment.splits_csv, table, int(data.n_folds),
                                       int(data.split_seed))
    warnings = check_folds(splits)
    folds = range(int(data.n_folds)) if mode == "cv" else [int(cfg.fold)]
    features = image_feature_table(splits["image_filename"], data.image_dir,
                                   cache_path_for(cfg.paths.output_root, data.image_dir))
    if mode == "cv":
        save_hydra_record(cfg, experiment.cv.path)
    pooled = None
    for fold in folds:
        pooled = _baseline_fold(cfg, experiment, fold, features, splits, params,
                                _run_info(cfg, fold, fingerprint_, settings, splits,
                                          warnings)) or pooled
    if pooled is not None:
        log.info("all folds present; pooled:\n%s", pooled.report())
    run_dir = experiment.run(mode, None if mode == "cv" else int(cfg.fold)).path
    return BaselineRun(run_dir, fingerprint_, pooled)
