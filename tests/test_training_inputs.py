"""What training reads: the input cache against decoding, unreadable images found before
training starts, 16-bit frames, and reruns that decode nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures_train import compose_train, make_dataset, tiny_overrides
from PIL import Image

from gmn_weather.datamodule import GMNDataModule
from gmn_weather.inputs import decode as image_decode
from gmn_weather.inputs.frames import UnreadableImagesError
from gmn_weather.training import train

NONE = {"input": "whole_frame", "train": {}}


def _datamodule(labels_csv, image_dir, tmp_path, **kwargs) -> GMNDataModule:
    options = {"n_folds": 3, "image_size": [32, 56], "batch_size": 5, "num_workers": 0,
               "fold": 0, "splits_csv": str(tmp_path / "splits.csv"), "augmentation": NONE,
               "cache_dir": str(tmp_path / "cache")}
    dm = GMNDataModule(str(labels_csv), str(image_dir), **{**options, **kwargs})
    dm.setup("fit")
    return dm


def _batches(loader) -> list[dict]:
    torch.manual_seed(3)  # the training loader shuffles
    return list(loader)


def test_batches_are_identical_with_and_without_the_cache(tmp_path):
    labels_csv, image_dir, _ = make_dataset(tmp_path / "data")
    cached = _datamodule(labels_csv, image_dir, tmp_path)
    decoded = _datamodule(labels_csv, image_dir, tmp_path, cache=False)
    assert type(cached.frames).__name__ == "CachedFrames"
    assert type(decoded.frames).__name__ == "DecodedFrames"
    for loader in ("train_dataloader", "val_dataloader", "predict_dataloader"):
        a, b = _batches(getattr(cached, loader)()), _batches(getattr(decoded, loader)())
        assert len(a) == len(b) > 0
        for x, y in zip(a, b):
            assert x["image"].dtype == torch.uint8
            assert torch.equal(x["image"], y["image"]) and torch.equal(x["index"], y["index"])
            assert torch.equal(x["target"], y["target"])


def _break_three(image_dir, table) -> list[str]:
    names = list(table["image_filename"][[1, 9, 17]])
    (image_dir / names[0]).write_bytes(b"")
    good = (image_dir / names[1]).read_bytes()
    (image_dir / names[1]).write_bytes(good[: len(good) // 2])
    (image_dir / names[2]).write_bytes(b"<html>not an image</html>")
    return names


@pytest.mark.parametrize("cache", ["true", "false"])
def test_unreadable_images_are_all_named_before_training_starts(tmp_path, cache):
    """Before: the first bad image stopped the epoch it was drawn in with a traceback
    naming it alone. Now every bad file is named before the first batch."""
    _, image_dir, table = make_dataset(tmp_path / "data")
    names = _break_three(image_dir, table)
    cfg = compose_train(*tiny_overrides(tmp_path / "data", tmp_path / "out"), "logger=none",
                        "fold=0", f"data.cache={cache}")
    with pytest.raises(UnreadableImagesError) as err:
        train(cfg)
    message = str(err.value)
    assert message.startswith("3 of the 24 images listed in ")
    assert all(name in message for name in names)
    assert "zero-byte file" in message and "data.skip_unreadable=true" in message
    fold = tmp_path / "out" / "tiny_test_resnet_light" / "fold_0"
    assert not (fold / "checkpoints").exists()  # no epoch ran


def test_skip_unreadable_drops_and_counts_them(tmp_path, caplog):
    _, image_dir, table = make_dataset(tmp_path / "data")
    names = _break_three(image_dir, table)
    cfg = compose_train(*tiny_overrides(tmp_path / "data", tmp_path / "out"), "logger=none",
                        "fold=0", "data.skip_unreadable=true")
    with caplog.at_level("WARNING"):
        train(cfg)
    assert "data.skip_unreadable=true: 3 unreadable images left out" in caplog.text
    splits = pd.read_csv(tmp_path / "out" / "tiny_test_resnet_light" / "splits.csv")
    assert len(splits) == 21 and not set(names) & set(splits["image_filename"])


def test_sixteen_bit_frames_train_as_their_eight_bit_values(tmp_path):
    labels_csv, image_dir, table = make_dataset(tmp_path / "data")
    eight = list(_datamodule(labels_csv, image_dir, tmp_path / "a").val_dataloader())
    names = []
    for i, name in enumerate(table["image_filename"]):  # the same frames, 16-bit (v * 257)
        values = np.asarray(Image.open(image_dir / name).convert("L"), np.uint16) * 257
        (image_dir / name).unlink()
        name = name if i % 2 else name.replace(".png", ".tif")  # half PNG, half TIFF
        Image.fromarray(values).save(image_dir / name)
        assert Image.open(image_dir / name).mode == "I;16"
        names.append(name)
    table.assign(image_filename=names).to_csv(labels_csv, index=False)
    sixteen = _datamodule(labels_csv, image_dir, tmp_path / "b")
    for a, b in zip(eight, sixteen.val_dataloader(), strict=True):
        assert torch.equal(a["image"], b["image"])
        assert b["image"].float().mean() < 200  # not clipped to white


def test_second_training_job_decodes_no_image(tmp_path, monkeypatch, caplog):
    """Fold 0 fills the cache; fold 1 and the final model read every frame from it."""
    make_dataset(tmp_path / "data")
    calls = []
    original = image_decode.open_frame

    def counting(path):
        calls.append(path)
        return original(path)

    monkeypatch.setattr(image_decode, "open_frame", counting)
    overrides = (*tiny_overrides(tmp_path / "data", tmp_path / "out"), "logger=none")
    train(compose_train(*overrides, "fold=0"))
    assert len(calls) == 24
    calls.clear()
    with caplog.at_level("INFO"):
        train(compose_train(*overrides, "fold=1"))
        train(compose_train(*overrides, "mode=final"))
    assert calls == []
    assert caplog.text.count("this job decoded 0 and reused 24") == 2
    assert f"input cache {tmp_path / 'data' / 'input_cache'}" in caplog.text
