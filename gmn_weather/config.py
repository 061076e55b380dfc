"""Config helpers shared by the entry points: resolvers, run names, fingerprints, redaction.

:func:`register_resolvers` must run before Hydra composes ``train.yaml`` (the entry points
and tests call it). The fingerprint is a hash of the settings that decide a fold's result,
so folds trained differently are never pooled; keys that only say where or how fast to run
(workers, accelerator, progress bars, loggers) are left out of it.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

SECRET_KEY_RE = re.compile(r"(api_?key|token|secret|password|passwd|credential)", re.IGNORECASE)
REDACTED = "<redacted>"

# Keys that do not change what a fold learns.
_NOT_FINGERPRINTED = {
    "data": {"num_workers"},
    "trainer": {"accelerator", "devices", "enable_progress_bar", "enable_model_summary",
                "log_every_n_steps", "default_root_dir", "precision_note"},
}


def run_name(mode: str, fold: Any) -> str:
    """``fold_{k}`` for a CV fold, ``final`` for the final model."""
    if mode == "final":
        return "final"
    if mode == "fold":
        return f"fold_{fold}"
    raise ValueError(f"mode={mode!r}: expected 'fold' or 'final'")


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("gmn.run_name"):
        OmegaConf.register_new_resolver("gmn.run_name", run_name)


def redact_secrets(value: Any) -> Any:
    """Copy of a nested dict/list with values under secret-looking keys replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if SECRET_KEY_RE.search(str(k)) and v not in (None, "")
                    else redact_secrets(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    return value


def loggable_config(cfg: DictConfig) -> dict:
    """The resolved run config without Hydra internals and secrets, for loggers and files."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    return redact_secrets(container)


def training_settings(cfg: DictConfig) -> dict:
    """The settings that decide a fold's result (what the fingerprint covers)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    settings = {}
    for group in ("data", "model", "augmentation", "trainer"):
        section = dict(container.get(group) or {})
        for key in _NOT_FINGERPRINTED.get(group, ()):
            section.pop(key, None)
        settings[group] = section
    settings["seed"] = container.get("seed")
    settings["oof_weights"] = (container.get("callbacks") or {}).get("oof", {}).get("weights", "last")
    return redact_secrets(settings)


def fingerprint(settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
