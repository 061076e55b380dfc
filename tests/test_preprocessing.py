"""What the network sees: input size from one key, resize/crop rule, normalisation from the
backbone's timm pretrained config when the weights are pretrained."""

from __future__ import annotations

import json

import pytest
import timm
import torch
from fixtures_train import compose_train, make_dataset, tiny_overrides
from omegaconf import OmegaConf
from torchvision.transforms import v2

from gmn_weather.model import SkyClassifier, backbone_data_config, create_backbone
from gmn_weather.preprocessing import InputSettingError, resolve_preprocessing
from gmn_weather.transforms_factory import train_transform

IMAGENET_MEAN = [0.485, 0.456, 0.406]


def _spec(*overrides: str, pretrained: bool = False) -> dict:
    """The spec training resolves for a composed config."""
    cfg = compose_train(*overrides)
    return resolve_preprocessing(OmegaConf.to_container(cfg.augmentation, resolve=True),
                                 OmegaConf.to_container(cfg.data, resolve=True)["image_size"],
                                 backbone_data_config(cfg.model.backbone), pretrained,
                                 cfg.model.backbone)


def test_whole_frame_default_and_the_reference_crop_follow_data_image_size():
    default = _spec()
    assert default["resize"] == [216, 384] and default["center_crop"] is None
    assert default["input_size"] == [216, 384] and default["mean"] == IMAGENET_MEAN
    reference = _spec("augmentation=reference")
    assert reference["resize"] == 256 and reference["center_crop"] == [224, 224]
    # The reference recipe at another size: the same rule, not an ignored key.
    other = _spec("augmentation=reference", "data.image_size=[216,384]")
    assert other["resize"] == 246 and other["center_crop"] == [216, 384]  # floor(216 / 0.875)
    demo = _spec("experiment=demo")
    assert demo["resize"] == [72, 128]


def test_null_image_size_takes_the_backbone_input_size_from_timm():
    assert _spec("data.image_size=null", "model.backbone=test_resnet")["input_size"] == [160, 160]
    assert _spec("data.image_size=null", "model.backbone=inception_v3")["resize"] == [299, 299]
    assert _spec("data.image_size=null", "augmentation=reference",
                 "model.backbone=resnet18")["center_crop"] == [224, 224]


def test_pretrained_weights_bring_their_own_mean_and_std():
    # test_resnet's pretrained config (like ViT and Inception weights) uses 0.5, not ImageNet.
    assert timm.models.get_pretrained_cfg("test_resnet").mean == (0.5, 0.5, 0.5)
    pretrained = _spec("model.backbone=test_resnet", pretrained=True)
    assert pretrained["mean"] == pretrained["std"] == [0.5, 0.5, 0.5]
    assert pretrained["normalization"] == "timm pretrained config of test_resnet"
    scratch = _spec("model.backbone=test_resnet", pretrained=False)
    assert scratch["mean"] == IMAGENET_MEAN and scratch["normalization"].startswith("ImageNet")
    for backbone in ("vit_base_patch16_224", "inception_v3"):
        assert _spec(f"model.backbone={backbone}", pretrained=True)["mean"] == [0.5, 0.5, 0.5]
    assert _spec("model.backbone=resnet18", pretrained=True)["mean"] == IMAGENET_MEAN


@pytest.mark.parametrize(("augmentation", "image_size", "message"), [
    ({}, [216], "data.image_size=\\[216\\]: expected \\[H, W\\]"),
    ({}, "big", "data.image_size='big'"),
    ({"input": "square"}, [32, 32], "augmentation.input='square': expected one of"),
    ({"input": "crop", "crop_pct": 1.5}, [32, 32], "augmentation.crop_pct=1.5"),
])
def test_settings_that_cannot_work_are_named(augmentation, image_size, message):
    with pytest.raises(InputSettingError, match=message):
        resolve_preprocessing(augmentation, image_size)


def test_crop_settings_that_contradict_the_input_rule_are_named():
    whole = {"input": "whole_frame", "train": {"random_crop": True}}
    with pytest.raises(InputSettingError, match="random_crop needs augmentation.input=crop"):
        train_transform(whole, resolve_preprocessing(whole, [32, 56]))
    crop = {"input": "crop", "train": {"random_resized_crop_scale": [0.7, 1.0]}}
    with pytest.raises(InputSettingError, match="random_resized_crop_scale needs .*whole_frame"):
        train_transform(crop, resolve_preprocessing(crop, [32, 32]))
    steps = train_transform({"input": "crop"}, resolve_preprocessing({"input": "crop"}, [32, 32]))
    assert [type(s) for s in steps.transforms] == [v2.CenterCrop]


def test_a_fixed_size_backbone_is_built_for_data_image_size():
    # ViTs are built for one input size; timm rebuilds them (and their position embeddings).
    net = create_backbone("test_vit", pretrained=False, weights_file=None, img_size=(32, 48))
    assert net(torch.randn(2, 3, 32, 48)).shape == (2, 1)
    spec = resolve_preprocessing({}, [32, 48])
    model = SkyClassifier("test_vit", pretrained=False, preprocessing=spec)
    assert model(torch.randn(1, 3, 32, 48)).shape == (1,)


def test_final_model_records_the_weights_own_normalisation(tmp_path, caplog):
    from gmn_weather.export import load_classifier
    from gmn_weather.training import train

    make_dataset(tmp_path / "data")
    weights = tmp_path / "test_resnet.pth"
    torch.save(timm.create_model("test_resnet", pretrained=False).state_dict(), weights)
    cfg = compose_train(*tiny_overrides(tmp_path / "data", tmp_path / "out"), "logger=none",
                        "mode=final", f"model.weights_file={weights}")
    with caplog.at_level("INFO"):
        result = train(cfg)
    assert ("input: whole frame resized to 32x56; normalisation mean [0.500, 0.500, 0.500] "
            "from timm pretrained config of test_resnet") in caplog.text
    card = json.loads((result.run_dir / "model.json").read_text())
    assert card["input"]["mean"] == card["input"]["std"] == [0.5, 0.5, 0.5]
    assert card["input"]["input_size"] == [32, 56] and card["input"]["resize"] == [32, 56]
    assert card == result.card
    assert load_classifier(result.run_dir).preprocessing["mean"] == [0.5, 0.5, 0.5]
