"""Image transforms built from an ``augmentation`` config, and the spec that describes them.

Images are opened with PIL and converted to RGB, so a single-channel (grayscale) night frame
becomes three identical channels, which pretrained backbones expect. ``resize`` is either
``[H, W]`` (the whole frame squeezed to that size: nothing of the sky is cut away, the
default) or one integer (the shorter edge, aspect kept, as the reference pipeline did before
cropping). :func:`preprocessing_spec` returns the plain dict an exported model carries so
inference rebuilds exactly the evaluation transform.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image
from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _size(value) -> int | tuple[int, int]:
    if isinstance(value, int):
        return value
    values = list(value)
    if len(values) != 2:
        raise ValueError(f"image size {value!r}: expected [H, W] or one integer")
    return int(values[0]), int(values[1])


def preprocessing_spec(augmentation: Mapping[str, Any]) -> dict:
    """Plain-data description of the evaluation pipeline (stored in checkpoints/exports)."""
    evaluation = dict(augmentation.get("eval") or {})
    normalize = dict(augmentation.get("normalize") or {})
    resize = evaluation.get("resize")
    crop = evaluation.get("center_crop")
    return {
        "resize": list(resize) if not isinstance(resize, int) else resize,
        "center_crop": None if crop is None else (list(crop) if not isinstance(crop, int) else crop),
        "mean": list(normalize.get("mean", IMAGENET_MEAN)),
        "std": list(normalize.get("std", IMAGENET_STD)),
        "channels": 3,
        "color": "RGB; single-channel images are replicated to 3 channels",
        "value_range": "pixels scaled to [0, 1], then (x - mean) / std per channel",
        "resize_note": "[H, W]: whole frame resized to that size; one integer: shorter edge "
                       "resized to it, aspect kept",
    }


def eval_transform(spec: Mapping[str, Any]) -> T.Compose:
    """Deterministic transform for validation, OOF prediction and inference."""
    steps = [T.Resize(_size(spec["resize"]), antialias=True)]
    if spec.get("center_crop") is not None:
        steps.append(T.CenterCrop(_size(spec["center_crop"])))
    steps += [T.ToTensor(), T.Normalize(spec["mean"], spec["std"])]
    return T.Compose(steps)


def train_transform(augmentation: Mapping[str, Any]) -> T.Compose:
    """Random training transform from ``augmentation.train``."""
    train = dict(augmentation.get("train") or {})
    spec = preprocessing_spec(augmentation)
    steps: list = []
    if train.get("random_resized_crop_scale") is not None:
        lo, hi = train["random_resized_crop_scale"]
        size = _size(train.get("resize", spec["resize"]))
        if isinstance(size, int):
            raise ValueError("augmentation.train.random_resized_crop_scale needs resize [H, W]")
        steps.append(T.RandomResizedCrop(size, scale=(lo, hi),
                                         ratio=(size[1] / size[0] * 0.9, size[1] / size[0] * 1.1),
                                         antialias=True))
    else:
        steps.append(T.Resize(_size(train.get("resize", spec["resize"])), antialias=True))
        if train.get("random_crop") is not None:
            steps.append(T.RandomCrop(_size(train["random_crop"])))
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
