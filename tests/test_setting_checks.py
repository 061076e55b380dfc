"""Out-of-range config values and odd labels files: one line naming the key or file.

``data.batch_size=0`` was a ZeroDivisionError, ``model.optimizer.lr=abc`` a TypeError from
torch, ``download.workers=0`` downloaded nothing and exited 0, a labels header with blanks
after the commas was "missing column", a Latin-1 labels file a UnicodeDecodeError without
its name. Now each is refused before any work, or works as documented.
"""

from __future__ import annotations

import pytest
from fixtures_sshd import make_small_archive
from fixtures_train import compose_train, make_dataset, run_cli, tiny_overrides

from data_prep.nights.target_lists import read_target_lists
from data_prep.summary import StepSummary
from gmn_base.settings import SettingError, check_settings, number, whole
from gmn_weather.labelled_images import LabelsError, load_labelled_images
from gmn_weather.predict import PredictInputError, run
from gmn_weather.preprocessing import InputSettingError
from gmn_weather.training import train


@pytest.mark.parametrize("rule, value, ok", [
    (whole(1), 1, True), (whole(1), 0, False), (whole(1), -2, False), (whole(1), 2.0, False),
    (whole(1), True, False), (whole(1), "3", False), (whole(1), None, False),
    (whole(1, nullable=True), None, True), (whole(0, 9), 9, True), (whole(0, 9), 10, False),
    (number(0, low_open=True), 0, False), (number(0, low_open=True), 1e-5, True),
    (number(0, 1), float("nan"), False),
])
def test_rules(rule, value, ok):
    assert rule.accepts(value) is ok


def test_every_bad_key_in_one_line():
    with pytest.raises(SettingError) as err:
        check_settings({"data": {"batch_size": 0, "num_workers": "2"}, "other": 1},
                       {"data.batch_size": whole(1), "data.num_workers": whole(0),
                        "absent.key": whole(1)})
    assert str(err.value) == ("data.batch_size=0: expected a whole number >= 1; "
                              "data.num_workers='2': expected a whole number >= 0 (write it "
                              "without quotes)")


def test_train_refuses_bad_values_in_one_line_before_any_folder(tmp_path):
    make_dataset(tmp_path / "data")
    proc = run_cli("train.py", *tiny_overrides(tmp_path / "data", tmp_path / "out"),
                   "data.batch_size=0", "data.num_workers=-1", "model.optimizer.lr=abc",
                   "trainer.max_epochs=-3", "data.n_folds=1", "seed=x", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [(
        "train.py: seed='x': expected a whole number; data.n_folds=1: expected a whole number "
        ">= 2; data.batch_size=0: expected a whole number >= 1; data.num_workers=-1: expected "
        "a whole number >= 0; trainer.max_epochs=-3: expected a whole number >= 0 or null "
        "(Lightning's default); model.optimizer.lr='abc': expected a number > 0")]
    assert not list((tmp_path / "out").glob("*/splits.csv"))


@pytest.mark.parametrize("size", ["[0,48]", "32", "[32,48,3]"])
def test_image_size_must_be_height_and_width(tmp_path, size):
    make_dataset(tmp_path / "data")
    cfg = compose_train(*tiny_overrides(tmp_path / "data", tmp_path / "out"),
                        f"data.image_size={size}")
    with pytest.raises(InputSettingError, match=r"^data.image_size=.*: expected \[H, W\] \(two "
                                                r"positive integers\) or null"):
        train(cfg)
    assert not (tmp_path / "out").exists()


def test_a_group_by_typo_is_named_before_any_folder(tmp_path):
    make_dataset(tmp_path / "data")
    cfg = compose_train(*tiny_overrides(tmp_path / "data", tmp_path / "out"),
                        "data.group_by=stations")
    with pytest.raises(LabelsError, match=r"^data.group_by='stations': expected one of "
                                          r"station_night, night, station$"):
        train(cfg)
    assert not (tmp_path / "out").exists()


def test_labels_header_with_blanks_after_the_commas_is_read(tmp_path):
    labels_csv, image_dir, table = make_dataset(tmp_path / "data")
    text = labels_csv.read_text().splitlines()
    labels_csv.write_text("\n".join([", ".join(text[0].split(","))] + text[1:]) + "\n")
    loaded, _ = load_labelled_images(labels_csv, image_dir)
    assert sorted(loaded["image_filename"]) == sorted(table["image_filename"])


def test_labels_with_a_utf8_bom_are_read(tmp_path):
    labels_csv, image_dir, table = make_dataset(tmp_path / "data")
    labels_csv.write_bytes(b"\xef\xbb\xbf" + labels_csv.read_bytes())
    loaded, _ = load_labelled_images(labels_csv, image_dir)
    assert len(loaded) == len(table)


def test_latin1_labels_and_overrides_are_named(tmp_path):
    labels_csv, image_dir, _ = make_dataset(tmp_path / "data")
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(labels_csv.read_bytes() + "Café_note.png,clear\n".encode("latin-1"))
    with pytest.raises(LabelsError, match=rf"^{latin} is not UTF-8 text \(byte 0xe9 at offset "
                                          r"\d+\); save the labels file as UTF-8$"):
        load_labelled_images(latin, image_dir)
    overrides = tmp_path / "overrides.csv"
    overrides.write_bytes("image_filename,label\nCafé.png,remove\n".encode("latin-1"))
    with pytest.raises(LabelsError, match=rf"^{overrides} is not UTF-8 text .* label overrides"):
        load_labelled_images(labels_csv, image_dir, label_overrides=overrides)


def test_predict_settings_are_checked_before_any_image_is_read(tmp_path):
    with pytest.raises(PredictInputError) as err:
        run(str(tmp_path / "final"), str(tmp_path), str(tmp_path / "out.csv"),
            batch_size=0, num_workers="two")
    assert str(err.value) == ("batch_size=0: expected a whole number >= 1; "
                              "num_workers='two': expected a whole number >= 0")


def _prep(tmp_path) -> list[str]:
    make_small_archive(tmp_path / "archive")
    return [f"paths.data_dir={tmp_path / 'data'}", f"source.root={tmp_path / 'archive'}",
            "source.video_root=home/contrails/CA", "source.flux_root=home/extracted_data/CA"]


@pytest.mark.parametrize("command", [["-m", "data_prep.download"], ["-m", "data_prep"]])
def test_data_prep_refuses_bad_values_in_one_line(tmp_path, command):
    proc = run_cli(*command, *_prep(tmp_path), "download.workers=0", "find.workers=abc",
                   "extract.per_night=-5", "converter.max_images=-1", check=False)
    assert proc.returncode == 2
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR" in line]
    assert len(errors) == 1
    assert errors[0].endswith(
        "find.workers='abc': expected a whole number >= 1; download.workers=0: expected a "
        "whole number >= 1; extract.per_night=-5: expected a whole number >= 1; "
        "converter.max_images=-1: expected a whole number >= 0 or null (no cap)")
    assert not (tmp_path / "data" / "nights.csv").exists()  # no step did any work


def test_a_target_list_that_is_not_utf8_is_named(tmp_path):
    listed = tmp_path / "list.txt"
    listed.write_bytes("20251106_234624_983.png,clear\nCafé.png,clear\n".encode("latin-1"))
    summary = StepSummary("plan")
    assert read_target_lists([str(listed)], "plan.target_lists", summary) == []
    assert summary.failures == [(f"plan.target_lists: {listed} is not UTF-8 text (byte 0xe9 "
                                 "at offset 33); save the list as UTF-8")]
