"""converter=local and converter=none through run(cfg) with the real composed config."""

from __future__ import annotations

import logging

import numpy as np
from fixtures_gemini import make_night_image, prep_config
from PIL import Image

from data_prep import night_to_day
from data_prep.converters.local_day_style import LOCAL_MODEL
from data_prep.converters.manifest import read_manifest


def names(n: int) -> list[str]:
    return [f"CAWEC2_20251106_2300{i:02d}_000.png" for i in range(1, n + 1)]


def test_local_converts_every_image_then_skips_them(tmp_path):
    data = tmp_path / "data"
    for i, name in enumerate(names(3), start=1):
        make_night_image(data / "extracted_night" / name, i, size=(48, 27))
    (data / "extracted_night" / "CAWEC2_20251106_230009_000.png").write_bytes(b"not a png")
    (data / "extracted_night" / "notes.png").write_bytes(b"x")  # not a frame name
    cfg = prep_config([f"paths.data_dir={data}"])  # converter=local is the default
    assert cfg.converter.name == "local"
    summary = night_to_day.run(cfg)
    assert summary.counts["done"] == 3 and summary.counts["failed"] == 1
    assert summary.counts["bad_name"] == 1 and summary.exit_code == 1
    assert any("notes.png" in f for f in summary.failures)
    assert any("230009" in f and "unreadable" in f for f in summary.failures)
    rows = read_manifest(data / "night_to_day_manifest.csv")
    assert {n: r.status for n, r in rows.items()} == {
        **{n: "done" for n in names(3)}, "CAWEC2_20251106_230009_000.png": "failed"}
    assert {r.model for r in rows.values()} == {LOCAL_MODEL}
    for name in names(3):
        with Image.open(data / "converted_day" / name) as img:
            assert img.size == (48, 27) and img.mode == "RGB"
            rgb = np.asarray(img).astype(int)
            assert (rgb[..., 2] > rgb[..., 0]).mean() > 0.5  # mostly blue sky
    stamps = {n: (data / "converted_day" / n).stat().st_mtime_ns for n in names(3)}
    again = night_to_day.run(cfg)
    assert again.counts["skipped_done"] == 3 and again.counts["done"] == 0
    assert stamps == {n: (data / "converted_day" / n).stat().st_mtime_ns for n in names(3)}


def test_none_converts_nothing_and_points_training_at_the_night_frames(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="data_prep.night_to_day")
    data = tmp_path / "data"
    make_night_image(data / "extracted_night" / names(1)[0], 1)
    summary = night_to_day.run(prep_config([f"paths.data_dir={data}", "converter=none"]))
    assert summary.exit_code == 0
    assert summary.outputs["image_dir"] == str(data / "extracted_night")
    assert "data.image_dir=" + str(data / "extracted_night") in caplog.text
    assert not (data / "converted_day").exists()
    assert not (data / "night_to_day_manifest.csv").exists()
