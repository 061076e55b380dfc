"""Labels table, grouping and folds: the pure cores and the DataModule's file edges."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
import torch
from fixtures_train import compose_train, make_dataset
from omegaconf import OmegaConf
from PIL import Image, ImageDraw
from torchvision.transforms import v2

from gmn_weather.datamodule import GMNDataModule
from gmn_weather.inputs.decode import frame_pixels, network_pixels
from gmn_weather.labelled_images import (
    LabelsError,
    add_groups,
    apply_overrides,
    filter_edge_distance,
    load_labelled_images,
    validate_labels,
    validate_overrides,
)
from gmn_weather.preprocessing import resolve_preprocessing
from gmn_weather.splits import SplitError, assign_folds, check_folds, load_or_create_splits
from gmn_weather.transforms_factory import InputNormalization, eval_transform, train_transform


@pytest.fixture()
def dataset(tmp_path):
    labels_csv, image_dir, table = make_dataset(tmp_path / "data")
    return labels_csv, image_dir, table


def _table(groups_labels):
    """A labels table from [(group, [labels...]), ...] with unique file names."""
    rows = []
    for g, labels in groups_labels:
        for i, label in enumerate(labels):
            rows.append({"image_filename": f"{g}_{i}.png", "label": label, "group": g})
    return pd.DataFrame(rows)


# --- grouping -------------------------------------------------------------------------------

def _grouped(names, group_by="station_night", **columns):
    table = pd.DataFrame({"image_filename": names, "label": "clear", **columns})
    return list(add_groups(table, "labels.csv", group_by)["group"])


def test_groups_from_names_follow_the_frame_times_never_the_clock():
    # Without a night column, a station's frames hours apart at most form one night: its id is
    # the UTC date of its first frame (a Canadian capture across 12:00 UTC stays one night).
    names = ["CABC01_20251107_011500_000.png", "CABC01_20251107_113000_000.png",
             "CABC01_20251107_143000_000.png", "CABC01_20251108_011200_000.png",
             "20251107_020000_000.png"]
    assert _grouped(names) == ["CABC01_20251107"] * 3 + ["CABC01_20251108", "unknown_20251107"]


def test_group_prefers_station_night_columns_and_groups_three_ways():
    names = ["a.png", "b.png", "c.png"]
    columns = {"station": ["US0001", "US0001", "HR000A"], "night": ["20251108", 20251109.0,
                                                                    "20251108"]}
    assert _grouped(names, **columns) == ["US0001_20251108", "US0001_20251109",
                                          "HR000A_20251108"]
    assert _grouped(names, "night", **columns) == ["20251108", "20251109", "20251108"]
    assert _grouped(names, "station", **columns) == ["US0001", "US0001", "HR000A"]
    with pytest.raises(LabelsError, match="data.group_by='nite'.*station_night, night, station"):
        _grouped(names, "nite", **columns)


def test_a_night_column_of_the_old_clock_rule_is_refused(tmp_path):
    labels_csv, image_dir, table = make_dataset(tmp_path / "data")
    table.drop(columns=["night_rule"]).to_csv(labels_csv, index=False)
    with pytest.raises(LabelsError, match=r"older night rule \(no night_rule column.*rerun "
                                          r"`python -m data_prep\.find` and `python -m "
                                          r"data_prep\.label`"):
        load_labelled_images(labels_csv, image_dir)
    table.assign(night_rule="utc-noon/1").to_csv(labels_csv, index=False)
    with pytest.raises(LabelsError, match="night_rule 'utc-noon/1'"):
        load_labelled_images(labels_csv, image_dir)
    # Without the night column the frame times group the images: accepted.
    table.drop(columns=["night", "night_rule"]).to_csv(labels_csv, index=False)
    assert load_labelled_images(labels_csv, image_dir)[0]["group"].nunique() == 6


def test_groups_without_columns_match_groups_with_columns(tmp_path):
    with_cols, image_dir, _ = make_dataset(tmp_path / "a", with_columns=True)
    without, image_dir_b, _ = make_dataset(tmp_path / "b", with_columns=False)
    a, _ = load_labelled_images(with_cols, image_dir)
    b, _ = load_labelled_images(without, image_dir_b)
    assert list(a["group"]) == list(b["group"])
    assert a["group"].nunique() == 6


def test_unparseable_name_without_columns_is_an_error(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "frame1.png").write_bytes(b"")
    pd.DataFrame({"image_filename": ["frame1.png"], "label": ["clear"]}).to_csv(
        tmp_path / "l.csv", index=False)
    with pytest.raises(LabelsError, match="frame1.png.*station.*night"):
        load_labelled_images(tmp_path / "l.csv", tmp_path / "img")


# --- bad inputs -----------------------------------------------------------------------------

def test_missing_columns_named(tmp_path):
    with pytest.raises(LabelsError, match="missing column.*label"):
        validate_labels(pd.DataFrame({"image_filename": ["a.png"]}), "labels.csv")


def test_unknown_label_names_value_and_lines():
    table = pd.DataFrame({"image_filename": ["a.png", "b.png", "c.png"],
                          "label": ["clear", "partly", "cloudy"]})
    with pytest.raises(LabelsError, match=r"'partly' on line\(s\) 3"):
        validate_labels(table, "labels.csv")


def test_missing_images_dropped_and_counted(dataset, caplog):
    labels_csv, image_dir, table = dataset
    for name in table["image_filename"][:3]:
        (image_dir / name).unlink()
    out, report = load_labelled_images(labels_csv, image_dir)
    assert len(out) == len(table) - 3
    assert len(report.missing_images) == 3
    with caplog.at_level(logging.INFO):
        report.log(logging.getLogger("t"), labels_csv, image_dir)
    assert "3 rows dropped because the image is missing" in caplog.text


def test_empty_set_is_an_error(dataset):
    labels_csv, image_dir, table = dataset
    for name in table["image_filename"]:
        (image_dir / name).unlink()
    with pytest.raises(LabelsError, match="no labelled images left.*24 images missing"):
        load_labelled_images(labels_csv, image_dir)
    labels_csv.write_text("")
    with pytest.raises(LabelsError, match="is empty.*image_filename,label"):
        load_labelled_images(labels_csv, image_dir)


def test_more_folds_than_groups():
    table = _table([("g1", ["clear", "cloudy"]), ("g2", ["clear", "cloudy"])])
    with pytest.raises(SplitError, match=r"n_folds=3 but the data hold only 2 group\(s\).*data.group_by"):
        assign_folds(table, 3, 0)


def test_fold_with_one_class_only():
    # Validation of one fold single-class: a warning. Training part single-class: an error.
    splits = _table([("g1", ["clear", "clear"]), ("g2", ["clear", "cloudy"]),
                     ("g3", ["cloudy", "clear"])])
    splits["fold"] = splits["group"].map({"g1": 0, "g2": 1, "g3": 2})
    warnings = check_folds(splits)
    assert len(warnings) == 1 and warnings[0].startswith("fold 0: validation holds only 'clear'")
    splits = _table([("g1", ["clear"]), ("g2", ["clear"]), ("g3", ["cloudy", "cloudy"])])
    splits["fold"] = splits["group"].map({"g1": 0, "g2": 1, "g3": 2})
    with pytest.raises(SplitError, match="fold 2: its training part holds only 'clear'"):
        check_folds(splits)


def test_single_class_data_refused():
    with pytest.raises(SplitError, match="both 'clear' and 'cloudy'"):
        assign_folds(_table([(f"g{i}", ["clear"]) for i in range(4)]), 3, 0)


# --- folds ----------------------------------------------------------------------------------

def test_folds_keep_groups_together_and_repeat_with_seed():
    table = _table([(f"g{i}", ["clear", "cloudy", "clear"]) for i in range(9)])
    a = assign_folds(table, 3, 7)
    assert (a.groupby("group")["fold"].nunique() == 1).all()
    assert sorted(a["fold"].unique()) == [0, 1, 2]
    shuffled = table.sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(a, assign_folds(shuffled, 3, 7))


def test_splits_written_once_and_changed_labels_refused(tmp_path, dataset):
    labels_csv, image_dir, _ = dataset
    table, _ = load_labelled_images(labels_csv, image_dir)
    path = tmp_path / "exp" / "splits.csv"
    first = load_or_create_splits(path, table, 3, 42)
    stamp = path.stat().st_mtime_ns
    again = load_or_create_splits(path, table, 3, 42)
    pd.testing.assert_frame_equal(first.reset_index(drop=True), again.reset_index(drop=True))
    assert path.stat().st_mtime_ns == stamp  # reused, not rewritten
    changed = table.copy()
    changed.loc[0, "label"] = "cloudy" if changed.loc[0, "label"] == "clear" else "clear"
    with pytest.raises(SplitError, match="1 image\\(s\\) relabelled.*name=<new name>"):
        load_or_create_splits(path, changed, 3, 42)
    assert not assign_folds(table, 3, 7)["fold"].equals(first["fold"].reset_index(drop=True))
    with pytest.raises(SplitError, match="other folds than data.split_seed=7.*name=<new name>"):
        load_or_create_splits(path, table, 3, 7)


# --- options from other steps ---------------------------------------------------------------

def test_min_edge_distance_drops_near_rows(dataset):
    labels_csv, image_dir, table = dataset
    out, report = load_labelled_images(labels_csv, image_dir, min_edge_distance_s=65)
    # edge_distance_s is 30, 60, 90, 120 within each group: two of four dropped.
    assert report.dropped_near_edge == 12 and len(out) == 12
    assert (out["edge_distance_s"].abs() >= 65).all()
    with pytest.raises(LabelsError, match="edge_distance_s"):
        filter_edge_distance(table.drop(columns="edge_distance_s"), 10)
    garbled = table.astype({"edge_distance_s": object})
    garbled.loc[3, "edge_distance_s"] = "n/a"
    garbled.loc[4, "edge_distance_s"] = None  # empty cell: a night without intervals, kept
    with pytest.raises(LabelsError, match="not a number on line\\(s\\) 5 \\(first: 'n/a'\\)"):
        filter_edge_distance(garbled, 10)


def test_label_overrides_relabel_and_remove(tmp_path, dataset):
    labels_csv, image_dir, table = dataset
    names = list(table["image_filename"])
    overrides = tmp_path / "label_overrides.csv"
    flipped = "cloudy" if table.loc[0, "label"] == "clear" else "clear"
    pd.DataFrame({"image_filename": [names[0], names[1], names[2]],
                  "label": [flipped, "remove", table.loc[2, "label"]]}).to_csv(overrides, index=False)
    out, report = load_labelled_images(labels_csv, image_dir, label_overrides=overrides)
    assert report.overridden == 1 and report.removed_by_override == 1  # unchanged row not counted
    assert names[1] not in set(out["image_filename"])
    assert out.set_index("image_filename").at[names[0], "label"] == flipped


def test_label_overrides_bad_value_conflict_and_unknown_image():
    table = pd.DataFrame({"image_filename": ["a.png"], "label": ["clear"]})
    with pytest.raises(LabelsError, match="not in the labels file"):
        apply_overrides(table, pd.DataFrame({"image_filename": ["b.png"], "label": ["clear"]}))
    with pytest.raises(LabelsError, match="unknown override value\\(s\\) 'maybe'"):
        validate_overrides(pd.DataFrame({"image_filename": ["a.png"], "label": ["maybe"]}), "o.csv")
    with pytest.raises(LabelsError, match="conflicting overrides for a.png"):
        validate_overrides(pd.DataFrame({"image_filename": ["a.png", "a.png"],
                                         "label": ["clear", "remove"]}), "o.csv")


# --- the DataModule ------------------------------------------------------------------------

def test_datamodule_fold_tables_and_grayscale_to_three_channels(tmp_path, dataset):
    labels_csv, image_dir, _ = dataset
    dm = GMNDataModule(str(labels_csv), str(image_dir), n_folds=3, image_size=[32, 56],
                       batch_size=4, num_workers=0, fold=1, splits_csv=str(tmp_path / "s.csv"),
                       augmentation={"input": "whole_frame", "train": {"hflip": 0.5}})
    dm.setup("fit")
    assert set(dm.train_table["group"]).isdisjoint(dm.val_table["group"])
    assert len(dm.train_table) + len(dm.val_table) == 24
    batch = next(iter(dm.val_dataloader()))
    assert batch["image"].shape[1:] == torch.Size([3, 32, 56])  # whole frame, 3 channels
    assert set(batch["target"].tolist()) <= {0.0, 1.0}
    # The prediction loader is the validation images in table order, rows by index.
    indices = [i for b in dm.predict_dataloader() for i in b["index"].tolist()]
    assert indices == list(range(len(dm.val_table)))


def test_datamodule_rejects_fold_out_of_range(dataset):
    labels_csv, image_dir, _ = dataset
    with pytest.raises(ValueError, match="fold=3 is outside 0..2"):
        GMNDataModule(str(labels_csv), str(image_dir), n_folds=3, fold=3, splits_csv="x.csv")


# --- transforms -----------------------------------------------------------------------------

def _preprocessing(*overrides: str) -> tuple[dict, dict]:
    """The composed ``augmentation`` group and the input spec it resolves to (from scratch)."""
    cfg = compose_train(*overrides)
    augmentation = OmegaConf.to_container(cfg.augmentation, resolve=True)
    image_size = OmegaConf.to_container(cfg.data.image_size)
    return augmentation, resolve_preprocessing(augmentation, image_size)


def test_reference_augmentation_is_the_reference_pipeline(tmp_path):
    augmentation, spec = _preprocessing("augmentation=reference")
    assert spec["resize"] == 256 and spec["center_crop"] == [224, 224]  # Resize 256 (cached)
    steps = train_transform(augmentation, spec).transforms
    assert [type(s) for s in steps] == [v2.RandomCrop, v2.RandomHorizontalFlip,
                                        v2.RandomRotation, v2.ColorJitter]
    assert steps[0].size == (224, 224) and steps[1].p == 0.5
    assert list(steps[2].degrees) == [-15.0, 15.0]
    assert steps[3].brightness == steps[3].contrast == (0.8, 1.2)
    normalize = InputNormalization(spec)
    assert torch.allclose(normalize.shift.flatten(),
                          torch.tensor([0.485 / 0.229, 0.456 / 0.224, 0.406 / 0.225]))
    Image.new("RGB", (1280, 720)).save(tmp_path / "frame.png")
    frame = torch.from_numpy(frame_pixels(tmp_path / "frame.png", spec["resize"]))
    assert frame.shape == torch.Size([3, 256, 455])  # shorter edge to 256, aspect kept
    assert train_transform(augmentation, spec)(frame).shape == torch.Size([3, 224, 224])
    assert eval_transform(spec)(frame).shape == torch.Size([3, 224, 224])


def test_default_input_keeps_the_whole_16_9_frame(tmp_path):
    augmentation, spec = _preprocessing()
    frame = Image.new("RGB", (1280, 720))
    # White bands along the left and right edges: a centre crop would cut both away.
    draw = ImageDraw.Draw(frame)
    draw.rectangle([0, 0, 63, 719], fill="white")
    draw.rectangle([1216, 0, 1279, 719], fill="white")
    frame.save(tmp_path / "frame.png")
    pixels = torch.from_numpy(network_pixels(tmp_path / "frame.png", spec))
    image = InputNormalization(spec)(eval_transform(spec)(pixels)[None])[0]
    assert image.shape == torch.Size([3, 216, 384])
    assert image[:, :, :5].mean() > 2 and image[:, :, -5:].mean() > 2  # both edges still white
    assert image[:, :, 150:230].mean() < -1
    trained_on = train_transform(augmentation, spec)(pixels)  # flips and jitter, no crop
    assert trained_on.shape == torch.Size([3, 216, 384]) and trained_on.dtype == torch.uint8
    assert trained_on[:, :, :5].float().mean() > 200 and trained_on[:, :, -5:].float().mean() > 200
