"""LightningModule: a timm backbone with one logit; ``prob_clear = sigmoid(logit)``.

The backbone is any ``timm`` model name. Pretrained weights come from the timm hub or, with
``weights_file``, from a local file (what offline machines need). The optimizer and the
optional scheduler are ``_target_`` dicts instantiated in :meth:`configure_optimizers`;
``head_only_epochs`` reproduces the reference recipe: first train only the classifier head
at the optimizer's learning rate, then every layer at ``full_lr``. All hyperparameters are
plain data, so a checkpoint alone rebuilds the model (see :func:`load_classifier_checkpoint`).

Batches are dicts: ``image`` (uint8 RGB pixels [N, 3, H, W], normalised here on the model's
device with the spec's mean/std; a float tensor is taken as already normalised; or None
when no image of the batch could be read),
``index`` (the rows of the batch in its table or file list) and, for training and
validation, ``target`` (1.0 = clear). :meth:`SkyClassifier.predict_step` is the one
inference path: the fold's out-of-fold predictions and ``predict.py`` both run it through
``Trainer.predict``.

Validation metrics are torchmetrics objects: under DDP each rank adds its own images and
``compute()`` gathers them, so every rank takes the same decisions from the same numbers (a
per-rank Python tally deciding whether a collective runs would hang or crash ranks whose
images hold one class only).
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytorch_lightning as pl
import timm
import torch
from hydra.utils import instantiate
from timm.data import resolve_data_config
from torchmetrics import SumMetric
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryAveragePrecision

from gmn_weather.model_card import CheckpointError
from gmn_weather.preprocessing import network_input_size
from gmn_weather.transforms_factory import InputNormalization

log = logging.getLogger(__name__)


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights could not be obtained (typically: no network)."""


class BackboneSettingError(ValueError):
    """``model.backbone`` or ``model.weights_file`` names something that does not exist."""


def _check_backbone_name(backbone: str) -> None:
    if not timm.is_model(backbone):
        raise BackboneSettingError(f"model.backbone={backbone!r} is not a timm model name "
                         "(see timm.list_models(); e.g. resnet18, efficientnet_b0, convnext_tiny)")


def backbone_data_config(backbone: str) -> dict:
    """timm's data config of the backbone's pretrained weights: input size, mean, std, crop.

    Read from the pretrained config registered under the name (``resnet18`` or a tagged
    ``vit_base_patch16_224.augreg_in21k``); nothing is downloaded.
    """
    _check_backbone_name(backbone)
    cfg = timm.models.get_pretrained_cfg(backbone)
    return resolve_data_config(pretrained_cfg=cfg.to_dict() if cfg is not None else None)


def _size_kwargs(backbone: str, img_size: Sequence[int] | None) -> dict:
    """``img_size`` for backbones built for one input size (ViTs) when ours differs."""
    if img_size is None:
        return {}
    cfg = timm.models.get_pretrained_cfg(backbone)
    if cfg is None or not cfg.fixed_input_size or list(cfg.input_size[1:]) == list(img_size):
        return {}
    # timm resamples the position embeddings of pretrained weights to the new grid.
    log.info("%s is built for %dx%d inputs; creating it for %dx%d (data.image_size)", backbone,
             *cfg.input_size[1:], *img_size)
    return {"img_size": tuple(int(v) for v in img_size)}


