"""Two runs of a step on one data folder: the second refuses, names the lock and who holds it,
and changes nothing; the first finishes with every file whole.

Real processes: the first ``python -m data_prep.extract`` is paused (SIGSTOP) the moment it
holds its lock, so the second certainly starts while the first is mid-run whatever the
machine's speed; then the first is resumed (SIGCONT) and must complete exactly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from fixtures_video import prep_config, read_frame, write_index_timelapse
from PIL import Image

from data_prep import download, night_to_day
from data_prep.step_lock import StepLockedError, step_lock_path
from gmn_base.image_names import format_image_name, parse_image_name
from gmn_base.locks import read_holder

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
START = datetime(2025, 11, 6, 22, 0, tzinfo=timezone.utc)


def _extract(data: Path, listed: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "data_prep.extract", f"paths.data_dir={data}",
         f"extract.target_lists=[{listed}]", "extract.workers=1"],
        cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_holder(lock: Path, pid: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while (holder := read_holder(lock)) is None or holder.pid != pid:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the first run never took its lock"
        time.sleep(0.005)


def _exact(png: Path, maps: dict) -> bool:
    """The PNG holds the frame its name's time maps to, from its own station's video."""
    name = parse_image_name(png.name)
    tag, times = maps[name.station]
    with Image.open(png) as image:
        return read_frame(np.asarray(image)) == (tag, times.index(name.timestamp))


def _listing(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir()}


def test_two_extract_runs_on_one_data_dir(tmp_path):
    maps = {}
    for tag, station in ((1, "CAWEC2"), (2, "US0001")):
        _, times = write_index_timelapse(tmp_path / "raw_data" / station, station, START, 240,
                                         tag=tag)
        maps[station] = (tag, times)
    listed = tmp_path / "list.txt"
    names = [format_image_name(station, times[i]) for station, (_, times) in maps.items()
             for i in range(0, 240, 4)]
    listed.write_text("\n".join(names) + "\n")
    night_dir = tmp_path / "extracted_night"
    lock = step_lock_path("extract", night_dir)

    first = _extract(tmp_path, listed)
    try:
        _wait_for_holder(lock, first.pid, first)
        os.kill(first.pid, signal.SIGSTOP)
        before = _listing(night_dir)
        second = subprocess.run(
            [sys.executable, "-m", "data_prep.extract", f"paths.data_dir={tmp_path}",
             f"extract.target_lists=[{listed}]"],
            check=False, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stdout + second.stderr
        message = second.stdout + second.stderr
        assert f"another extract run is writing to {night_dir}: pid {first.pid} on " in message
        assert str(lock) in message
        assert _listing(night_dir) == before  # the refused run touched nothing
    finally:
        os.kill(first.pid, signal.SIGCONT)
        output = first.communicate(timeout=300)[0]
    assert first.returncode == 0, output
    assert sorted(p.name for p in night_dir.glob("*.png")) == sorted(names)
    assert all(_exact(png, maps) for png in night_dir.glob("*.png"))
    assert not [p.name for p in night_dir.iterdir() if p.name.startswith(".")]  # lock released

    again = subprocess.run([sys.executable, "-m", "data_prep.extract", f"paths.data_dir={tmp_path}",
                            f"extract.target_lists=[{listed}]"], check=False,
                           cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"skipped_existing={len(names)}" in again.stdout + again.stderr


HOLDER = textwrap.dedent("""
    import sys
    from data_prep.step_lock import step_lock
    with step_lock(sys.argv[1], sys.argv[2]):
        print("held", flush=True)
        sys.stdin.readline()
""")


@pytest.mark.parametrize("step, module", [("night_to_day", night_to_day), ("download", download)])
def test_night_to_day_and_download_refuse_a_data_dir_in_use(tmp_path, step, module):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, step, str(tmp_path)], cwd=REPO,
                              env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StepLockedError, match=f"another {step} run is writing to "
                                                  f"{tmp_path}: pid {holder.pid} .*\\.{step}.lock"):
            module.run(prep_config(tmp_path, converter__name="local"))
        assert sorted(p.name for p in tmp_path.iterdir()) == [f".{step}.lock"]
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0 and not step_lock_path(step, tmp_path).exists()
