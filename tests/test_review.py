"""Label review round trip: create sidecars, rename them as a person would, apply."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf
from PIL import Image

from data_prep import review

REPO = Path(__file__).resolve().parents[1]

NAMES = [
    "CAWEC2_20251106_223015_012.png",
    "CAWEC2_20251106_223020_004.png",
    "US0001_20251107_011500_500.png",
    "US0001_20251107_011505_501.png",
]


def _images(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        Image.new("L", (8, 6), 40).save(folder / name)
    return folder


def _predictions(path: Path, folder: Path) -> Path:
    frame = pd.DataFrame({
        "filename": [str(folder / n) for n in NAMES],
        "prediction": ["clear", "cloudy", "clear", "cloudy"],
        "confidence": [0.9, 0.8, 0.7, 0.95],
        "prob_clear": [0.9, 0.2, 0.7, 0.05],
    })
    frame.to_csv(path, index=False)
    return path


def _cfg(action: str, images: Path, predictions: Path | None = None, write: str = "changed"):
    return OmegaConf.create({"review": {
        "action": action, "input": str(predictions) if predictions else None,
        "images": str(images), "index": None, "overrides": None, "write": write,
    }})


def _stem(name: str) -> str:
    return Path(name).stem


def test_create_writes_one_sidecar_per_image_and_an_index(tmp_path):
    images = _images(tmp_path / "imgs")
    summary = review.run(_cfg("create", images, _predictions(tmp_path / "p.csv", images)))

    assert summary.ok
    sidecars = sorted(p.name for p in images.glob("*.txt"))
    assert sidecars == sorted([
        f"{_stem(NAMES[0])}.clear.txt", f"{_stem(NAMES[1])}.cloudy.txt",
        f"{_stem(NAMES[2])}.clear.txt", f"{_stem(NAMES[3])}.cloudy.txt",
    ])
    assert all((images / s).stat().st_size == 0 for s in sidecars)
    index = pd.read_csv(images / "review_index.csv")
    assert list(index.columns) == ["image_filename", "prediction", "prob_clear", "sidecar"]
    assert list(index.image_filename) == NAMES
    assert summary.counts == {"sidecars_clear": 2, "sidecars_cloudy": 2}


def test_round_trip_renamed_sidecars_become_overrides(tmp_path):
    images = _images(tmp_path / "imgs")
    review.run(_cfg("create", images, _predictions(tmp_path / "p.csv", images)))
    # The person disagrees with two predictions and drops one image.
    os.rename(images / f"{_stem(NAMES[0])}.clear.txt", images / f"{_stem(NAMES[0])}.cloudy.txt")
    os.rename(images / f"{_stem(NAMES[1])}.cloudy.txt", images / f"{_stem(NAMES[1])}.Clear.txt")
    os.rename(images / f"{_stem(NAMES[3])}.cloudy.txt", images / f"{_stem(NAMES[3])}.remove.txt")

    summary = review.run(_cfg("apply", images))

    assert summary.ok
    overrides = pd.read_csv(images / "label_overrides.csv")
    assert overrides.to_dict("records") == [
        {"image_filename": NAMES[0], "label": "cloudy"},
        {"image_filename": NAMES[1], "label": "clear"},
        {"image_filename": NAMES[3], "label": "remove"},
    ]
    assert summary.counts == {"relabelled": 2, "confirmed": 1, "removed": 1}
    assert not list(images.glob(".*.tmp"))

    everything = review.run(_cfg("apply", images, write="all"))
    assert everything.ok
    assert len(pd.read_csv(images / "label_overrides.csv")) == 4


def test_create_rerun_keeps_renamed_sidecars(tmp_path):
    images = _images(tmp_path / "imgs")
    predictions = _predictions(tmp_path / "p.csv", images)
    review.run(_cfg("create", images, predictions))
    os.rename(images / f"{_stem(NAMES[0])}.clear.txt", images / f"{_stem(NAMES[0])}.cloudy.txt")

    again = review.run(_cfg("create", images, predictions))

    assert again.counts == {"sidecars_kept": 4}
    assert not (images / f"{_stem(NAMES[0])}.clear.txt").exists()
    overrides_summary = review.run(_cfg("apply", images))
    assert pd.read_csv(images / "label_overrides.csv").to_dict("records") == [
        {"image_filename": NAMES[0], "label": "cloudy"}]
    assert overrides_summary.counts["relabelled"] == 1


def test_ambiguous_sidecars_are_named_and_nothing_is_written(tmp_path):
    images = _images(tmp_path / "imgs")
    review.run(_cfg("create", images, _predictions(tmp_path / "p.csv", images)))
    (images / f"{_stem(NAMES[0])}.cloudy.txt").touch()  # now both .clear and .cloudy
    os.rename(images / f"{_stem(NAMES[1])}.cloudy.txt", images / f"{_stem(NAMES[1])}.claer.txt")
    os.rename(images / f"{_stem(NAMES[2])}.clear.txt", images / f"{_stem(NAMES[2])}.txt")
    (images / f"{_stem(NAMES[3])}.cloudy.txt").unlink()  # left out of the review

    summary = review.run(_cfg("apply", images))

    assert summary.exit_code == 1
    text = "\n".join(summary.failures)
    assert f"{_stem(NAMES[0])}.clear.txt, {_stem(NAMES[0])}.cloudy.txt" in text
    assert "unknown label 'claer'" in text
    assert f"{_stem(NAMES[2])}.txt has no label" in text
    assert summary.counts["no_sidecar"] == 1
    assert not (images / "label_overrides.csv").exists()


def test_create_reports_missing_images_and_unpredicted_rows(tmp_path):
    images = _images(tmp_path / "imgs")
    frame = pd.DataFrame({
        "filename": [NAMES[0], "CAWEC2_20990101_000000_000.png", NAMES[1]],
        "prediction": ["clear", "clear", "error"],
        "confidence": [0.9, 0.9, None], "prob_clear": [0.9, 0.9, None],
    })
    frame.to_csv(tmp_path / "p.csv", index=False)

    summary = review.run(_cfg("create", images, tmp_path / "p.csv"))

    assert summary.exit_code == 1
    text = "\n".join(summary.failures)
    assert "CAWEC2_20990101_000000_000.png is not in the images folder" in text
    assert f"{NAMES[1]} has prediction 'error'" in text
    assert [p.name for p in images.glob("*.txt")] == [f"{_stem(NAMES[0])}.clear.txt"]


def test_bad_inputs_raise_named_errors(tmp_path):
    images = _images(tmp_path / "imgs")
    with pytest.raises(review.ReviewError, match="run `python -m data_prep.review create"):
        review.run(_cfg("apply", images))
    with pytest.raises(review.ReviewError, match="review.action='oops'"):
        review.run(_cfg("oops", images))
    (tmp_path / "bad.csv").write_text("name,label\nx.png,clear\n")
    with pytest.raises(review.ReviewError, match="missing column"):
        review.run(_cfg("create", images, tmp_path / "bad.csv"))


def test_argv_short_forms():
    assert review.normalise_argv(["create", "input=p.csv", "images=d", "paths.data_dir=x"]) == [
        "hydra/help=review",
        "review.action=create", "review.input=p.csv", "review.images=d", "paths.data_dir=x"]


def _prep_config_composes() -> bool:
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
            compose(config_name="prep")
    except HydraException:
        return False
    return True


def test_command_line_round_trip(tmp_path):
    if not _prep_config_composes():
        pytest.skip("conf/prep.yaml does not compose yet (a step's config group is missing)")
    images = _images(tmp_path / "imgs")
    predictions = _predictions(tmp_path / "p.csv", images)
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    base = [sys.executable, "-m", "data_prep.review"]
    common = [f"paths.data_dir={tmp_path / 'data'}", "hydra/job_logging=none",
              "hydra/hydra_logging=none"]
    created = subprocess.run(base + ["create", f"input={predictions}", f"images={images}"] + common,
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                             check=False)
    assert created.returncode == 0, created.stderr
    os.rename(images / f"{_stem(NAMES[2])}.clear.txt", images / f"{_stem(NAMES[2])}.remove.txt")
    applied = subprocess.run(base + ["apply", f"images={images}"] + common,
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                             check=False)
    assert applied.returncode == 0, applied.stderr
    assert f"data.label_overrides={images / 'label_overrides.csv'}" in applied.stdout
    assert pd.read_csv(images / "label_overrides.csv").to_dict("records") == [
        {"image_filename": NAMES[2], "label": "remove"}]


def test_overrides_are_applied_by_the_datamodule(tmp_path):
    datamodule = pytest.importorskip("gmn_weather.datamodule")
    images = _images(tmp_path / "imgs")
    pd.DataFrame({"image_filename": NAMES, "label": ["clear", "clear", "cloudy", "cloudy"]}).to_csv(
        tmp_path / "labels.csv", index=False)
    review.run(_cfg("create", images, _predictions(tmp_path / "p.csv", images)))
    # The model said NAMES[1] is cloudy; the person agrees with the training label instead
    # for NAMES[0] (-> cloudy) and drops NAMES[3].
    os.rename(images / f"{_stem(NAMES[0])}.clear.txt", images / f"{_stem(NAMES[0])}.cloudy.txt")
    os.rename(images / f"{_stem(NAMES[3])}.cloudy.txt", images / f"{_stem(NAMES[3])}.remove.txt")
    assert review.run(_cfg("apply", images)).ok

    dm = datamodule.GMNDataModule(str(tmp_path / "labels.csv"), str(images), mode="final",
                                  num_workers=0, label_overrides=str(images / "label_overrides.csv"))
    dm.prepare_table()

    labels = dict(zip(dm.table.image_filename, dm.table.label))
    assert labels == {NAMES[0]: "cloudy", NAMES[1]: "clear", NAMES[2]: "cloudy"}
    assert (dm.report.overridden, dm.report.removed_by_override) == (1, 1)