def create_backbone(backbone: str, pretrained: bool, weights_file: str | None,
                    drop_rate: float = 0.0, img_size: Sequence[int] | None = None) -> torch.nn.Module:
    """``timm.create_model`` with one output; clear errors for unknown names and offline hubs."""
    _check_backbone_name(backbone)
    kwargs = {"num_classes": 1, "drop_rate": drop_rate, **_size_kwargs(backbone, img_size)}
    if weights_file:
        path = Path(weights_file)
        if not path.is_file():
            raise BackboneSettingError(f"model.weights_file={weights_file}: no such file")
        # timm loads the file like hub weights and drops the 1000-class head it does not fit.
        return timm.create_model(backbone, pretrained=True,
                                 pretrained_cfg_overlay={"file": str(path.resolve())}, **kwargs)
    if not pretrained:
        return timm.create_model(backbone, pretrained=False, **kwargs)
    overlay = None
    unreachable = hub_unreachable()
    if unreachable is not None:
        # huggingface_hub would retry each file for ~50 s before giving up; only its cache helps.
        cached = cached_hub_weights(backbone)
        if cached is None:
            raise PretrainedWeightsError(_offline_message(backbone, unreachable))
        log.info("weights hub unreachable (%s); using cached weights %s", unreachable, cached)
        overlay = {"file": str(cached)}
    try:
        return timm.create_model(backbone, pretrained=True, pretrained_cfg_overlay=overlay,
                                 **kwargs)
    except (OSError, RuntimeError, ValueError) as exc:
        # huggingface_hub / requests errors derive from OSError or ValueError.
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise PretrainedWeightsError(
            _offline_message(backbone, f"{type(exc).__name__}: {first_line}")) from exc


def _offline_message(backbone: str, reason: str) -> str:
    return (f"could not download pretrained weights for {backbone!r} ({reason}). Offline? "
            "Either train from scratch with model.pretrained=false, or point "
            "model.weights_file=/path/to/weights at a local copy (.safetensors/.pth/.bin as "
            "published by timm)")


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def hub_unreachable(timeout_s: float = 5.0) -> str | None:
    """Why the Hugging Face hub cannot be reached, or None when it can (or cannot be probed).

    One TCP connection to the hub's host with a short timeout. Not probed (None) in offline
    mode, where huggingface_hub itself answers from its cache at once, or behind a proxy,
    where only the proxy knows the way.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return None
    url = urlsplit(constants.ENDPOINT)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc}"
    return None


def cached_hub_weights(backbone: str) -> Path | None:
    """The backbone's pretrained weights file in the local Hugging Face cache, if there."""
    from huggingface_hub import try_to_load_from_cache

    cfg = timm.models.get_pretrained_cfg(backbone)
    if cfg is None or not cfg.hf_hub_id:
        return None
    names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else \
        ["model.safetensors", "pytorch_model.bin"]
    for name in names:
        found = try_to_load_from_cache(cfg.hf_hub_id, name)
        if isinstance(found, str):
            return Path(found)
    return None


