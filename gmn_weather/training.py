"""Training jobs: one cross-validation fold (:func:`train_fold`) or the final model
(:func:`train_final`); :func:`train` is the one dispatch on ``mode`` that ``train.py`` calls
(``mode=cv`` trains every fold in turn, :mod:`gmn_weather.cross_validation`;
``model=features_gbm`` runs the feature baseline, :mod:`gmn_weather.baseline.experiment`).

Both start alike (the settings fingerprint, the claim of the run folder, the seed) and share
one fit: datamodule, model, loggers, callbacks and Trainer from the composed Hydra config, the
run's ``run_info.json`` and ``config.yaml``. A fold job then predicts its validation images
out-of-fold through ``Trainer.predict``; the OOF callback writes them and pools the
experiment when the set is complete. The final job exports ``final/``. Outputs go to
``${paths.output_root}/${name}/fold_{k}`` or ``final`` (:mod:`gmn_weather.experiment`).

Beside other jobs: the run folder is claimed before anything is written
(:func:`gmn_weather.experiment_locks.claim_run`: other settings under the same name, or a
second job for a folder being trained, are refused). A fold already finished under the same
settings is skipped (``retrain=true`` trains it again from scratch); otherwise a job resumes
from its folder's ``last.ckpt`` when that carries its fingerprint (``resume=false`` starts
over, ``ckpt_path=`` names another checkpoint: :mod:`gmn_weather.checkpoints`). Under DDP
(:mod:`gmn_weather.ddp`) only rank zero claims, writes and pools.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytorch_lightning as pl
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gmn_base.settings import SettingError
from gmn_weather.baseline.experiment import is_feature_baseline, run_baseline
from gmn_weather.baseline.feature_cache import FeatureError
from gmn_weather.checkpoints import ResumePlan, SettingsStamp, plan_resume
from gmn_weather.cross_validation import train_cv
from gmn_weather.datamodule import GMNDataModule
from gmn_weather.ddp import ddp_job, job_rank
from gmn_weather.decision_files import pool_if_unpooled
from gmn_weather.experiment import (
    ExperimentDir,
    ExperimentError,
    OOFRecord,
    RunDir,
    RunInfo,
)
from gmn_weather.experiment_locks import claim_run, claims
from gmn_weather.export import export_final
from gmn_weather.fingerprint import fingerprint, training_settings
from gmn_weather.hydra_config import loggable_config, register_resolvers, save_hydra_record
from gmn_weather.job_settings import check_job_settings
from gmn_weather.labelled_images import LabelsError
from gmn_weather.model import BackboneSettingError, PretrainedWeightsError, backbone_data_config
from gmn_weather.objective import ObjectiveSettingError, check_metric, fold_value, pooled_value
from gmn_weather.pooling import PooledResult
from gmn_weather.preprocessing import InputSettingError, describe, resolve_preprocessing
from gmn_weather.splits import SplitError, compare_splits
from gmn_weather.thresholds import ThresholdSettingError
from gmn_weather.trainer_setup import (
    LoggerSetupError,
    build_callbacks,
    build_trainer,
    job_loggers,
    quiet_lightning,
)
from gmn_weather.wandb_outputs import WandbStartError, log_final_artifact, publish_pooled

log = logging.getLogger(__name__)

ONNX_CHECK_IMAGES = 8  # training frames the fp32 ONNX file is checked on against torch

# Errors whose message says what to change; entry points print them without a traceback.
USER_ERRORS = (LabelsError, SplitError, ExperimentError, PretrainedWeightsError,
               BackboneSettingError, LoggerSetupError, InputSettingError, SettingError,
               ThresholdSettingError, FeatureError, ObjectiveSettingError, WandbStartError)


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, float]
    fingerprint: str
    pooled: PooledResult | None = None  # set by the fold job that completed the set
    card: dict | None = None  # final/model.json of a final job
    # optimized_metric of the pooled experiment, else of this fold (gmn_weather/objective.py)
    objective: float | None = None
    skipped: bool = False  # the fold was finished under these settings already
    resumed_after_epochs: int | None = None  # the job resumed from a checkpoint


@dataclass
class Job:
    """One training job about to run: where it writes and under which settings."""

    cfg: DictConfig
    mode: str
    fold: int | None
    experiment: ExperimentDir
    run: RunDir
    settings: dict
    fingerprint: str


def _build(spec, **kwargs):
    """``instantiate``, letting an error that already says what to change surface as itself
    (Hydra would wrap it in an InstantiationException and print it as a crash)."""
    try:
        return instantiate(spec, **kwargs)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, USER_ERRORS):
            raise exc.__cause__ from None
        raise


def train(cfg: DictConfig) -> TrainResult:
    """Train what ``mode`` says: one fold (``fold``), every fold in turn (``cv``) or the
    final model (``final``); publish the pooled results to W&B when this job pooled them,
    and set the job's objective (``optimized_metric``, maximised)."""
    check_job_settings(cfg)
    mode, metric = str(cfg.mode), check_metric(str(cfg.optimized_metric))
    if is_feature_baseline(cfg.model):
        run = run_baseline(cfg)
        result = TrainResult(run.run_dir, {}, run.fingerprint, pooled=run.pooled)
    elif mode == "fold":
        result = train_fold(cfg)
    elif mode == "cv":
        experiment = ExperimentDir.of(cfg.paths.output_root, cfg.name)
        save_hydra_record(cfg, experiment.cv.path)  # folds: their own
        pooled = train_cv(cfg, train_fold)
        result = TrainResult(experiment.cv.path, {}, pooled.fingerprint, pooled=pooled)
    elif mode == "final":
        result = train_final(cfg)
    else:
        raise ValueError(f"mode={mode!r}: expected 'fold', 'cv' or 'final'")
    if result.pooled is not None:
        publish_pooled(cfg, result.pooled)
    result.objective = _objective(cfg, result, metric)
    return result


