"""What the network sees: input size, resize/crop rule and normalisation, as one plain spec.

Resolved once per training job from three settings, each with one home:

- ``data.image_size``: the network input [H, W]; ``null`` takes the backbone's own input
  size from timm's pretrained config (224x224 for resnet18, 299x299 for inception_v3).
- ``augmentation.input``: how a frame becomes that input. ``whole_frame`` squeezes the
  whole frame to [H, W] (nothing of the sky is cut away); ``crop`` resizes the shorter
  edge to ``floor(min(H, W) / augmentation.crop_pct)`` and crops [H, W], as timm's eval
  transform and the reference pipeline do (224 / 0.875 = 256: Resize 256, crop 224).
- normalisation: with pretrained weights (``model.pretrained`` or ``model.weights_file``)
  the mean/std of the backbone's timm pretrained config (ViT and Inception weights use 0.5,
  not ImageNet's); from scratch, ImageNet's (timm's constants).

The spec is plain data: the model stores it in its checkpoints and ``final/model.json``
carries it, so inference rebuilds exactly the evaluation transform
(:mod:`gmn_weather.transforms_factory`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

INPUT_RULES = ("whole_frame", "crop")
DEFAULT_CROP_PCT = 0.875


class InputSettingError(ValueError):
    """``data.image_size`` or the augmentation's input rule cannot be used as given."""


def input_size(image_size: Sequence[int] | None, data_config: Mapping[str, Any] | None) -> list[int]:
    """``data.image_size`` as [H, W], or the backbone's own input size when it is null."""
    if image_size is None:
        if data_config is None:
            raise InputSettingError("data.image_size=null takes the backbone's input size, but "
                                    "no backbone was given; set data.image_size=[H, W]")
        return [int(v) for v in data_config["input_size"][1:]]
    if isinstance(image_size, (str, bytes, int)) or len(image_size) != 2 \
            or not all(isinstance(v, int) and v > 0 for v in image_size):
        raise InputSettingError(f"data.image_size={image_size!r}: expected [H, W] (two positive "
                                "integers) or null (the backbone's own input size)")
    return [int(v) for v in image_size]


def _resize_and_crop(augmentation: Mapping[str, Any], size: list[int]) -> tuple[Any, list[int] | None]:
    rule = augmentation.get("input", "whole_frame")
    if rule == "whole_frame":
        return list(size), None
    if rule == "crop":
        crop_pct = float(augmentation.get("crop_pct", DEFAULT_CROP_PCT))
        if not 0 < crop_pct <= 1:
            raise InputSettingError(f"augmentation.crop_pct={crop_pct}: expected a value in (0, 1] "
                                    "(the crop's share of the resized shorter edge)")
        return math.floor(min(size) / crop_pct), list(size)
    raise InputSettingError(f"augmentation.input={rule!r}: expected one of {', '.join(INPUT_RULES)}")


def resolve_preprocessing(
    augmentation: Mapping[str, Any],
    image_size: Sequence[int] | None,
    data_config: Mapping[str, Any] | None = None,
    pretrained_normalization: bool = False,
    backbone: str | None = None,
) -> dict:
    """The evaluation input spec (stored in checkpoints and ``final/model.json``).

    ``data_config`` is the backbone's timm data config
    (:func:`gmn_weather.model.backbone_data_config`); ``pretrained_normalization`` says the
    weights come pretrained, so their own mean/std apply.
    """
    size = input_size(image_size, data_config)
    resize, crop = _resize_and_crop(augmentation, size)
    if pretrained_normalization and data_config is not None:
        mean, std = data_config["mean"], data_config["std"]
        normalization = f"timm pretrained config of {backbone or 'the backbone'}"
    else:
        mean, std = IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
        normalization = "ImageNet mean/std (timm.data constants)"
    return {
        "resize": resize,
        "center_crop": crop,
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "channels": 3,
        "color": "RGB; single-channel images are replicated to 3 channels",
        "value_range": "pixels scaled to [0, 1], then (x - mean) / std per channel",
        "resize_note": "[H, W]: whole frame resized to that size; one integer: shorter edge "
                       "resized to it, aspect kept (then center_crop [H, W])",
        "input_size": size,
        "normalization": normalization,
    }


def network_input_size(spec: Mapping[str, Any]) -> list[int] | None:
    """[H, W] of the tensors the network receives under ``spec`` (None: not fixed)."""
    if spec.get("center_crop") is not None:
        crop = spec["center_crop"]
        return [int(crop), int(crop)] if isinstance(crop, int) else [int(v) for v in crop]
    resize = spec.get("resize")
    return None if resize is None or isinstance(resize, int) else [int(v) for v in resize]


def describe(spec: Mapping[str, Any]) -> str:
    """One line for the job's log: what the network sees."""
    h, w = network_input_size(spec) or (None, None)
    if spec.get("center_crop") is not None:
        how = f"shorter edge resized to {spec['resize']}, then a {h}x{w} crop"
    else:
        how = f"whole frame resized to {h}x{w}"
    mean = ", ".join(f"{v:.3f}" for v in spec["mean"])
    return f"input: {how}; normalisation mean [{mean}] from {spec.get('normalization', 'the checkpoint')}"
