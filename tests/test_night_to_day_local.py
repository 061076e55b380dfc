"""converter=local and converter=none through run(cfg) with the real composed config."""

from __future__ import annotations

import logging
import re

import numpy as np
from fixtures_gemini import make_night_image, prep_config
from PIL import Image

from data_prep import night_to_day
from data_prep.converters.local_day_style import LOCAL_MODEL
from data_prep.converters.night_to_day_manifest import read_manifest


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


def starry_frame(path, spacing: int) -> None:
    """160x90 frame: sky at 30 DN, a star every ``spacing`` pixels, dark ground from row 75."""
    frame = np.full((90, 160), 30, dtype=np.uint8)
    frame[4:72:spacing, 4:156:spacing] = 200
    frame[75:] = 5
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame, mode="L").save(path)


def test_auto_star_density_is_measured_per_station_on_its_clear_frames(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="data_prep.converters.local_run")
    data = tmp_path / "data"
    night = data / "extracted_night"
    rows = ["image_filename,label,station,night,timestamp,edge_distance_s"]
    for i in range(4):  # AA0001's clear frames: a star every 8 px (about 2.2 per 1 %)
        name = f"AA0001_20251106_2300{i:02d}_000.png"
        starry_frame(night / name, 8)
        rows.append(f"{name},clear,AA0001,20251105,2025-11-06T23:00:{i:02d}+00:00,900")
    for i in range(2):  # BB0002 has only cloudy-labelled frames
        name = f"BB0002_20251106_2300{i:02d}_000.png"
        starry_frame(night / name, 16)
        rows.append(f"{name},cloudy,BB0002,20251105,2025-11-06T23:00:{i:02d}+00:00,900")
    (data / "extracted_night_labels.csv").write_text("\n".join(rows) + "\n")

    summary = night_to_day.run(prep_config([f"paths.data_dir={data}"]))
    assert summary.counts["done"] == 6 and summary.exit_code == 0
    assert summary.counts["stations_calibrated"] == 1
    assert summary.counts["stations_default_density"] == 1
    measured = re.search(r"station AA0001 clear_star_density=(\d+\.\d+) from 4 frame", caplog.text)
    assert measured and 1.2 < float(measured[1]) < 1.7  # 0.65 x about 2.2
    assert "no readable frames labelled clear for station BB0002" in caplog.text
    hashes = {n[:6]: r.prompt_hash for n, r in read_manifest(data / "night_to_day_manifest.csv").items()}
    assert hashes["AA0001"] != hashes["BB0002"]  # each station's settings are recorded
