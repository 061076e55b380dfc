"""One inference path: ``SkyClassifier.predict_step`` scores a fold's out-of-fold images
(through ``Trainer.predict`` in the fold job) and every image ``predict.py`` is given."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from fixtures_train import compose_train, make_dataset, tiny_overrides

from gmn_weather.experiment import ExperimentDir
from gmn_weather.model import SkyClassifier
from gmn_weather.oof_callback import fold_predictions
from gmn_weather.predict import predict_paths
from gmn_weather.training import train


@pytest.fixture()
def predict_step_calls(monkeypatch) -> list[list[int]]:
    """The row indices of every batch ``predict_step`` scored (the real method still runs)."""
    calls: list[list[int]] = []
    original = SkyClassifier.predict_step

    def recording(self, batch, batch_idx=0):
        out = original(self, batch, batch_idx)
        calls.append(out["index"].tolist())
        return out

    monkeypatch.setattr(SkyClassifier, "predict_step", recording)
    return calls


def test_oof_and_predict_use_predict_step_and_agree_exactly(tmp_path, predict_step_calls):
    _, image_dir, _ = make_dataset(tmp_path / "data")
    train(compose_train(*tiny_overrides(tmp_path / "data", tmp_path / "out"), "logger=none",
                        "fold=0"))
    fold = ExperimentDir(tmp_path / "out" / "tiny_test_resnet_light").fold(0)
    oof = pd.read_csv(fold.oof_csv)
    assert sorted(i for batch in predict_step_calls for i in batch) == list(range(len(oof)))

    # predict.py's path on the same weights (the fold's last checkpoint) and the same images,
    # in batches of the same size (CPU kernels may round differently for another batch size).
    predict_step_calls.clear()
    files = [image_dir / name for name in oof["image_filename"]]
    table = predict_paths(fold.checkpoints_dir / "last.ckpt", files, batch_size=6)
    assert sorted(i for batch in predict_step_calls for i in batch) == list(range(len(files)))
    assert [len(batch) for batch in predict_step_calls] == [6, len(files) - 6]
    assert table["prob_clear"].tolist() == oof["prob_clear"].tolist()


def test_fold_predictions_join_rows_by_index():
    val = pd.DataFrame({"image_filename": ["a", "b", "c"], "label": ["clear", "cloudy", "clear"],
                        "group": ["g", "g", "h"], "fold": [1, 1, 1], "extra": [0, 0, 0]})
    batches = [{"index": torch.tensor([2, 0]), "prob_clear": torch.tensor([0.25, 0.5])},
               {"index": torch.tensor([1]), "prob_clear": torch.tensor([0.75])}]
    table = fold_predictions(val, batches)
    assert table.to_dict("list") == {"image_filename": ["a", "b", "c"],
                                     "label": ["clear", "cloudy", "clear"],
                                     "group": ["g", "g", "h"], "fold": [1, 1, 1],
                                     "prob_clear": [0.5, 0.75, 0.25]}
    assert fold_predictions(val, batches, optimistic=True)["optimistic"].all()
    with pytest.raises(RuntimeError, match="cover 2 of the 3 validation images"):
        fold_predictions(val, batches[:1])
