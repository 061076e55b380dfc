"""``final/model.json``, the final model's card, read without torch.

:mod:`gmn_weather.export` writes the card next to the weights; :func:`read_card` and
:func:`card_threshold` read it back for both inference paths: the torch model
(:func:`gmn_weather.export.load_classifier`) and the ONNX model a station runs without torch
(:mod:`gmn_weather.predict_onnx`). The constants that describe every card live here too.
"""

from __future__ import annotations

import json
from pathlib import Path

from gmn_weather.experiment import FinalDir
from gmn_weather.thresholds import ThresholdSettingError, check_unit

EXPORT_FORMAT = "gmn-weather-classifier/1"
ONNX_INPUT, ONNX_OUTPUT = "image", "prob_clear"  # names of the ONNX graph's input and output
OUTPUT_MEANING = ("one logit; prob_clear = sigmoid(logit) is the probability that the sky is "
                  "clear; prediction is 'clear' when prob_clear >= threshold, else 'cloudy'")


class CheckpointError(ValueError):
    """A file given as a checkpoint is not one this project wrote."""


def read_card(final: FinalDir) -> dict:
    """The card of a ``final/`` folder; FileNotFoundError says what to give instead."""
    if not final.model_json.is_file():
        raise FileNotFoundError(f"{final.path} has no {final.model_json.name}; give a final/ "
                                "folder written by python train.py mode=final, or a .ckpt file")
    try:
        return json.loads(final.model_json.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{final.model_json}: not a model card written by this project "
                              f"({exc})") from exc


def sibling_card(weights: Path) -> dict | None:
    """The card beside a weights file (``final/model.ckpt``), if there is one."""
    final = FinalDir(weights.parent)
    return read_card(final) if final.model_json.is_file() else None


def card_threshold(card: dict, where: str | Path) -> tuple[float, str]:
    """(threshold, where it came from) of the card of ``where`` (a final/ folder or a file
    in it); refused by name when the threshold is not a number in [0, 1] (every image would
    be called one class)."""
    where = Path(where)
    json_path = FinalDir(where if where.is_dir() else where.parent).model_json
    try:
        threshold = check_unit(f"{json_path}: threshold", card.get("threshold"))
    except ThresholdSettingError as exc:
        raise CheckpointError(f"{exc}; export the model again (python train.py mode=final) "
                              "or correct the file") from None
    return threshold, f"{where}: {card.get('threshold_source')}"
