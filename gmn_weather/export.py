"""The final model's self-describing export and the loader every inference path uses.

``final/`` holds ``model.ckpt`` (state dict plus plain hyperparameters, loadable with
:func:`gmn_weather.model.load_classifier_checkpoint` or Lightning) and ``model.json``, which
says everything needed to use the weights without this project's config: backbone, input
size, resize rule, normalisation, channels, what the output means, and the decision
threshold (from the experiment's operating point when it belongs to the same
configuration, else 0.5 and a note saying so). File names come from
:mod:`gmn_weather.experiment`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytorch_lightning as pl
import torch

from gmn_base.atomic import atomic_path, write_json
from gmn_weather.experiment import ExperimentDir, FinalDir
from gmn_weather.final_threshold import DEFAULT_THRESHOLD, threshold_from_operating_point
from gmn_weather.model import CheckpointError, SkyClassifier, load_classifier_checkpoint
from gmn_weather.thresholds import ThresholdSettingError, check_unit

log = logging.getLogger(__name__)

EXPORT_FORMAT = "gmn-weather-classifier/1"
OUTPUT_MEANING = ("one logit; prob_clear = sigmoid(logit) is the probability that the sky is "
                  "clear; prediction is 'clear' when prob_clear >= threshold, else 'cloudy'")


def save_checkpoint(path: Path, model: SkyClassifier) -> None:
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(),
                    "hyper_parameters": dict(model.hparams),
                    "pytorch-lightning_version": pl.__version__}, tmp)


def export_final(experiment: ExperimentDir, model: SkyClassifier, fingerprint: str,
                 trained_on: dict) -> dict:
    """Write ``final/model.ckpt`` and ``final/model.json``; return the model card."""
    final = experiment.final
    threshold, source, point = threshold_from_operating_point(experiment, fingerprint)
    if point is None:
        log.warning("final model: threshold %s", source)
    save_checkpoint(final.model_ckpt, model)
    hp = model.hparams
    card = {
        "format": EXPORT_FORMAT,
        "weights": final.model_ckpt.name,
        "backbone": hp["backbone"],
        "framework": "timm.create_model(backbone, num_classes=1); state_dict keys prefixed 'net.'",
        "input": dict(hp["preprocessing"] or {}),
        "output": OUTPUT_MEANING,
        "classes": {"positive": "clear", "negative": "cloudy"},
        "threshold": threshold,
        "threshold_source": source,
        "operating_point": point,
        "trained_on": trained_on,
        "experiment": experiment.name,
        "fingerprint": fingerprint,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    write_json(final.model_json, card)
    log.info("final model: wrote %s and %s (threshold %.3f)", final.model_ckpt,
             final.model_json, threshold)
    return card


def _card_threshold(card: dict, model_dir: Path) -> float:
    """model.json's threshold, refused by name when it is not a number in [0, 1] (every
    image would be called one class)."""
    json_path = FinalDir(model_dir).model_json if model_dir.is_dir() \
        else FinalDir(model_dir.parent).model_json
    try:
        return check_unit(f"{json_path}: threshold", card.get("threshold"))
    except ThresholdSettingError as exc:
        raise CheckpointError(f"{exc}; export the model again (python train.py mode=final) "
                              "or correct the file") from None


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
    card = None
    if path.is_dir():
        final = FinalDir(path)
        if not final.model_json.is_file():
            raise FileNotFoundError(f"{path} has no {final.model_json.name}; give a final/ folder "
                                    "written by python train.py mode=final, or a .ckpt file")
        card = json.loads(final.model_json.read_text())
        ckpt = path / card.get("weights", final.model_ckpt.name)
    elif path.is_file():
        ckpt = path
        sibling = FinalDir(path.parent).model_json
        if sibling.is_file():
            card = json.loads(sibling.read_text())
    else:
        raise FileNotFoundError(f"checkpoint={path}: no such file or folder (train the final model "
                                "with python train.py mode=final, or give checkpoint=...)")
    model = load_classifier_checkpoint(ckpt, map_location)
    preprocessing = dict(model.hparams.get("preprocessing") or {})
    if not preprocessing:
        raise CheckpointError(f"{ckpt}: the checkpoint does not describe its preprocessing")
    if card is not None:
        threshold, source = _card_threshold(card, path), f"{path}: {card.get('threshold_source')}"
    else:
        threshold, source = DEFAULT_THRESHOLD, (f"default {DEFAULT_THRESHOLD}: {ckpt} carries no "
                                                "threshold (pass threshold=...)")
    return LoadedClassifier(model, preprocessing, threshold, source, card)