class SkyClassifier(pl.LightningModule):
    def __init__(
        self,
        backbone: str = "resnet18",
        pretrained: bool = True,
        weights_file: str | None = None,
        drop_rate: float = 0.0,
        pos_weight: float | None = None,
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        head_only_epochs: int = 0,
        full_lr: float | None = None,
        preprocessing: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = create_backbone(backbone, pretrained, weights_file, drop_rate,
                                   network_input_size(preprocessing or {}))
        self.normalize = InputNormalization(preprocessing) if preprocessing else None
        self.register_buffer(
            "pos_weight", torch.tensor([float(pos_weight)]) if pos_weight else torch.ones(1),
            persistent=False)
        self.val_auroc = BinaryAUROC()
        self.val_ap = BinaryAveragePrecision()
        self.val_acc = BinaryAccuracy()
        # Validation images per class over all ranks: AUROC/AP need both.
        self.val_clear = SumMetric()
        self.val_cloudy = SumMetric()

    # --- inference -------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """One logit per normalised float image."""
        return self.net(images).squeeze(1)

    def network_input(self, images: torch.Tensor) -> torch.Tensor:
        """A batch's float network input: uint8 pixels normalised with the spec."""
        if images.dtype != torch.uint8:
            return images
        if self.normalize is None:
            raise ValueError("uint8 images need the model's preprocessing spec to normalise them")
        return self.normalize(images)

    def on_predict_start(self) -> None:
        """Channels-last weights for scoring: faster convolutions on CUDA and x86 CPUs.
        ``predict.py``'s torch backend calls it too, so both paths compute alike."""
        self.to(memory_format=torch.channels_last)

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int = 0) -> dict[str, torch.Tensor]:
        """``prob_clear`` of the batch's images with the batch's row ``index``."""
        images = batch["image"]
        if images is None:  # no image of this batch could be read
            return {"index": torch.zeros(0, dtype=torch.long), "prob_clear": torch.zeros(0)}
        return {"index": torch.as_tensor(batch["index"]),
                "prob_clear": torch.sigmoid(self(self.network_input(images))).float()}

    # --- training --------------------------------------------------------------------------
    def _loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits, targets, pos_weight=self.pos_weight)

    def training_step(self, batch, batch_idx):
        targets = batch["target"]
        loss = self._loss(self(self.network_input(batch["image"])), targets)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=len(targets), sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        targets = batch["target"]
        logits = self(self.network_input(batch["image"]))
        self.log("val/loss", self._loss(logits, targets), on_epoch=True, prog_bar=True,
                 batch_size=len(targets), sync_dist=True)
        probs = torch.sigmoid(logits)
        for metric in (self.val_auroc, self.val_ap, self.val_acc):
            metric.update(probs, targets.int())
        self.val_clear.update((targets > 0.5).sum())
        self.val_cloudy.update((targets <= 0.5).sum())

    def on_validation_epoch_end(self):
        # Each compute() is a collective under DDP: every rank calls each one, and the counts
        # that decide what is logged are the same on every rank (so is the logged value:
        # sync_dist only tells Lightning that it is global).
        n_clear, n_cloudy = int(self.val_clear.compute()), int(self.val_cloudy.compute())
        # AUROC/AP are undefined for a single-class validation fold; log nothing then.
        if n_clear and n_cloudy:
            self.log("val/auroc", self.val_auroc.compute(), prog_bar=True, sync_dist=True)
            self.log("val/ap", self.val_ap.compute(), sync_dist=True)
        if n_clear or n_cloudy:
            self.log("val/acc", self.val_acc.compute(), sync_dist=True)
        for metric in (self.val_auroc, self.val_ap, self.val_acc, self.val_clear, self.val_cloudy):
            metric.reset()

    def _head_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.net.get_classifier().parameters())

    def on_train_epoch_start(self):
        head_only = self.current_epoch < int(self.hparams.head_only_epochs or 0)
        head = {id(p) for p in self._head_parameters()}
        for p in self.net.parameters():
            p.requires_grad_(not head_only or id(p) in head)
        if int(self.hparams.head_only_epochs or 0) and \
                self.current_epoch == int(self.hparams.head_only_epochs):
            lr = self.hparams.full_lr
            if lr is not None:
                for group in self.trainer.optimizers[0].param_groups:
                    group["lr"] = float(lr)
                    group["initial_lr"] = float(lr)
            log.info("epoch %d: training all layers%s", self.current_epoch,
                     f" at lr {lr}" if lr is not None else "")

    def configure_optimizers(self):
        spec = dict(self.hparams.optimizer or {"_target_": "torch.optim.Adam", "lr": 1e-3})
        optimizer = instantiate(spec, params=self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        scheduler = instantiate(dict(self.hparams.scheduler), optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def load_classifier_checkpoint(path: str | Path, map_location: str = "cpu") -> SkyClassifier:
    """Rebuild a :class:`SkyClassifier` from a checkpoint without touching the network."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError) as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
    if not isinstance(checkpoint, dict) or "hyper_parameters" not in checkpoint \
            or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: not a gmn-weather checkpoint (no hyper_parameters/"
                              "state_dict); give a final/ folder or a checkpoint train.py wrote")
    hparams = dict(checkpoint["hyper_parameters"])
    hparams.update(pretrained=False, weights_file=None)
    model = SkyClassifier(**hparams)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    return model
