"""Unwritable output and data folders are named before anything runs; links out of a local
archive are refused by name.

Read-only folders must fail for root too (root ignores mode bits): as root the folder is
made immutable (``chattr +i``), which refuses new files to every user; as anyone else its
mode becomes 0555. A filesystem without ``chattr`` support skips, saying why. A file where
a folder is expected fails for everyone. One test also runs a step as ``nobody`` when this
machine lets that user run the project's Python.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_sshd import make_small_archive
from fixtures_train import PYTHON, REPO, make_dataset, run_cli, tiny_overrides

from gmn_base.run_checks import write_problem
from gmn_weather.predict import PredictInputError, run


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """``path`` (a folder) refusing new files, for root as for anyone."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(path)], check=False, capture_output=True).returncode != 0:
        pytest.skip("running as root (which ignores mode bits) on a filesystem without "
                    "chattr +i: no way to make a folder read-only here")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _one_line(proc, prefix: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), proc.stderr
    return lines[0]


def test_write_problem_names_what_is_wrong(tmp_path):
    (tmp_path / "a_file").write_text("x")
    assert write_problem(tmp_path / "new" / "deeper") is None
    assert write_problem(tmp_path / "a_file" / "sub") == f"{tmp_path / 'a_file'} is not a folder"
    assert write_problem(tmp_path, is_file=True) == f"{tmp_path} is a folder, not a file"
    with read_only(tmp_path / "ro") as ro:
        assert write_problem(ro / "x" / "y").startswith(f"cannot write in {ro} (")
        assert write_problem(ro / "p.csv", is_file=True).startswith(f"cannot write in {ro} (")


def test_train_names_an_unwritable_output_root_single_and_multirun(tmp_path):
    make_dataset(tmp_path / "data")
    with read_only(tmp_path / "out") as out:
        for extra in ([], ["-m", "fold=0,1"]):
            proc = run_cli("train.py", *extra, *tiny_overrides(tmp_path / "data", out),
                           check=False)
            assert proc.returncode == 2
            line = _one_line(proc, f"train: paths.output_root={out}: cannot write in {out} (")
            assert line.endswith("set paths.output_root to a folder you can write to")
        assert list(out.iterdir()) == []


def test_train_names_a_file_where_the_output_folder_should_be(tmp_path):
    make_dataset(tmp_path / "data")
    (tmp_path / "out").write_text("not a folder")
    proc = run_cli("train.py", *tiny_overrides(tmp_path / "data", tmp_path / "out"),
                   check=False)
    assert proc.returncode == 2
    _one_line(proc, f"train: paths.output_root={tmp_path / 'out'}: {tmp_path / 'out'} is not "
                    "a folder")


def test_a_read_only_run_folder_is_named_not_the_log_handler(tmp_path):
    make_dataset(tmp_path / "data")
    fold_dir = tmp_path / "out" / "tiny_test_resnet_light" / "fold_0"
    with read_only(fold_dir):
        proc = run_cli("train.py", *tiny_overrides(tmp_path / "data", tmp_path / "out"),
                       check=False)
    assert proc.returncode == 2
    assert "handler" not in proc.stderr
    _one_line(proc, f"train: hydra.run.dir={fold_dir}: cannot write in {fold_dir} (")


def test_analyze_and_predict_name_unwritable_places_before_any_work(tmp_path):
    with read_only(tmp_path / "out") as out:
        proc = run_cli("analyze.py", f"paths.output_root={out}", check=False)
        assert proc.returncode == 2
        _one_line(proc, f"analyze: paths.output_root={out}: cannot write in {out} (")
        # predict.py: the output's folder is checked before the model is even looked for.
        proc = run_cli("predict.py", f"paths.output_root={tmp_path / 'logs'}",
                       f"input={tmp_path}", f"output={out / 'p.csv'}",
                       f"checkpoint={tmp_path / 'no_model'}", check=False)
        assert proc.returncode == 2
        _one_line(proc, f"predict: output={out / 'p.csv'}: cannot write in {out} (")
        with pytest.raises(PredictInputError, match=rf"output={out / 'p.csv'}: cannot write"):
            run(str(tmp_path / "no_model"), str(tmp_path), str(out / "p.csv"))


