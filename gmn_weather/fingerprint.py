"""The settings that decide a training job's result, and their fingerprint.

Folds trained under different settings must never be pooled, so every job records
:func:`training_settings` and its :func:`fingerprint` (a short hash) in its run info; the
experiment folder compares them (:mod:`gmn_weather.experiment`). Keys that only say where
or how fast to run (workers, accelerator, progress bars, loggers) are left out.
"""

from __future__ import annotations

import hashlib
import json

from omegaconf import DictConfig, OmegaConf

from gmn_base.redaction import redact_secrets

# Keys that do not change what a fold learns (nor the experiment's name:
# gmn_weather/experiment_names.py).
NOT_FINGERPRINTED = {
    "data": {"num_workers"},
    "trainer": {"accelerator", "devices", "enable_progress_bar", "enable_model_summary",
                "log_every_n_steps", "default_root_dir"},
}


def training_settings(cfg: DictConfig) -> dict:
    """The settings that decide a fold's result (what the fingerprint covers)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    settings = {}
    for group in ("data", "model", "augmentation", "trainer"):
        section = dict(container.get(group) or {})
        for key in NOT_FINGERPRINTED.get(group, ()):
            section.pop(key, None)
        settings[group] = section
    settings["seed"] = container.get("seed")
    settings["oof_weights"] = (container.get("callbacks") or {}).get("oof", {}).get("weights", "last")
    return redact_secrets(settings)


def fingerprint(settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def configuration_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two settings dicts."""
    diffs = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "<absent>"), b.get(key, "<absent>")
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += configuration_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            diffs.append(f"{prefix}{key}: {va!r} vs {vb!r}")
    return diffs
