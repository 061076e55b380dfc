"""How the composed Hydra config meets the library: the run-name resolver, the loggable copy.

:func:`register_resolvers` must run before Hydra composes ``train.yaml`` (the entry points
and tests call it): the ``gmn.run_name`` resolver names a job's folder (``fold_{k}`` or
``final``, by :func:`gmn_weather.experiment.run_name`) for Hydra's output dir and the
loggers. :func:`loggable_config` is the resolved
config as files and W&B may see it: no Hydra internals, no secrets.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from gmn_base.redaction import redact_secrets
from gmn_weather.experiment import run_name


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("gmn.run_name"):
        OmegaConf.register_new_resolver("gmn.run_name", run_name)


def loggable_config(cfg: DictConfig) -> dict:
    """The resolved run config without Hydra internals and secrets, for loggers and files."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    return redact_secrets(container)