def _prep(tmp_path) -> list[str]:
    make_small_archive(tmp_path / "archive")
    return [f"source.root={tmp_path / 'archive'}", "source.video_root=home/contrails/CA",
            "source.flux_root=home/extracted_data/CA"]


@pytest.mark.parametrize("module", ["data_prep.find", "data_prep"])
def test_data_prep_names_an_unwritable_data_dir(tmp_path, module):
    source = _prep(tmp_path)
    with read_only(tmp_path / "data") as data:
        proc = run_cli("-m", module, f"paths.data_dir={data}", *source, check=False)
        assert proc.returncode == 2
        job = module.split(".")[-1]
        _one_line(proc, f"{job}: paths.data_dir={data}: cannot write in {data} (")
        assert list(data.iterdir()) == []


def test_as_an_unprivileged_user_mode_bits_count():
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to switch to the user nobody")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run([*nobody, PYTHON, "-c", "import hydra"], check=False,
                      capture_output=True, cwd=REPO).returncode != 0:
        pytest.skip(f"the user nobody cannot run {PYTHON} and its packages on this machine")
    base = Path(tempfile.mkdtemp(prefix="gmn_nobody_"))  # pytest's own folders are 0700
    try:
        base.chmod(0o755)
        (base / "data").mkdir(mode=0o555)
        proc = subprocess.run([*nobody, PYTHON, "-m", "data_prep.find",
                               f"paths.data_dir={base / 'data'}"], check=False,
                              capture_output=True, text=True, cwd=REPO,
                              env={**os.environ, "HOME": str(base), "PYTHONPATH": str(REPO)})
        assert proc.returncode == 2
        assert f"cannot write in {base / 'data'} (Permission denied)" in proc.stderr
    finally:
        shutil.rmtree(base)


def test_a_link_out_of_a_local_archive_is_refused_by_name(tmp_path):
    source = _prep(tmp_path)
    outside = tmp_path / "elsewhere" / "id_ed25519"
    outside.parent.mkdir()
    outside.write_text('{"stationID": "CAWEC2", "time_intervals": [], "note": "private"}')
    flux = tmp_path / "archive/home/extracted_data/CA/CAWEC2"
    linked = next(flux.glob("*_detected")) / "flux_time_intervals.json"
    linked.unlink()
    linked.symlink_to(outside)
    data = tmp_path / "data"
    proc = run_cli("-m", "data_prep.find", f"paths.data_dir={data}", *source, check=False)
    assert proc.returncode == 1
    assert f"{linked} leads through a symbolic link to {outside}, outside source.root" \
        in proc.stdout and "source.follow_symlinks=true" in proc.stdout
    copied = [p for p in data.rglob("*.json") if "private" in p.read_text()]
    assert copied == [] and (data / "nights.csv").is_file()  # the other nights were found
    run_cli("-m", "data_prep.find", f"paths.data_dir={data}", *source,
            "source.follow_symlinks=true")
    assert [p for p in data.rglob("*.json") if "private" in p.read_text()]


def test_a_station_folder_linked_out_of_the_archive_is_refused(tmp_path):
    source = _prep(tmp_path)
    station = tmp_path / "archive/home/extracted_data/CA/US0001"
    moved = tmp_path / "elsewhere" / "US0001"
    moved.parent.mkdir()
    station.rename(moved)
    station.symlink_to(moved, target_is_directory=True)
    proc = run_cli("-m", "data_prep.find", f"paths.data_dir={tmp_path / 'data'}", *source,
                   check=False)
    assert proc.returncode == 2
    assert f"{station} leads through a symbolic link to {moved}" in proc.stdout
