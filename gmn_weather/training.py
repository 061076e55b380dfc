"""``train(cfg)``: one cross-validation fold (``mode=fold``) or the final model (``mode=final``).

Builds the DataModule, model, callbacks, loggers and Trainer from the composed Hydra config,
records the run's settings fingerprint in ``run_info.json``, trains, and then either writes
the fold's out-of-fold predictions (pooling the experiment when this job completes the set)
or exports ``final/``. Outputs go to ``${paths.output_root}/${name}/fold_{k}`` or ``final``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gmn_base.atomic import remove_stale_temporaries, write_json, write_text
from gmn_weather.config import (
    fingerprint,
    loggable_config,
    register_resolvers,
    run_name,
    training_settings,
)
from gmn_weather.export import export_final
from gmn_weather.labels import LabelsError
from gmn_weather.model import BackboneSettingError, PretrainedWeightsError
from gmn_weather.pooling import (
    RUN_INFO,
    PoolingError,
    check_experiment_consistency,
    pool_if_complete,
)
from gmn_weather.splits import SplitError, compare_splits

log = logging.getLogger(__name__)



class LoggerSetupError(RuntimeError):
    """A metric logger could not start (e.g. W&B without a key)."""


# Errors whose message says what to change; entry points print them without a traceback.
USER_ERRORS = (LabelsError, SplitError, PoolingError, PretrainedWeightsError,
               BackboneSettingError, LoggerSetupError)

# Lightning hints that do not apply here (small CPU data sets, optional cloud packages).
_HARMLESS_WARNINGS = (
    r".*does not have many workers.*",
    r".*The number of training batches .* is smaller than the logging interval.*",
    r".*litlogger.*",
    r".*litmodels.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
)
_HARMLESS_INFO = ("litlogger", "litmodels")


def _not_a_sales_tip(record: logging.LogRecord) -> bool:
    return not any(word in str(record.msg) for word in _HARMLESS_INFO)


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's known-harmless hints for the duration of one training job."""
    lightning_log = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    lightning_log.addFilter(_not_a_sales_tip)
    try:
        with warnings.catch_warnings():
            for pattern in _HARMLESS_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        lightning_log.removeFilter(_not_a_sales_tip)


def _build(spec, **kwargs):
    """``instantiate``, letting an error that already says what to change surface as itself
    (Hydra would wrap it in an InstantiationException and print it as a crash)."""
    try:
        return instantiate(spec, **kwargs)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, USER_ERRORS):
            raise exc.__cause__ from None
        raise


def experiment_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.output_root) / str(cfg.name)


def _loggers(cfg: DictConfig) -> list:
    loggers = [instantiate(spec) for spec in (cfg.get("logger") or {}).values()
               if spec is not None and "_target_" in spec]
    for logger in loggers:
        # Lightning always passes wandb.init(anonymous=None), which recent wandb answers with a
        # deprecation warning on every run; the setting has no effect, so it is dropped.
        init_kwargs = getattr(logger, "_wandb_init", None)
        if isinstance(init_kwargs, dict) and init_kwargs.get("anonymous") is None:
            init_kwargs.pop("anonymous", None)
    return loggers


def _callbacks(cfg: DictConfig, run_dir: Path) -> list:
    callbacks = []
    specs = OmegaConf.to_container(cfg.get("callbacks") or {}, resolve=True)
    oof = specs.pop("oof", None) or {}
    checkpoint = specs.pop("model_checkpoint", None)
    if checkpoint is not None:
        checkpoint["dirpath"] = str(run_dir / "checkpoints")
        if cfg.mode == "fold" and oof.get("weights") == "best" and not checkpoint.get("monitor"):
            checkpoint.update(monitor="val/loss", mode="min", save_top_k=1)
        callbacks.append(instantiate(checkpoint))
    for spec in specs.values():
        if spec and "_target_" in spec:
            callbacks.append(instantiate(spec))
    if cfg.mode == "fold":
        callbacks.append(instantiate({**oof, "output_csv": str(run_dir / "oof_predictions.csv")}))
    return callbacks