def _objective(cfg: DictConfig, result: TrainResult, metric: str) -> float | None:
    """The pooled metric where the experiment is pooled under this job's settings, else the
    same metric on this fold's OOF predictions; None when neither exists."""
    if result.pooled is not None:
        return pooled_value(result.pooled.pooled_metrics_record(), metric)
    experiment = ExperimentDir.of(cfg.paths.output_root, cfg.name)
    record = experiment.read_pooled_metrics()
    if record is not None and record.get("fingerprint") == result.fingerprint:
        return pooled_value(record, metric)
    if str(cfg.mode) != "fold" or not experiment.fold(int(cfg.fold)).oof_csv.is_file():
        return None
    rule = cfg.analyze
    return fold_value(experiment.read_fold_oof(int(cfg.fold)), metric,
                      float(rule.min_precision), int(rule.min_predicted_clear))


def _start_job(cfg: DictConfig, mode: str, fold: int | None) -> Job:
    register_resolvers()
    experiment = ExperimentDir.of(cfg.paths.output_root, cfg.name)
    run = experiment.run(mode, fold)
    settings = training_settings(cfg)
    return Job(cfg, mode, fold, experiment, run, settings, fingerprint(settings))


@contextmanager
def _claimed(job: Job) -> Iterator[None]:
    """Hold the run folder's claim for the block (rank zero; other ranks follow it)."""
    if job_rank() != 0:
        yield
        return
    start = RunInfo(mode=job.mode, fold=job.fold, n_folds=int(job.cfg.data.n_folds),
                    name=str(job.cfg.name), fingerprint=job.fingerprint,
                    oof_weights=job.settings["oof_weights"], settings=job.settings,
                    started_utc=_now(),
                    overrides=list(job.cfg.get("experiment_overrides") or []))
    claim = claim_run(job.experiment, job.run, start, one_configuration=job.mode == "fold")
    try:
        job.experiment.prepare_run(job.run)
        save_hydra_record(job.cfg, job.run.path)
        yield
    finally:
        claim.release()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _resume_plan(job: Job) -> ResumePlan:
    cfg = job.cfg
    retrain = bool(cfg.get("retrain", False))
    plan = plan_resume(job.run, job.fingerprint, resume=bool(cfg.get("resume", True)) and not retrain,
                       ckpt_path=cfg.get("ckpt_path"),
                       no_resume_reason="retrain=true" if retrain else "resume=false")
    if plan.resuming:
        log.info("%s: resumed from epoch %d (%s)", job.run.name, plan.epochs_done, plan.note)
    elif job_rank() == 0 and job.run.last_ckpt.is_file():
        # Starting over: a kill before this run's first checkpoint must not leave the old
        # one to be resumed next time.
        job.run.last_ckpt.unlink()
    return plan


