"""Extract and label a synthetic GMN archive (data_prep.synthetic): every label agrees with
the generator's truth.csv, and every PNG is the truth row's frame of the truth row's video."""

import shutil

import av
import numpy as np
import pandas as pd
from fixtures_video import prep_config
from PIL import Image

from data_prep import extract, label
from data_prep.synthetic import __main__ as synthetic


def test_synthetic_archive_labels_match_truth(tmp_path):
    cfg = prep_config(tmp_path, synthetic__width=160, synthetic__height=96,
                      synthetic__stations=2, synthetic__nights=2,
                      synthetic__frames_per_night=40, synthetic__day_timelapses=False,
                      synthetic__legacy_names=True, extract__per_night=12,
                      extract__edge_margin_s=0)
    assert synthetic.run(cfg).ok
    archive = tmp_path / "synthetic_gmn"
    # What find and download would leave: videos and maps under raw_data/, interval files
    # named after their _detected folder.
    shutil.copytree(archive / "contrails", tmp_path / "raw_data")
    flux = tmp_path / "flux_time_intervals"
    flux.mkdir()
    for path in (archive / "extracted_data").rglob("flux_time_intervals.json"):
        shutil.copy(path, flux / f"{path.parent.name}_flux_time_intervals.json")

    assert extract.run(cfg).ok
    labelled = label.run(cfg)
    assert labelled.ok, labelled.failures

    truth = pd.read_csv(archive / "truth.csv").set_index("image_filename")
    labels = pd.read_csv(tmp_path / "extracted_night_labels.csv")
    assert len(labels) == 4 * 12
    assert (labels["label"].to_numpy() == truth.loc[labels["image_filename"], "label"].to_numpy()
            ).all()
    assert set(labels["label"]) == {"clear", "cloudy"}

    for name in labels["image_filename"][::6]:
        row = truth.loc[name]
        with av.open(str(archive / row["video"])) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i == row["frame_index"]:
                    expected = frame.to_ndarray(format="gray")
                    break
        with Image.open(tmp_path / "extracted_night" / name) as image:
            assert np.array_equal(np.asarray(image), expected), name
