"""Resuming after a kill: a fold job SIGKILLed mid-training resumes from its last.ckpt and ends
with the out-of-fold predictions of a run that was never interrupted (CPU, one thread: float
sums in one order); ``resume=false``, ``ckpt_path=`` and checkpoints of other settings; the
metric table continues in one folder; a kill during a checkpoint write leaves a usable one.

The kill is a real SIGKILL from inside the training process (tests/fixtures_kill.py) at the
first batch of epoch 2, so it lands after two epochs' checkpoints whatever the machine's speed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
import torch
from fixtures_train import REPO, compose_train, make_dataset, run_cli, tiny_overrides

from gmn_weather.checkpoints import ResumeError
from gmn_weather.training import train

EPOCHS = 4
EXPERIMENT = "tiny_test_resnet_light"
KILL_AT_EPOCH_2 = ("+callbacks.kill._target_=fixtures_kill.KillAt", "+callbacks.kill.epoch=2")
TESTS_ON_PATH = {"OMP_NUM_THREADS": "1", "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as OMP_NUM_THREADS=1 in the killed subprocess
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("resume")
    make_dataset(root / "data")
    train(compose_train("fold=0", *_overrides(root, "whole")))
    return root


@pytest.fixture(scope="module")
def killed(uninterrupted):
    """A fold job SIGKILLed at epoch 2; a copy of its last.ckpt is kept as epoch2.ckpt."""
    proc = run_cli("train.py", "fold=0", *_overrides(uninterrupted, "killed", *KILL_AT_EPOCH_2),
                   env=TESTS_ON_PATH, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    run = uninterrupted / "killed" / EXPERIMENT / "fold_0"
    assert not (run / "oof_predictions.csv").exists()
    shutil.copy(run / "checkpoints" / "last.ckpt", uninterrupted / "epoch2.ckpt")
    return run


def _overrides(root, out: str, *extra: str) -> list[str]:
    # name= fixed: on the command line trainer.max_epochs would otherwise enter the name.
    return [*tiny_overrides(root / "data", root / out), f"trainer.max_epochs={EPOCHS}",
            f"name={EXPERIMENT}", *extra]


def _oof(run) -> pd.DataFrame:
    return pd.read_csv(run / "oof_predictions.csv")


def _with_last_ckpt(root, out: str):
    """A fold folder holding only the killed job's last.ckpt (as a rerun would find it)."""
    run = root / out / EXPERIMENT / "fold_0"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(root / "epoch2.ckpt", run / "checkpoints" / "last.ckpt")
    return run


def test_killed_fold_resumes_and_predicts_as_if_never_stopped(uninterrupted, killed, caplog):
    run = killed
    with caplog.at_level("INFO"):
        result = train(compose_train("fold=0", *_overrides(uninterrupted, "killed")))
    assert "fold_0: resumed from epoch 2 (fold_0/checkpoints/last.ckpt)" in caplog.text
    assert result.resumed_after_epochs == 2
    whole = uninterrupted / "whole" / EXPERIMENT / "fold_0"
    pd.testing.assert_frame_equal(_oof(run), _oof(whole), check_exact=True)
    info = json.loads((run / "run_info.json").read_text())
    assert info["resumed_after_epochs"] == 2 and info["resumed_from"].endswith("last.ckpt")

    # One metric table, every epoch once, the same numbers as the uninterrupted run's.
    assert [p.name for p in (run / "metrics").iterdir()] == ["version_0"]
    resumed = pd.read_csv(run / "metrics" / "version_0" / "metrics.csv")
    straight = pd.read_csv(whole / "metrics" / "version_0" / "metrics.csv")
    pd.testing.assert_frame_equal(resumed, straight, check_exact=True)


