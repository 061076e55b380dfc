"""`python -m data_prep.synthetic`: Hydra config keys, in-process and on the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from data_prep.synthetic.__main__ import run
from gmn_base.interval_files import INTERVAL_FILE_NAME, load_interval_file
from gmn_base.timelapse_names import VIDEO_SUFFIX, parse_timelapse_name

REPO = Path(__file__).resolve().parents[1]
TINY = ["synthetic.nights=1", "synthetic.frames_per_night=8", "synthetic.width=64",
        "synthetic.height=36"]


def test_run_with_a_station_count_and_a_contact_sheet(tmp_path):
    sheet = tmp_path / "sheet.png"
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("prep", overrides=[f"synthetic.out_dir={tmp_path / 'archive'}",
                                         "synthetic.stations=3", f"synthetic.contact_sheet={sheet}",
                                         "synthetic.frames_per_day=3", *TINY])
    summary = run(cfg)
    assert summary.ok
    assert summary.counts["stations"] == 3 and summary.counts["timelapses"] == 6
    assert summary.counts["frames"] == 3 * (8 + 3)
    assert sorted(p.name for p in (tmp_path / "archive" / "contrails" / "CA").iterdir()) == [
        "CA0001", "CA0002", "CA0003"]
    assert sheet.stat().st_size > 1000


def test_command_line_with_a_list_of_station_ids(tmp_path):
    out = tmp_path / "archive"
    result = subprocess.run(
        [sys.executable, "-m", "data_prep.synthetic", f"synthetic.out_dir={out}",
         "synthetic.stations=[CAWEC2,US0001]", "synthetic.day_timelapses=false",
         "synthetic.legacy_names=true", f"hydra.run.dir={tmp_path / 'hydra'}", *TINY],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Each station under its own country's folder.
    videos = sorted(out.glob("contrails/*/*/*/*" + VIDEO_SUFFIX))
    assert [v.relative_to(out).parts[1:3] for v in videos] == [("CA", "CAWEC2"), ("US", "US0001")]
    assert [parse_timelapse_name(v.name).station for v in videos] == ["CAWEC2", "US0001"]
    intervals = sorted(out.glob(f"extracted_data/*/*/*/{INTERVAL_FILE_NAME}"))
    assert {load_interval_file(p).station for p in intervals} == {"CAWEC2", "US0001"}
    assert "timelapses=2" in result.stderr + result.stdout
    # The same folder with another seed: refused with the reason and what to do, exit 2.
    again = subprocess.run(
        [sys.executable, "-m", "data_prep.synthetic", f"synthetic.out_dir={out}",
         "synthetic.stations=[CAWEC2,US0001]", "synthetic.seed=5",
         f"hydra.run.dir={tmp_path / 'hydra'}", *TINY],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert again.returncode == 2
    said = again.stdout + again.stderr
    assert "other settings (day_timelapses, legacy_names, seed)" in said and str(out) in said
    assert "Traceback" not in said


def test_run_rejects_a_bad_station_id_before_writing(tmp_path):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("prep", overrides=[f"synthetic.out_dir={tmp_path}",
                                         "synthetic.stations=[CA-1]", *TINY])
    with pytest.raises(ValueError, match=r"synthetic\.stations.*'CA-1'"):
        run(cfg)
    assert list(tmp_path.iterdir()) == []
