"""The classifier module: offline pretrained weights, local weights files, the head-only
schedule of the reference recipe, and checkpoint round trips."""

from __future__ import annotations

import time

import huggingface_hub.constants
import pytest
import pytorch_lightning as pl
import safetensors.torch
import timm
import torch
from fixtures_train import make_dataset, unreachable_hub

from gmn_weather.datamodule import GMNDataModule
from gmn_weather.export import load_classifier, save_checkpoint
from gmn_weather.model import (
    BackboneSettingError,
    CheckpointError,
    PretrainedWeightsError,
    SkyClassifier,
    create_backbone,
)


def test_pretrained_offline_names_the_two_ways_out(monkeypatch, tmp_path):
    # Real timm + huggingface_hub download path, switched to offline mode with an empty cache.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(PretrainedWeightsError) as err:
        create_backbone("test_resnet", pretrained=True, weights_file=None)
    assert "model.pretrained=false" in str(err.value)
    assert "model.weights_file" in str(err.value)


def test_pretrained_with_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    # Without the probe, huggingface_hub retries each weights file for ~50 s before failing.
    port = unreachable_hub(monkeypatch, tmp_path)
    started = time.monotonic()
    with pytest.raises(PretrainedWeightsError) as err:
        create_backbone("test_resnet", pretrained=True, weights_file=None)
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message
    assert "model.pretrained=false" in message and "model.weights_file" in message


def test_pretrained_with_unreachable_hub_uses_cached_weights(monkeypatch, tmp_path):
    unreachable_hub(monkeypatch, tmp_path)
    source = timm.create_model("test_resnet", pretrained=False)
    # The Hugging Face cache layout: refs/main names the snapshot holding the file.
    repo = tmp_path / "hub" / "models--timm--test_resnet.r160_in1k"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    safetensors.torch.save_file(source.state_dict(), str(snapshot / "model.safetensors"))
    net = create_backbone("test_resnet", pretrained=True, weights_file=None)
    first = next(name for name, _ in source.named_parameters())
    assert torch.equal(dict(net.named_parameters())[first], dict(source.named_parameters())[first])
    assert net.get_classifier().out_features == 1


def test_weights_file_loads_a_local_file(tmp_path):
    source = timm.create_model("test_resnet", pretrained=False)
    path = tmp_path / "test_resnet.pth"
    torch.save(source.state_dict(), path)
    net = create_backbone("test_resnet", pretrained=False, weights_file=str(path))
    first = next(name for name, _ in source.named_parameters())
    assert torch.equal(dict(net.named_parameters())[first], dict(source.named_parameters())[first])
    assert net.get_classifier().out_features == 1  # 1000-class head replaced
    with pytest.raises(BackboneSettingError, match="model.weights_file=.*no such file"):
        create_backbone("test_resnet", pretrained=False, weights_file=str(tmp_path / "none.pth"))


def test_unknown_backbone_is_named():
    with pytest.raises(BackboneSettingError, match="'no_such_net' is not a timm model"):
        create_backbone("no_such_net", pretrained=False, weights_file=None)


class _Recorder(pl.Callback):
    def __init__(self):
        self.backbone, self.head, self.lr = [], [], []

    def on_train_epoch_end(self, trainer, module):
        net = module.net
        self.backbone.append(next(net.parameters()).detach().clone())  # the stem
        self.head.append(net.get_classifier().weight.detach().clone())
        self.lr.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.filterwarnings("ignore:.*LeafSpec")
def test_head_only_epochs_then_all_layers_at_full_lr(tmp_path):
    labels_csv, image_dir, _ = make_dataset(tmp_path / "data")
    dm = GMNDataModule(str(labels_csv), str(image_dir), mode="final", batch_size=12,
                       num_workers=0, image_size=[16, 28])
    pl.seed_everything(0, verbose=False)
    model = SkyClassifier("test_resnet", pretrained=False, head_only_epochs=1, full_lr=1e-5,
                          optimizer={"_target_": "torch.optim.Adam", "lr": 1e-2},
                          preprocessing=dm.preprocessing)
    initial = next(model.net.parameters()).detach().clone()
    recorder = _Recorder()
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, callbacks=[recorder],
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    assert torch.equal(recorder.backbone[0], initial)  # epoch 0: head only
    assert not torch.equal(recorder.backbone[1], initial)  # epoch 1: everything
    assert recorder.lr == [1e-2, 1e-5]

    # The checkpoint alone rebuilds the model (no network, same outputs).
    save_checkpoint(tmp_path / "m.ckpt", model)
    loaded = load_classifier(tmp_path / "m.ckpt")
    x = torch.randn(2, 3, 16, 28)
    model.eval()
    assert torch.allclose(loaded.model(x), model(x))
    assert loaded.threshold == 0.5 and "carries no threshold" in loaded.threshold_source


def test_a_file_that_is_not_our_checkpoint_is_named(tmp_path):
    image = tmp_path / "frame.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n not a checkpoint")
    with pytest.raises(CheckpointError, match="frame.png: not a readable PyTorch checkpoint"):
        load_classifier(image)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="other.pt: not a gmn-weather checkpoint"):
        load_classifier(other)
