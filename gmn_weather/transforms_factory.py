"""Tensor transforms from the resolved input spec and the augmentation's train settings.

Frames arrive decoded and resized to the spec's ``resize`` (:mod:`gmn_weather.inputs.decode`,
from the input cache or decoded on the spot), as uint8 [3, H, W] tensors. What remains runs
on those tensors with ``torchvision.transforms.v2`` (no PIL): the evaluation transform
(validation, OOF prediction, inference) only takes the centre crop of a ``crop`` input; the
training transform adds the random steps ``augmentation.train`` asks for. Both return uint8:
:class:`InputNormalization` turns a batch into the network's float input on the device the
model runs on (a quarter of the bytes to move, and no per-image float work in the loaders).

What each augmentation means is unchanged: ``reference`` is a random 224 crop of the frame
resized to 256 (the cache holds it at 256); ``strong``'s random resized crops of 70-100 % of
the frame are cut from the frame at the input size (a 70 % crop is enlarged by at most
1.2x, so it is slightly softer than one cut from the full-resolution frame).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torchvision.transforms import v2

from gmn_weather.preprocessing import InputSettingError, network_input_size


def _size(value) -> int | tuple[int, int]:
    if isinstance(value, int):
        return value
    values = list(value)
    if len(values) != 2:
        raise ValueError(f"image size {value!r}: expected [H, W] or one integer")
    return int(values[0]), int(values[1])


def _compose(steps: list) -> v2.Compose:
    return v2.Compose(steps or [v2.Identity()])


def eval_transform(spec: Mapping[str, Any]) -> v2.Compose:
    """Deterministic transform for validation, OOF prediction and inference."""
    crop = spec.get("center_crop")
    return _compose([] if crop is None else [v2.CenterCrop(_size(crop))])


def _geometry(train: Mapping[str, Any], spec: Mapping[str, Any]) -> list:
    """Random crops that end at the network's input size (the frame is already resized)."""
    size = tuple(network_input_size(spec))
    crop = spec.get("center_crop")
    if train.get("random_resized_crop_scale") is not None:
        if crop is not None:
            raise InputSettingError("augmentation.train.random_resized_crop_scale needs "
                                    "augmentation.input=whole_frame (it crops by itself)")
        lo, hi = train["random_resized_crop_scale"]
        aspect = size[1] / size[0]
        return [v2.RandomResizedCrop(size, scale=(lo, hi), ratio=(aspect * 0.9, aspect * 1.1),
                                     antialias=True)]
    if crop is not None:
        return [v2.RandomCrop(size) if train.get("random_crop") else v2.CenterCrop(size)]
    if train.get("random_crop"):
        raise InputSettingError("augmentation.train.random_crop needs augmentation.input=crop "
                                "(a whole-frame input has nothing to crop)")
    return []


def train_transform(augmentation: Mapping[str, Any], spec: Mapping[str, Any]) -> v2.Compose:
    """Random training transform from ``augmentation.train`` on uint8 frame tensors."""
    train = dict(augmentation.get("train") or {})
    steps = _geometry(train, spec)
    if train.get("hflip", 0):
        steps.append(v2.RandomHorizontalFlip(float(train["hflip"])))
    if train.get("vflip", 0):
        steps.append(v2.RandomVerticalFlip(float(train["vflip"])))
    if train.get("rotate_degrees", 0):
        steps.append(v2.RandomRotation(float(train["rotate_degrees"])))
    jitter = train.get("color_jitter", 0)
    if jitter:
        steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
    if train.get("blur", 0):
        steps.append(v2.RandomApply([v2.GaussianBlur(3)], p=float(train["blur"])))
    return _compose(steps)


class InputNormalization(torch.nn.Module):
    """uint8 RGB images [N, 3, H, W] -> the network's float input ``(x / 255 - mean) / std``.

    One multiply-add per pixel with the spec's mean/std (buffers, not saved in state dicts:
    the spec in the checkpoint rebuilds them). Part of the exported ONNX graph too, so a
    station feeds the model uint8 pixels.
    """

    def __init__(self, spec: Mapping[str, Any]):
        super().__init__()
        mean = torch.tensor([float(v) for v in spec["mean"]]).view(1, 3, 1, 1)
        std = torch.tensor([float(v) for v in spec["std"]]).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std), persistent=False)
        self.register_buffer("shift", mean / std, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(f"expected uint8 images (decoded pixels), got {images.dtype}")
        return images.float() * self.scale - self.shift
