"""gmn_base.locks.FileLock with real processes: the holder's record for a contender, waiting
with a timeout, take-over after the holder is killed, and two processes keeping a shared
read-modify-write exact."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gmn_base.locks import FileLock, LockError, LockRecord, LockTimeout, held_by, read_holder
from gmn_base.process_identity import host_token

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}

HOLDER = textwrap.dedent("""
    import sys
    from gmn_base.locks import FileLock
    lock = FileLock(sys.argv[1], note=sys.argv[2])
    lock.acquire(timeout=30)
    print("held", flush=True)
    sys.stdin.readline()
    lock.release()
    print("released", flush=True)
""")


def _start_holder(path: Path, note: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), note], env=ENV, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_busy_lock_returns_the_holders_record_and_is_free_after_release(tmp_path):
    path = tmp_path / "fold_0" / ".claim.lock"
    first, second = FileLock(path, note="fingerprint=abc"), FileLock(path)
    assert first.try_acquire() is None and first.held
    holder = second.try_acquire()
    assert (holder.pid, holder.host, holder.note) == (os.getpid(), host_token(), "fingerprint=abc")
    assert holder == first.record == read_holder(path)
    first.release()
    assert not path.exists() and not first.held
    assert second.try_acquire() is None
    second.release()


def test_other_process_holds_wait_times_out_then_succeeds(tmp_path):
    path = tmp_path / ".extract.lock"
    proc = _start_holder(path, "extract on data/")
    try:
        contender = FileLock(path, note="second extract")
        holder = contender.try_acquire()
        assert holder.pid == proc.pid and holder.note == "extract on data/"
        with pytest.raises(LockTimeout) as caught:
            contender.acquire(timeout=0.5, poll_s=0.05)
        message = str(caught.value)
        assert str(path) in message and f"pid {proc.pid} on {host_token()}" in message
        assert "[extract on data/]" in message and caught.value.holder.pid == proc.pid

        proc.stdin.write("release\n")
        proc.stdin.flush()
        with contender.acquire(timeout=30, poll_s=0.05):
            assert read_holder(path).note == "second extract"
            assert contender.took_over is None  # released properly, nothing to take over
        assert not path.exists()
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_holder_killed_by_sigkill_is_taken_over_at_once(tmp_path, caplog):
    path = tmp_path / ".pool.lock"
    proc = _start_holder(path, "pooling")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert read_holder(path).pid == proc.pid  # the dead holder's record is still on disk

    lock = FileLock(path, note="next")
    with caplog.at_level(logging.WARNING, logger="gmn_base.locks"):
        lock.acquire(timeout=5)
    try:
        assert lock.took_over is not None and lock.took_over.pid == proc.pid
        assert read_holder(path) == lock.record and lock.record.pid == os.getpid()
        assert f"took over the lock from pid {proc.pid}" in caplog.text
    finally:
        lock.release()


def test_held_by_probes_without_taking_or_removing(tmp_path):
    path = tmp_path / "fold_1" / ".claim.lock"
    assert held_by(path) is None  # no file
    proc = _start_holder(path, "fingerprint-a")
    try:
        holder = held_by(path)
        assert holder.pid == proc.pid and holder.note == "fingerprint-a"
        assert read_holder(path) == holder  # the probe left the file and the lock as they were
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # A dead holder's file stays, but nobody holds it: not a running job.
    assert path.exists() and held_by(path) is None and path.exists()


COUNTER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from gmn_base.locks import FileLock
    lock_path, counter = sys.argv[1], Path(sys.argv[2])
    for _ in range(int(sys.argv[3])):
        with FileLock(lock_path).acquire(timeout=60, poll_s=0.001):
            value = int(counter.read_text())
            time.sleep(0.001)  # widen the read-modify-write window
            counter.write_text(str(value + 1))
""")


def test_two_processes_contending_lose_no_update(tmp_path):
    counter = tmp_path / "counter.txt"
    counter.write_text("0")
    args = [str(tmp_path / ".counter.lock"), str(counter), "60"]
    procs = [subprocess.Popen([sys.executable, "-c", COUNTER, *args], env=ENV) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    assert counter.read_text() == "120"


def test_context_manager_mode_and_garbage_left_in_the_file(tmp_path):
    path = tmp_path / ".x.lock"
    path.write_text("not a record")  # e.g. a copied data dir: no holder, no record
    path.chmod(0o644)
    previous = os.umask(0o077)
    try:
        with FileLock(path, note="n") as lock:
            assert lock.held and lock.took_over is None
            assert path.stat().st_mode & 0o777 == 0o644  # existing file: mode untouched
        with FileLock(path) as lock:
            assert path.stat().st_mode & 0o777 == 0o600  # created anew: 0666 less the umask
    finally:
        os.umask(previous)
    assert not path.exists()
    assert read_holder(path) is None


def test_a_forked_child_cannot_release_its_parents_lock(tmp_path):
    path = tmp_path / ".fork.lock"
    lock = FileLock(path)
    lock.acquire(timeout=5)
    try:
        pid = os.fork()
        if pid == 0:  # the child: its copy is not the holder
            lock.release()
            os._exit(0 if path.exists() and not lock.held else 1)
        assert os.waitpid(pid, 0)[1] == 0
        assert path.exists() and lock.held
        assert FileLock(path).try_acquire().pid == os.getpid()
    finally:
        lock.release()


def test_record_names_a_requeued_slurm_job(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4567")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    record = LockRecord.for_this_process("fold 1")
    assert record.slurm_job == "4567.r2"
    assert f"pid {os.getpid()} on {host_token()} (SLURM job 4567.r2) since " in record.describe()
    assert LockRecord.from_json(record.to_json()) == record
    assert LockRecord.from_json("") is None and LockRecord.from_json("[1, 2]") is None


def test_holding_twice_through_one_object_is_refused(tmp_path):
    lock = FileLock(tmp_path / ".twice.lock")
    lock.acquire(timeout=1)
    try:
        with pytest.raises(LockError, match="already held"):
            lock.try_acquire()
    finally:
        lock.release()