def _datamodule(job: Job, **kwargs) -> GMNDataModule:
    """The datamodule, with the input spec resolved from the data, augmentation and model."""
    cfg = job.cfg
    augmentation = OmegaConf.to_container(cfg.augmentation, resolve=True)
    image_size = OmegaConf.to_container(cfg.data, resolve=True).get("image_size")
    model = cfg.model
    spec = resolve_preprocessing(
        augmentation, image_size, backbone_data_config(str(model.backbone)),
        pretrained_normalization=bool(model.get("pretrained") or model.get("weights_file")),
        backbone=str(model.backbone))
    log.info("%s", describe(spec))
    datamodule = _build(cfg.data, augmentation=augmentation, preprocessing=spec,
                        mode=job.mode, fold=job.fold or 0, _convert_="all", **kwargs)
    datamodule.prepare_table()
    report = datamodule.report
    if cfg.data.get("label_overrides"):
        # Said on the console at start, so nobody trains on reviewed labels unknowingly.
        log.info("label overrides: %d rows overridden by %s (%d relabelled, %d removed)",
                 report.overridden + report.removed_by_override, cfg.data.label_overrides,
                 report.overridden, report.removed_by_override)
    return datamodule


def _record_run(job: Job, datamodule: GMNDataModule, plan: ResumePlan) -> None:
    if job_rank() != 0:
        return
    job.run.write_run_info(RunInfo(
        mode=job.mode, fold=job.fold, n_folds=int(job.cfg.data.n_folds), name=str(job.cfg.name),
        fingerprint=job.fingerprint, oof_weights=job.settings["oof_weights"],
        settings=job.settings, n_train=len(datamodule.train_table),
        n_val=len(datamodule.val_table), fold_warnings=datamodule.fold_warnings,
        started_utc=_now(), overrides=list(job.cfg.get("experiment_overrides") or []),
        resumed_from=plan.ckpt_path,
        resumed_after_epochs=plan.resumed_after_epochs,
    ))
    job.run.write_config(OmegaConf.to_yaml(loggable_config(job.cfg)))


def _fit(job: Job, datamodule: GMNDataModule, loggers: list, callbacks: list, plan: ResumePlan,
         monitor_best: bool = False, **trainer_overrides) -> tuple[pl.Trainer, pl.LightningModule]:
    """The shared fit: seed, model, Trainer, ``trainer.fit`` (resumed as ``plan`` says);
    return the trainer and model."""
    pl.seed_everything(int(job.cfg.seed), workers=True, verbose=False)
    _record_run(job, datamodule, plan)
    model = _build(OmegaConf.to_container(job.cfg.model, resolve=True),
                   preprocessing=datamodule.preprocessing, _recursive_=False, _convert_="all")
    callbacks = [*callbacks, SettingsStamp(job.fingerprint),
                 *build_callbacks(job.cfg, job.run, monitor_best)]
    trainer = build_trainer(job.cfg, job.run, loggers, callbacks, **trainer_overrides)
    trainer.fit(model, datamodule=datamodule, ckpt_path=plan.ckpt_path)
    return trainer, model


