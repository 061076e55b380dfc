"""What W&B receives beyond each job's metric curves: the pooled run and the model artifact.

Fold runs only ever see a third of the data; the numbers worth comparing are pooled. So each
experiment gets one W&B run of its own in its group (``job_type=pooled``, name ``pooled``)
when its folds are pooled: the summary is ``pooled_metrics.json`` (pooled AP, AUROC,
recall at the minimum precision, the operating point, intervals, per-fold spread), with the
PR curve as an image and the threshold table, the per-fold figures, the OOF predictions
and the report page's error gallery (with thumbnails) as tables; its config is the folds' training settings (secret-free) and the overrides that
define the experiment. It is started only after the job's own run has finished (one run at
a time per process) and has a fixed id per experiment and configuration, so pooling again
(``python analyze.py logger=wandb``) updates that run instead of adding one. A final job
logs ``final/`` (checkpoint + model.json) as a ``model`` artifact aliased with the
experiment name.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence

import pandas as pd
from omegaconf import DictConfig

from gmn_weather.experiment import ExperimentDir, FinalDir
from gmn_weather.pooling import PooledResult
from gmn_weather.report import gallery_table

log = logging.getLogger(__name__)

POOLED_JOB_TYPE = "pooled"
POOLED_RUN_NAME = "pooled"
MODEL_ARTIFACT = "sky-classifier"
WANDB_LOGGER_TARGET = "pytorch_lightning.loggers.WandbLogger"


class WandbStartError(RuntimeError):
    """W&B could not start the pooled run (e.g. online without a key)."""


def wandb_spec(cfg: DictConfig) -> dict | None:
    """Project and entity of the ``logger`` entry that starts W&B, or None without one.

    Only those two keys are read: the others name a training job's run (``${fold}``), which
    analyze.py's config does not have.
    """
    for spec in (cfg.get("logger") or {}).values():
        if spec is not None and spec.get("_target_") == WANDB_LOGGER_TARGET:
            return {"project": spec.get("project"), "entity": spec.get("entity")}
    return None


def pooled_run_id(project: str, experiment: str, fingerprint: str) -> str:
    text = f"{project}\n{experiment}\n{fingerprint}"
    return "pooled-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _folds_frame(result: PooledResult) -> pd.DataFrame:
    return pd.DataFrame([vars(f) for f in result.metrics.folds])


def publish_pooled(cfg: DictConfig, result: PooledResult) -> None:
    """Log ``result`` as the experiment's pooled W&B run when the ``logger`` config has W&B."""
    spec = wandb_spec(cfg)
    if spec is None:
        return
    log_pooled_run(result, ExperimentDir(result.experiment_dir), spec.get("project"),
                   spec.get("entity"), list(cfg.get("tags") or []))


def log_pooled_run(result: PooledResult, experiment: ExperimentDir, project: str | None,
                   entity: str | None, tags: Sequence[str] = ()) -> None:
    """One pooled run: summary, PR curve, threshold/fold/OOF tables; files under the
    experiment folder's ``wandb/``."""
    import wandb

    config = {"name": experiment.name, "overrides": list(result.overrides),
              "fingerprint": result.fingerprint, **result.settings}
    try:
        run = wandb.init(project=project, entity=entity, group=experiment.name,
                         job_type=POOLED_JOB_TYPE, name=POOLED_RUN_NAME, tags=list(tags),
                         id=pooled_run_id(str(project), experiment.name, result.fingerprint),
                         resume="allow", dir=str(experiment.path), config=config,
                         # as conf/logger/wandb.yaml: no command line, host or git state
                         settings=wandb.Settings(x_disable_meta=True))
    except wandb.errors.UsageError as exc:
        raise WandbStartError(
            f"W&B could not start the pooled run of {experiment.path} ({exc}); the pooled "
            "files are written. Log in with `wandb login` or WANDB_API_KEY, or run offline "
            "with WANDB_MODE=offline, then pool again: python analyze.py logger=wandb") from exc
    try:
        run.summary.update(result.pooled_metrics_record())
        logged = {"pr_curve": wandb.Image(str(experiment.pr_curve_png)),
                  "threshold_table": wandb.Table(dataframe=result.table),
                  "fold_metrics": wandb.Table(dataframe=_folds_frame(result)),
                  "oof_predictions": wandb.Table(dataframe=result.oof)}
        if result.written_report is not None:
            logged["error_gallery"] = gallery_table(result.written_report)
        run.log(logged)
    finally:
        run.finish()
    log.info("W&B: pooled run of %s logged (group %s, job_type %s)", experiment.path,
             experiment.name, POOLED_JOB_TYPE)


def log_final_artifact(loggers: Sequence, final: FinalDir, experiment_name: str,
                       card: Mapping) -> None:
    """``final/`` as a W&B model artifact of the job's run, aliased with the experiment name."""
    runs = [logger.experiment for logger in loggers if type(logger).__name__ == "WandbLogger"]
    if not runs:
        return
    import wandb

    metadata = {key: card.get(key) for key in ("backbone", "threshold", "threshold_source",
                                               "experiment", "fingerprint", "format")}
    artifact = wandb.Artifact(MODEL_ARTIFACT, type="model", metadata=metadata)
    artifact.add_file(str(final.model_ckpt))
    artifact.add_file(str(final.model_json))
    # W&B reserves '/' and ':' in aliases (an explicit name= may hold them).
    alias = experiment_name.replace("/", "-").replace(":", "-")
    runs[0].log_artifact(artifact, aliases=["latest", alias])
    log.info("W&B: %s logged as model artifact %s:%s", final.path, MODEL_ARTIFACT,
             experiment_name)
