"""How the composed Hydra config meets the library: resolvers and the loggable copy.

:func:`register_resolvers` must run before Hydra composes ``train.yaml`` (the entry points
and tests call it). ``gmn.run_name`` names a job's folder (``fold_{k}``, ``cv`` or
``final``, by :func:`gmn_weather.experiment.run_name`) for Hydra's output dir and the
loggers. ``gmn.experiment_name`` and ``gmn.training_overrides`` read the running job's
command-line overrides (``hydra.overrides.task``; none outside a Hydra job) and turn them
into the experiment's name and its defining overrides (:mod:`gmn_weather.experiment_names`).
``gmn.analyze_log_dir`` puts ``analyze.py``'s log under the experiment, or beside all of
them for ``mode=compare``. :func:`loggable_config` is the resolved config as files and W&B
may see it: no Hydra internals, no secrets.

:func:`save_hydra_record` writes Hydra's record of a training job (``.hydra/config.yaml``,
``hydra.yaml``, ``overrides.yaml``, what Hydra itself writes before the job starts) once the
job has claimed its run folder: ``train.yaml`` turns Hydra's own writing off, since a job that
is then refused (another job trains that folder) would have overwritten the record of the
job that is running there.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from gmn_base.atomic import write_text
from gmn_base.redaction import redact_secrets
from gmn_weather.experiment import HYDRA_OVERRIDES_YAML, run_name
from gmn_weather.experiment_names import (
    TrainingOverride,
    experiment_name,
    parse_training_overrides,
)


def job_training_overrides() -> list[TrainingOverride]:
    """The running Hydra job's overrides that change training (none outside a Hydra job)."""
    if not HydraConfig.initialized():
        return []
    hydra = HydraConfig.get()
    return parse_training_overrides(task_overrides(), hydra.runtime.choices.keys())


def task_overrides() -> list[str]:
    """The running Hydra job's command-line overrides as typed: interpolations stay text (a
    secret given on the command line is an ``${oc.env:...}`` by now and must stay one)."""
    if not HydraConfig.initialized():
        return []
    return OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)


def _experiment_name(stem: str) -> str:
    return experiment_name(str(stem), job_training_overrides())


def _training_overrides() -> list[str]:
    return [o.canonical for o in job_training_overrides()]


def _analyze_log_dir(mode: str, name: str) -> str:
    return "logs/compare" if mode == "compare" else f"{name}/logs/analyze"


def register_resolvers() -> None:
    for resolver_name, function in (("gmn.run_name", run_name),
                                    ("gmn.experiment_name", _experiment_name),
                                    ("gmn.training_overrides", _training_overrides),
                                    ("gmn.analyze_log_dir", _analyze_log_dir)):
        if not OmegaConf.has_resolver(resolver_name):
            OmegaConf.register_new_resolver(resolver_name, function)


def loggable_config(cfg: DictConfig) -> dict:
    """The resolved run config without Hydra internals and secrets, for loggers and files."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    return redact_secrets(container)


def save_hydra_record(job_cfg: DictConfig, folder: str | Path) -> bool:
    """Hydra's record of the running job in ``folder/.hydra`` when ``folder`` is the job's
    Hydra output folder (nothing outside a Hydra job, nothing for the fold jobs of a
    ``mode=cv`` job, whose record is in ``cv/``): the job's config, Hydra's own and the
    overrides, unresolved as Hydra writes them (a secret given on the command line stays an
    ``${oc.env:...}``). Returns whether it wrote."""
    if not HydraConfig.initialized():
        return False
    hydra_cfg = HydraConfig.instance().cfg
    output_dir = OmegaConf.select(hydra_cfg, "hydra.runtime.output_dir", default=None,
                                  throw_on_missing=False)  # unset where a test composed a config
    if output_dir is None or Path(str(output_dir)).resolve() != Path(folder).resolve():
        return False
    overrides = Path(folder) / HYDRA_OVERRIDES_YAML
    write_text(overrides.parent / "config.yaml", OmegaConf.to_yaml(job_cfg))
    write_text(overrides.parent / "hydra.yaml", OmegaConf.to_yaml(hydra_cfg))
    write_text(overrides, OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task))
    return True