def _metrics(trainer: pl.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def train_fold(cfg: DictConfig) -> TrainResult:
    """Train fold ``cfg.fold`` on the other folds, predict it out-of-fold, pool when complete."""
    fold, n_folds = int(cfg.fold), int(cfg.data.n_folds)
    if not 0 <= fold < n_folds:
        raise SplitError(f"fold={fold} is outside 0..{n_folds - 1} (data.n_folds={n_folds})")
    job = _start_job(cfg, "fold", fold)
    rule = OmegaConf.to_container(cfg.analyze, resolve=True)
    with _claimed(job):
        # The data first: a rerun on changed labels is refused (splits.csv), never skipped.
        datamodule = _datamodule(job, splits_csv=str(job.experiment.splits_csv),
                                 splits_guard=lambda: claims(job.experiment))
        finished = job.run.oof_record()
        if finished is not None and finished.fingerprint == job.fingerprint \
                and not cfg.get("retrain", False):
            return _skip_finished(job, finished, rule)
        plan = _resume_plan(job)
        oof = _build(cfg.callbacks.oof, experiment=str(job.experiment.path), fold=fold,
                     fingerprint=job.fingerprint, rule=rule)
        oof.settings = job.settings  # not through instantiate: it holds _target_ keys
        oof.overrides = list(cfg.get("experiment_overrides") or [])
        with job_loggers(cfg, plan.resumed_after_epochs) as loggers, \
                quiet_lightning(), ddp_job(job.mode, job.fold):
            trainer, model = _fit(job, datamodule, loggers, [oof], plan,
                                  monitor_best=oof.optimistic)
            oof.fit_metrics = metrics = _metrics(trainer)  # Trainer.predict resets them
            trainer.predict(model, datamodule=datamodule, ckpt_path=oof.ckpt_path(trainer),
                            return_predictions=False)
    return TrainResult(job.run.path, metrics, job.fingerprint, pooled=oof.pooled,
                       resumed_after_epochs=plan.resumed_after_epochs)


def _skip_finished(job: Job, finished: OOFRecord, rule: dict) -> TrainResult:
    """A rerun of a finished fold: nothing to train; pool if the set was never pooled."""
    log.info("%s: already finished under these settings (%s, %s); skipped. retrain=true "
             "trains it again", job.run.name, job.run.oof_csv, finished.written_utc)
    pooled = pool_if_unpooled(job.experiment, job.fingerprint, **rule) if job_rank() == 0 \
        else None
    if pooled is not None:
        log.info("all folds present; pooled:\n%s", pooled.report())
    return TrainResult(job.run.path, dict(finished.metrics), job.fingerprint, pooled=pooled,
                       skipped=True)


def train_final(cfg: DictConfig) -> TrainResult:
    """Train on every labelled image and export ``final/`` (weights + model.json)."""
    job = _start_job(cfg, "final", None)
    with _claimed(job):
        plan = _resume_plan(job)
        datamodule = _datamodule(job)
        with job_loggers(cfg, plan.resumed_after_epochs) as loggers, \
                quiet_lightning(), ddp_job(job.mode, job.fold):
            trainer, model = _fit(job, datamodule, loggers, [], plan, limit_val_batches=0)
            card = None
            if trainer.is_global_zero:
                export = OmegaConf.to_container(cfg.get("export") or {}, resolve=True)
                sample = None if not export.get("onnx", True) else datamodule.sample_inputs(
                    int(export.get("calibration_images", 64)) if export.get("int8")
                    else ONNX_CHECK_IMAGES)  # checks the ONNX file, calibrates int8
                card = export_final(job.experiment, model, job.fingerprint,
                                    _trained_on(job, datamodule, int(trainer.current_epoch)),
                                    export, sample)
                log_final_artifact(loggers, job.experiment.final, job.experiment.name, card)
    return TrainResult(job.run.path, _metrics(trainer), job.fingerprint, card=card,
                       resumed_after_epochs=plan.resumed_after_epochs)


def _trained_on(job: Job, datamodule: GMNDataModule, epochs: int) -> dict:
    data, table, report = job.cfg.data, datamodule.train_table, datamodule.report
    return {"n_images": len(table), "n_clear": int((table["label"] == "clear").sum()),
            "labels_csv": str(data.labels_csv), "image_dir": str(data.image_dir),
            "label_overrides": data.get("label_overrides"),
            "overridden_rows": report.overridden + report.removed_by_override,
            "epochs": epochs,
            "differs_from_cv_data": _final_data_differences(job.experiment, datamodule)}


def _final_data_differences(experiment: ExperimentDir, datamodule: GMNDataModule) -> list[str]:
    """How the final model's data differ from the experiment's CV split (empty: same)."""
    if not experiment.splits_csv.is_file():
        return []
    diffs = compare_splits(experiment.read_splits(), datamodule.table)
    if diffs:
        log.warning("final model: the labelled data differ from the cross-validation split "
                    "(%s); the embedded threshold was chosen on the older data",
                    "; ".join(diffs))
    return diffs