def test_ckpt_path_resume_false_and_checkpoints_of_other_settings(uninterrupted, killed, caplog):
    root = uninterrupted
    whole = root / "whole" / EXPERIMENT / "fold_0"

    # ckpt_path= names another checkpoint: resumed from it, same predictions.
    with caplog.at_level("INFO"):
        train(compose_train("fold=0", f"ckpt_path={root / 'epoch2.ckpt'}",
                            *_overrides(root, "named")))
    assert f"fold_0: resumed from epoch 2 (ckpt_path={root / 'epoch2.ckpt'})" in caplog.text
    pd.testing.assert_frame_equal(_oof(root / "named" / EXPERIMENT / "fold_0"), _oof(whole),
                                  check_exact=True)

    # resume=false starts over: the checkpoint and the metric table are replaced.
    run = _with_last_ckpt(root, "over")
    caplog.clear()
    with caplog.at_level("INFO"):
        train(compose_train("fold=0", "resume=false", *_overrides(root, "over")))
    assert "resume=false: starting fold_0 over" in caplog.text and "resumed from" not in caplog.text
    metrics = pd.read_csv(run / "metrics" / "version_0" / "metrics.csv")
    assert list(metrics["epoch"].drop_duplicates()) == list(range(EPOCHS))

    # A last.ckpt written under other settings is not resumed: the job starts over.
    _with_last_ckpt(root, "other")
    caplog.clear()
    with caplog.at_level("INFO"):
        train(compose_train("fold=0", "seed=7", *_overrides(root, "other")))
    assert "was written under other settings" in caplog.text and "resumed from" not in caplog.text

    # A damaged checkpoint is refused, naming it and the way out; so is a missing ckpt_path.
    run = _with_last_ckpt(root, "damaged")
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(ResumeError, match="cannot resume from .*last.ckpt: not a readable "
                                          "checkpoint.*resume=false"):
        train(compose_train("fold=0", *_overrides(root, "damaged")))
    with pytest.raises(ResumeError, match="ckpt_path=.*nothing.ckpt: no such file"):
        train(compose_train("fold=0", f"ckpt_path={root / 'nothing.ckpt'}",
                            *_overrides(root, "damaged")))


def test_a_rerun_skips_a_finished_fold_and_retrain_trains_it_again(uninterrupted, caplog):
    root = uninterrupted
    whole = root / "whole" / EXPERIMENT / "fold_0"
    before = (whole / "oof_predictions.json").read_text()
    checkpoint_time = (whole / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    with caplog.at_level("INFO"):
        result = train(compose_train("fold=0", *_overrides(root, "whole")))
    assert result.skipped and "fold_0: already finished under these settings" in caplog.text
    assert result.metrics == json.loads(before)["metrics"] and "val/loss" in result.metrics
    assert (whole / "checkpoints" / "last.ckpt").stat().st_mtime_ns == checkpoint_time
    assert (whole / "oof_predictions.json").read_text() == before

    caplog.clear()
    with caplog.at_level("INFO"):
        result = train(compose_train("fold=0", "retrain=true", *_overrides(root, "whole")))
    assert not result.skipped and result.resumed_after_epochs is None  # from scratch
    assert "resumed from" not in caplog.text
    assert json.loads((whole / "oof_predictions.json").read_text())["written_utc"] >= \
        json.loads(before)["written_utc"]
    assert (whole / "checkpoints" / "last.ckpt").stat().st_mtime_ns != checkpoint_time


WRITER = textwrap.dedent("""
    import sys, torch
    from gmn_weather.checkpoints import AtomicCheckpointIO
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.zeros(4)}, "epoch": 1}, sys.argv[1])
    print("first", flush=True)
    sys.stdin.readline()
    io.save_checkpoint({"state_dict": {"w": torch.ones(60_000_000)}, "epoch": 2}, sys.argv[1])
""")


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_checkpoint(tmp_path):
    from gmn_base.atomic import remove_stale_temporaries

    target = tmp_path / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=REPO, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "first"
    proc.stdin.write("\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while not list(target.parent.glob(".last.ckpt.*.tmp")):  # the 240 MB write has begun
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.001)
    proc.kill()
    proc.wait()
    checkpoint = torch.load(target, weights_only=True)
    assert checkpoint["epoch"] in (1, 2)  # the old one, or (killed too late) the new one whole
    if checkpoint["epoch"] == 1:
        assert torch.equal(checkpoint["state_dict"]["w"], torch.zeros(4))
    # What the killed writer left is removed at the next start, never read as a checkpoint.
    remove_stale_temporaries(target.parent)
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]
