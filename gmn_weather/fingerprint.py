"""The settings that decide a training job's result, and their fingerprint.

Folds trained under different settings must never be pooled, so every job records
:func:`training_settings` and its :func:`fingerprint` (a short hash) in its run info; the
experiment folder compares them (:mod:`gmn_weather.experiment`). Keys that only say where
or how fast to run (workers, accelerator, progress bars, loggers) are left out; the number of
devices is left out too, but the effective batch size it makes (devices x nodes x
``data.batch_size`` x ``trainer.accumulate_grad_batches``) is in, since it changes training.
"""

from __future__ import annotations

import hashlib
import json

from omegaconf import DictConfig, OmegaConf

from gmn_base.redaction import redact_secrets

# Keys that do not change what a fold learns (nor the experiment's name:
# gmn_weather/experiment_names.py).
NOT_FINGERPRINTED = {
    # The input cache changes where pixels come from, not which: decoding is the same either
    # way. skip_unreadable drops images, which the split check sees as other data anyway.
    "data": {"num_workers", "cache", "cache_dir", "skip_unreadable"},
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
    settings["effective_batch_size"] = effective_batch_size(container)
    settings["seed"] = container.get("seed")
    settings["oof_weights"] = (container.get("callbacks") or {}).get("oof", {}).get("weights", "last")
    return redact_secrets(settings)


def device_count(devices: object, accelerator: object = "auto") -> int:
    """How many devices Lightning runs on for ``trainer.devices`` (per node): an int, a list
    or a comma string of device ids, ``-1`` (all), or ``auto`` (one CPU; all GPUs)."""
    import torch  # here, not at the top: prediction with the onnx backend runs without torch

    gpus = torch.cuda.device_count()
    on_gpu = str(accelerator) in ("gpu", "cuda") or (str(accelerator) == "auto" and gpus > 0)
    if devices in (None, "auto", -1, "-1"):
        return max(1, gpus) if on_gpu else 1
    if isinstance(devices, (list, tuple)):
        return len(devices)
    text = str(devices).strip()
    if "," in text:
        return len([d for d in text.split(",") if d.strip()])
    return int(text)


def effective_batch_size(container: dict) -> int:
    """Images per optimizer step over every process: devices x nodes x batch x accumulation."""
    trainer, data = container.get("trainer") or {}, container.get("data") or {}
    return (device_count(trainer.get("devices", "auto"), trainer.get("accelerator", "auto"))
            * int(trainer.get("num_nodes") or 1) * int(data.get("batch_size") or 1)
            * int(trainer.get("accumulate_grad_batches") or 1))


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
