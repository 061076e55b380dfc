"""The final model's self-describing export and the loader the torch inference path uses.

``final/`` holds ``model.ckpt`` (state dict plus plain hyperparameters, loadable with
:func:`gmn_weather.model.load_classifier_checkpoint` or Lightning), ``model.onnx`` (and
with ``export.int8=true`` ``model.int8.onnx``) for stations without torch
(:mod:`gmn_weather.onnx_export`), and ``model.json``, which says everything needed to use
them without this project's config: backbone, input size, decode rule, resize rule,
normalisation, channels, what the output means, the ONNX files and their opset, and the
decision threshold (from the experiment's operating point when it belongs to the same
configuration, else 0.5 and a note saying so). ``model.json`` is written before the ONNX
export and again after it, so it only names files that are complete. File names come from :mod:`gmn_weather.experiment`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from gmn_base.atomic import atomic_path, write_json
from gmn_weather.experiment import ExperimentDir, FinalDir
from gmn_weather.final_threshold import DEFAULT_THRESHOLD, threshold_from_operating_point
from gmn_weather.inputs.decode import DECODE_RULE
from gmn_weather.model import SkyClassifier, load_classifier_checkpoint
from gmn_weather.model_card import (
    EXPORT_FORMAT,
    OUTPUT_MEANING,
    CheckpointError,
    card_threshold,
    read_card,
    sibling_card,
)
from gmn_weather.onnx_export import export_station_files

log = logging.getLogger(__name__)


def save_checkpoint(path: Path, model: SkyClassifier) -> None:
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(),
                    "hyper_parameters": dict(model.hparams),
                    "pytorch-lightning_version": pl.__version__}, tmp)


def export_final(experiment: ExperimentDir, model: SkyClassifier, fingerprint: str,
                 trained_on: dict, settings: Mapping[str, Any] | None = None,
                 sample: np.ndarray | None = None) -> dict:
    """Write ``final/``: model.ckpt, the ONNX files ``settings`` (``export.*``) ask for, and
    model.json; return the model card. ``sample``: uint8 network inputs of training frames
    (checks the ONNX file, calibrates the int8 one)."""
    settings = dict(settings or {})
    final = experiment.final
    threshold, source, point = threshold_from_operating_point(experiment, fingerprint)
    if point is None:
        log.warning("final model: threshold %s", source)
    for stale in (final.model_onnx, final.model_int8_onnx):  # from an earlier final model
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    save_checkpoint(final.model_ckpt, model)
    hp = model.hparams
    card = {
        "format": EXPORT_FORMAT,
        "weights": final.model_ckpt.name,
        "backbone": hp["backbone"],
        "framework": "timm.create_model(backbone, num_classes=1); state_dict keys prefixed 'net.'",
        "input": {**dict(hp["preprocessing"] or {}), "decode": DECODE_RULE},
        "output": OUTPUT_MEANING,
        "classes": {"positive": "clear", "negative": "cloudy"},
        "threshold": threshold,
        "threshold_source": source,
        "operating_point": point,
        "onnx": None,
        "trained_on": trained_on,
        "experiment": experiment.name,
        "fingerprint": fingerprint,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    write_json(final.model_json, card)  # usable before the ONNX export, which may fail
    if settings.get("onnx", True) and sample is not None:
        int8 = final.model_int8_onnx if settings.get("int8") else None
        card["onnx"] = export_station_files(model.net, hp["preprocessing"], final.model_onnx,
                                            int8, sample, threshold)
        write_json(final.model_json, card)
    log.info("final model: wrote %s and %s (threshold %.3f)", final.model_ckpt,
             final.model_json, threshold)
    return card


@dataclass
class LoadedClassifier:
    model: SkyClassifier
    preprocessing: dict
    threshold: float
    threshold_source: str
    card: dict | None


def load_classifier(model_dir_or_ckpt: str | Path, map_location: str = "cpu") -> LoadedClassifier:
    """Load a ``final/`` folder (model.json + weights) or a checkpoint file."""
    path = Path(model_dir_or_ckpt)
    if path.is_dir():
        card = read_card(FinalDir(path))
        ckpt = path / card.get("weights", FinalDir(path).model_ckpt.name)
    elif path.is_file():
        ckpt, card = path, sibling_card(path)
    else:
        raise FileNotFoundError(f"checkpoint={path}: no such file or folder (train the final model "
                                "with python train.py mode=final, or give checkpoint=...)")
    model = load_classifier_checkpoint(ckpt, map_location)
    preprocessing = dict(model.hparams.get("preprocessing") or {})
    if not preprocessing:
        raise CheckpointError(f"{ckpt}: the checkpoint does not describe its preprocessing")
    if card is not None:
        threshold, source = card_threshold(card, path)
    else:
        threshold, source = DEFAULT_THRESHOLD, (f"default {DEFAULT_THRESHOLD}: {ckpt} carries no "
                                                "threshold (pass threshold=...)")
    return LoadedClassifier(model, preprocessing, threshold, source, card)
