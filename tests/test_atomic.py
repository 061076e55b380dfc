"""Atomic writes: outputs get the mode a plain open() gives under the umask, temporaries carry
their writer's pid and host, and start-up cleanup removes only those whose writer is gone
(real writer processes: one alive beside the cleanup, one killed mid-write)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from gmn_base.atomic import (
    STALE_AFTER_S,
    atomic_path,
    remove_stale_temporaries,
    temporary_writer,
    write_csv,
    write_json,
    write_text,
)
from gmn_base.process_identity import host_token

REPO = Path(__file__).resolve().parents[1]


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_get_the_mode_a_plain_open_gives(tmp_path, umask):
    previous = os.umask(umask)
    try:
        (tmp_path / "plain.txt").write_text("x")
        write_text(tmp_path / "a.txt", "x")
        write_json(tmp_path / "b.json", {"a": 1})
        write_csv(tmp_path / "c.csv", pd.DataFrame({"a": [1]}))
        with atomic_path(tmp_path / "d.png") as tmp:
            Image.new("L", (4, 4)).save(tmp, format="PNG")
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    assert _mode(tmp_path / "plain.txt") == expected
    for name in ("a.txt", "b.json", "c.csv", "d.png"):
        assert _mode(tmp_path / name) == expected, name
    assert not list(tmp_path.glob(".*"))  # no temporary left


def test_replacing_a_file_gives_the_new_file_the_umask_mode(tmp_path):
    target = tmp_path / "labels.csv"
    target.write_text("old")
    target.chmod(0o600)
    previous = os.umask(0o022)
    try:
        write_text(target, "new")
    finally:
        os.umask(previous)
    assert target.read_text() == "new" and _mode(target) == 0o644


def test_temporary_name_says_who_writes_it(tmp_path):
    with atomic_path(tmp_path / "CAWEC2_20251106_220000_000.png") as tmp:
        writer = temporary_writer(tmp.name)
        assert tmp.name.startswith(".CAWEC2_20251106_220000_000.png.") and tmp.name.endswith(".tmp")
    assert writer is not None
    assert (writer.target, writer.pid, writer.host) == (
        "CAWEC2_20251106_220000_000.png", os.getpid(), host_token())
    assert temporary_writer(".x.png.abc123.tmp") is None  # an older, identity-less name


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "manifest.csv"
    target.write_text("kept")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.csv"]


WRITER = textwrap.dedent("""
    import sys, time
    from gmn_base.atomic import atomic_path
    with atomic_path(sys.argv[1]) as tmp:
        tmp.write_text("first half ")
        print(tmp, flush=True)
        sys.stdin.readline()  # the writer is busy until told to go on (or killed)
        with open(tmp, "a") as fh:
            fh.write("second half")
""")


def _start_writer(target: Path) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.is_file(), "the writer did not start"
    return proc, tmp


def test_cleanup_keeps_a_live_writers_temporary_and_removes_a_killed_ones(tmp_path):
    live, live_tmp = _start_writer(tmp_path / "a.png")
    killed, killed_tmp = _start_writer(tmp_path / "b.png")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)

    assert remove_stale_temporaries(tmp_path) == 1
    assert live_tmp.exists() and not killed_tmp.exists()

    live.communicate("go on\n", timeout=30)
    assert live.returncode == 0
    assert (tmp_path / "a.png").read_text() == "first half second half"
    assert not (tmp_path / "b.png").exists() and not live_tmp.exists()


def _fake_temporary(folder: Path, target: str, pid: int, host: str, age_s: float = 0) -> Path:
    tmp = folder / f".{target}.{pid}@{host}.0badc0de.tmp"
    tmp.write_text("half")
    if age_s:
        past = time.time() - age_s
        os.utime(tmp, (past, past))
    return tmp


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_cleanup_rules_for_other_hosts_old_files_and_old_names(tmp_path):
    here, dead = host_token(), _dead_pid()
    recent_elsewhere = _fake_temporary(tmp_path, "a.png", 4242, "node-elsewhere")
    old_elsewhere = _fake_temporary(tmp_path, "b.png", 4242, "node-elsewhere",
                                    age_s=STALE_AFTER_S + 60)
    dead_here = _fake_temporary(tmp_path, "c.png", dead, here)
    alive_here = _fake_temporary(tmp_path, "d.png", os.getpid(), here)
    reused_pid_here = _fake_temporary(tmp_path, "e.png", os.getpid(), here,
                                      age_s=STALE_AFTER_S + 60)
    old_name = tmp_path / ".f.png.abc123.tmp"
    old_name.write_text("half")
    not_a_temporary = tmp_path / ".hidden_notes.txt"
    not_a_temporary.write_text("mine")

    assert remove_stale_temporaries(tmp_path) == 4
    assert recent_elsewhere.exists() and alive_here.exists() and not_a_temporary.exists()
    for gone in (old_elsewhere, dead_here, reused_pid_here, old_name):
        assert not gone.exists(), gone.name


def test_cleanup_of_one_target_leaves_other_files_temporaries(tmp_path):
    dead = _dead_pid()
    ours = _fake_temporary(tmp_path, "labels.csv", dead, host_token())
    other = _fake_temporary(tmp_path, "labels.csv.bak", dead, host_token())
    assert remove_stale_temporaries(tmp_path, target="labels.csv") == 1
    assert not ours.exists() and other.exists()
    assert remove_stale_temporaries(tmp_path / "missing") == 0

