"""Image transforms built from the resolved input spec and the augmentation's train settings.

Images are opened with PIL and converted to RGB, so a single-channel (grayscale) night frame
becomes three identical channels, which pretrained backbones expect. The evaluation
transform (validation, OOF prediction, inference) is rebuilt from the plain spec of
:mod:`gmn_weather.preprocessing` alone, so an exported model needs nothing else; the
training transform adds the random steps ``augmentation.train`` asks for around the same
resize, crop and normalisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image
from torchvision import transforms as T

from gmn_weather.preprocessing import InputSettingError, network_input_size


def _size(value) -> int | tuple[int, int]:
    if isinstance(value, int):
        return value
    values = list(value)
    if len(values) != 2:
        raise ValueError(f"image size {value!r}: expected [H, W] or one integer")
    return int(values[0]), int(values[1])


def eval_transform(spec: Mapping[str, Any]) -> T.Compose:
    """Deterministic transform for validation, OOF prediction and inference."""
    steps = [T.Resize(_size(spec["resize"]), antialias=True)]
    if spec.get("center_crop") is not None:
        steps.append(T.CenterCrop(_size(spec["center_crop"])))
    steps += [T.ToTensor(), T.Normalize(spec["mean"], spec["std"])]
    return T.Compose(steps)


def _geometry(train: Mapping[str, Any], spec: Mapping[str, Any]) -> list:
    """Random crops and resizes that end at the network's input size."""
    size = tuple(network_input_size(spec))
    crop = spec.get("center_crop")
    if train.get("random_resized_crop_scale") is not None:
        if crop is not None:
            raise InputSettingError("augmentation.train.random_resized_crop_scale needs "
                                    "augmentation.input=whole_frame (it crops by itself)")
        lo, hi = train["random_resized_crop_scale"]
        aspect = size[1] / size[0]
        return [T.RandomResizedCrop(size, scale=(lo, hi), ratio=(aspect * 0.9, aspect * 1.1),
                                    antialias=True)]
    steps = [T.Resize(_size(spec["resize"]), antialias=True)]
    if crop is not None:
        steps.append(T.RandomCrop(size) if train.get("random_crop") else T.CenterCrop(size))
    elif train.get("random_crop"):
        raise InputSettingError("augmentation.train.random_crop needs augmentation.input=crop "
                                "(a whole-frame input has nothing to crop)")
    return steps


def train_transform(augmentation: Mapping[str, Any], spec: Mapping[str, Any]) -> T.Compose:
    """Random training transform from ``augmentation.train`` around the input ``spec``."""
    train = dict(augmentation.get("train") or {})
    steps = _geometry(train, spec)
    if train.get("hflip", 0):
        steps.append(T.RandomHorizontalFlip(float(train["hflip"])))
    if train.get("vflip", 0):
        steps.append(T.RandomVerticalFlip(float(train["vflip"])))
    if train.get("rotate_degrees", 0):
        steps.append(T.RandomRotation(float(train["rotate_degrees"])))
    jitter = train.get("color_jitter", 0)
    if jitter:
        steps.append(T.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
    if train.get("blur", 0):
        steps.append(T.RandomApply([T.GaussianBlur(3)], p=float(train["blur"])))
    steps += [T.ToTensor(), T.Normalize(spec["mean"], spec["std"])]
    return T.Compose(steps)


def load_rgb(path) -> Image.Image:
    """Open an image as RGB; grayscale frames get three identical channels."""
    with Image.open(path) as image:
        return image.convert("RGB")
