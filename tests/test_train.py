"""``train(cfg)`` in-process: determinism on CPU and refusal of changed labels."""

from __future__ import annotations

import pandas as pd
import pytest
from fixtures_train import compose_train, make_dataset, tiny_overrides

from gmn_weather.splits import SplitError
from gmn_weather.training import train


def _fold0(data_dir, output_root, *extra):
    cfg = compose_train(*tiny_overrides(data_dir, output_root), "logger=none", "fold=0", *extra)
    train(cfg)
    return output_root / "tiny_test_resnet_light"


def test_same_seed_gives_identical_splits_and_oof_probabilities(tmp_path):
    make_dataset(tmp_path / "data")
    a = _fold0(tmp_path / "data", tmp_path / "run_a")
    b = _fold0(tmp_path / "data", tmp_path / "run_b")
    assert (a / "splits.csv").read_bytes() == (b / "splits.csv").read_bytes()
    oof_a = pd.read_csv(a / "fold_0" / "oof_predictions.csv")
    oof_b = pd.read_csv(b / "fold_0" / "oof_predictions.csv")
    pd.testing.assert_frame_equal(oof_a, oof_b, check_exact=True)
    assert oof_a["prob_clear"].nunique() > 1  # real predictions, not a constant


def test_changed_labels_refused_for_the_same_experiment(tmp_path):
    labels_csv, _, table = make_dataset(tmp_path / "data")
    _fold0(tmp_path / "data", tmp_path / "out", "trainer.max_epochs=0")
    table.loc[0, "label"] = "cloudy" if table.loc[0, "label"] == "clear" else "clear"
    table.to_csv(labels_csv, index=False)
    with pytest.raises(SplitError, match="labelled data changed.*name=<new name>"):
        _fold0(tmp_path / "data", tmp_path / "out", "trainer.max_epochs=0")


def test_label_overrides_are_reported_at_start(tmp_path, caplog):
    _, _, table = make_dataset(tmp_path / "data")
    overrides = tmp_path / "label_overrides.csv"
    pd.DataFrame({"image_filename": [table.loc[0, "image_filename"]],
                  "label": ["remove"]}).to_csv(overrides, index=False)
    with caplog.at_level("INFO"):
        _fold0(tmp_path / "data", tmp_path / "out", f"data.label_overrides={overrides}",
               "trainer.max_epochs=0")
    assert "label overrides: 1 rows overridden" in caplog.text
    splits = pd.read_csv(tmp_path / "out" / "tiny_test_resnet_light" / "splits.csv")
    assert len(splits) == len(table) - 1