def train(cfg: DictConfig) -> dict:
    """Train one fold or the final model; return the run's final metrics and output paths."""
    register_resolvers()
    mode = str(cfg.mode)
    if mode == "fold" and not 0 <= int(cfg.fold) < int(cfg.data.n_folds):
        raise SplitError(f"fold={cfg.fold} is outside 0..{int(cfg.data.n_folds) - 1} "
                         f"(data.n_folds={cfg.data.n_folds})")
    name_of_run = run_name(mode, cfg.fold)
    exp_dir = experiment_dir(cfg)
    run_dir = exp_dir / name_of_run
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(exp_dir)
    remove_stale_temporaries(run_dir)
    settings = training_settings(cfg)
    fp = fingerprint(settings)
    if mode == "fold":
        check_experiment_consistency(exp_dir, fp, settings)
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)

    augmentation = OmegaConf.to_container(cfg.augmentation, resolve=True)
    datamodule = _build(
        cfg.data, augmentation=augmentation, mode=mode, fold=int(cfg.fold),
        splits_csv=str(exp_dir / "splits.csv") if mode == "fold" else None, _convert_="all")
    datamodule.prepare_table()
    report = datamodule.report
    overridden = report.overridden + report.removed_by_override
    if cfg.data.get("label_overrides"):
        # Said on the console at start, so nobody trains on reviewed labels unknowingly.
        log.info("label overrides: %d rows overridden by %s (%d relabelled, %d removed)",
                 overridden, cfg.data.label_overrides, report.overridden,
                 report.removed_by_override)

    write_json(run_dir / RUN_INFO, {
        "mode": mode, "fold": int(cfg.fold) if mode == "fold" else None,
        "n_folds": int(cfg.data.n_folds), "name": str(cfg.name), "fingerprint": fp,
        "oof_weights": settings["oof_weights"], "settings": settings,
        "n_train": len(datamodule.train_table), "n_val": len(datamodule.val_table),
        "fold_warnings": datamodule.fold_warnings,
        "started_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })
    write_text(run_dir / "config.yaml", OmegaConf.to_yaml(loggable_config(cfg)))

    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model = _build(model_cfg, preprocessing=datamodule.preprocessing,
                   _recursive_=False, _convert_="all")

    loggers = _loggers(cfg)
    _log_config(loggers, loggable_config(cfg))
    trainer_kwargs = {"logger": loggers or False, "callbacks": _callbacks(cfg, run_dir),
                      "default_root_dir": str(run_dir)}
    if mode == "final":
        trainer_kwargs["limit_val_batches"] = 0
    try:
        with _quiet_lightning():
            trainer: pl.Trainer = instantiate(cfg.trainer, **trainer_kwargs)
            trainer.fit(model, datamodule=datamodule)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        result = {"run_dir": str(run_dir), "metrics": metrics, "fingerprint": fp}
        if mode == "fold":
            rule = OmegaConf.to_container(cfg.analyze, resolve=True)
            pooled = pool_if_complete(exp_dir, fp, **rule)
            if pooled is not None:
                log.info("all folds present; pooled:\n%s", pooled.report())
                result["pooled"] = pooled
        else:
            trained_on = {"n_images": len(datamodule.train_table),
                          "n_clear": int((datamodule.train_table["label"] == "clear").sum()),
                          "labels_csv": str(cfg.data.labels_csv),
                          "image_dir": str(cfg.data.image_dir),
                          "label_overrides": cfg.data.get("label_overrides"),
                          "overridden_rows": overridden,
                          "epochs": int(trainer.current_epoch),
                          "differs_from_cv_data": _final_data_differences(exp_dir, datamodule)}
            result["card"] = export_final(run_dir, model, exp_dir, fp, trained_on, str(cfg.name))
        return result
    finally:
        _finish_wandb(loggers)


def _log_config(loggers: list, config: dict) -> None:
    for logger in loggers:
        if type(logger).__name__ != "WandbLogger":
            logger.log_hyperparams(config)
            continue
        import wandb

        try:  # the W&B run starts here
            logger.log_hyperparams(config)
        except wandb.errors.UsageError as exc:
            raise LoggerSetupError(
                f"W&B could not start ({exc}). Log in with `wandb login` or WANDB_API_KEY, "
                "or run offline with WANDB_MODE=offline (sync later with `wandb sync`), "
                "or use logger=csv"
            ) from exc


def _final_data_differences(exp_dir: Path, datamodule) -> list[str]:
    """How the final model's data differ from the experiment's CV split (empty: same)."""
    splits_csv = exp_dir / "splits.csv"
    if not splits_csv.is_file():
        return []
    diffs = compare_splits(pd.read_csv(splits_csv, dtype={"group": str}), datamodule.table)
    if diffs:
        log.warning("final model: the labelled data differ from the cross-validation split "
                    "(%s); the embedded threshold was chosen on the older data",
                    "; ".join(diffs))
    return diffs


def _finish_wandb(loggers: list) -> None:
    """One W&B run per job: close it so the next multirun job starts a new one."""
    if any(type(logger).__name__ == "WandbLogger" for logger in loggers):
        import wandb

        wandb.finish()
