"""Hydra launchers for fold jobs: the project's ``conf/hydra/launcher/{joblib,submitit_slurm,
submitit_local}.yaml`` under the names users know from the plugins.

The launcher plugins register configs of the same names in Hydra's ConfigStore. Hydra 1.3 would
merge ours into theirs ("automatic schema matching", deprecated) and print a deprecation warning
in every job process. Ours are complete (each names its ``_target_`` and every key of the
plugin's), so the plugins' entries are dropped once plugin discovery has registered them. Hydra
hands its ConfigStore to every job (joblib worker, submitit job), so no job sees them either.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins

PROJECT_LAUNCHERS = ("joblib", "submitit_slurm", "submitit_local")


def use_project_launcher_configs() -> None:
    """Call before ``@hydra.main`` runs (the entry point's import)."""
    Plugins.instance()  # plugin discovery registers the plugins' configs now, not later
    launchers = ConfigStore.instance().repo.get("hydra", {}).get("launcher", {})
    for name in PROJECT_LAUNCHERS:
        launchers.pop(f"{name}.yaml", None)
