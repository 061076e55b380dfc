"""Folds in parallel through Hydra's launchers, on real engines: joblib (two local worker
processes) and submitit on a real single-node SLURM cluster (tests/fixtures_slurm.py).

Each sweep runs the three folds of the tiny data set and must pool to exactly what the same
three folds pool to when run one after another (same splits, same CPU fold models): the
pooled ``oof_predictions.csv``, ``operating_point.json`` and ``threshold_table.csv`` are
compared byte for byte, as the sweep itself wrote them (pooling happens in whichever job
completes the set). CPU results depend in their last digits on torch's thread count (the order
of float sums), and joblib gives each worker cores / n_jobs threads: every run here uses one
thread (``OMP_NUM_THREADS=1``), the same setting for all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import fixtures_slurm
import pytest
from fixtures_train import PYTHON, REPO, compose_train, make_dataset, run_cli, tiny_overrides

POOLED = ("oof_predictions.csv", "operating_point.json", "threshold_table.csv")
EXPERIMENT = "tiny_test_resnet_light"
ONE_THREAD = {"OMP_NUM_THREADS": "1"}

slurm_cluster = fixtures_slurm.slurm_cluster  # the module's SLURM cluster (a pytest fixture)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The data set and the three folds run one after another (in-process, like
    ``python train.py -m fold=0,1,2``'s basic launcher)."""
    import torch

    from gmn_weather.training import train

    root = tmp_path_factory.mktemp("launchers")
    make_dataset(root / "data")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for k in range(3):
            train(compose_train(f"fold={k}", *tiny_overrides(root / "data", root / "sequential")))
    finally:
        torch.set_num_threads(threads)
    experiment = root / "sequential" / EXPERIMENT
    assert all((experiment / name).is_file() for name in POOLED)
    return root


def _assert_same_pooled(parallel_root: Path, sequential_root: Path) -> None:
    parallel = parallel_root / EXPERIMENT
    for k in range(3):
        assert (parallel / f"fold_{k}" / "oof_predictions.csv").is_file(), f"fold_{k}"
    for name in POOLED:
        assert (parallel / name).read_bytes() == (sequential_root / EXPERIMENT / name).read_bytes(), name


@pytest.mark.slow
def test_joblib_two_jobs_pool_like_a_sequential_run(sequential):
    out = sequential / "joblib"
    proc = run_cli("train.py", "-m", "fold=0,1,2", "hydra/launcher=joblib",
                   "hydra.launcher.n_jobs=2", *tiny_overrides(sequential / "data", out),
                   env=ONE_THREAD)
    log = proc.stdout + proc.stderr
    assert "Joblib.Parallel(n_jobs=2" in log
    assert "operating point: threshold" in log  # the job completing the set pooled
    _assert_same_pooled(out, sequential / "sequential")
    # The ConfigStore holds one config per launcher: no "automatic schema matching" warning.
    assert "ConfigStore schema" not in log


@pytest.mark.slow
def test_submitit_slurm_on_a_real_cluster_pools_like_a_sequential_run(sequential, slurm_cluster):
    out = sequential / "slurm"
    proc = run_cli("train.py", "-m", "fold=0,1,2", "hydra/launcher=submitit_slurm",
                   "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
                   "hydra.launcher.timeout_min=10", *tiny_overrides(sequential / "data", out),
                   env={**slurm_cluster.env, **ONE_THREAD}, timeout=900)
    log = proc.stdout + proc.stderr
    assert "Submitit 'slurm' sweep output dir" in log
    _assert_same_pooled(out, sequential / "sequential")

    # The jobs ran under SLURM: submitit's job folders and logs sit under the output root.
    job_logs = sorted((out / ".submitit").glob("*/*_log.out"))
    assert len(job_logs) == 3, job_logs
    job_ids = {p.name.split("_log.out")[0].rsplit("_", 1)[0] for p in job_logs}
    assert all(j.split("_")[0].isdigit() for j in job_ids)
    assert not (REPO / ".submitit").exists()
    # Inside a SLURM job started with srun, Lightning has nothing to hint at.
    assert not any("`srun` command is available" in p.read_text() for p in
                   (out / ".submitit").glob("*/*_log.err"))


@pytest.mark.slow
def test_slurm_requeue_resumes_from_the_last_checkpoint(tmp_path, slurm_cluster):
    """``scancel --signal=USR2`` (what SLURM sends before a time limit, and clusters on
    preemption): submitit requeues the job, which resumes from fold_0's last.ckpt and predicts
    exactly what a run that was never stopped predicts. The job waits at the start of its
    second epoch to be signalled (tests/fixtures_kill.py), so the signal lands mid-training."""
    import pandas as pd
    import torch

    from gmn_weather.training import train

    make_dataset(tmp_path / "data")
    overrides = ["fold=0", "trainer.max_epochs=2", f"name={EXPERIMENT}"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(compose_train(*overrides, *tiny_overrides(tmp_path / "data", tmp_path / "whole")))
    finally:
        torch.set_num_threads(threads)

    out, marker = tmp_path / "slurm", tmp_path / "holding"
    env = {**slurm_cluster.env, **ONE_THREAD,
           "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
    sweep = subprocess.Popen(
        [PYTHON, "train.py", "-m", *overrides, "hydra/launcher=submitit_slurm",
         "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
         # Over 10 min: submitit counts a signal before min(0.8 x limit, limit - 10 min) as a
         # preemption (requeued every time), later ones as time-outs (max_num_timeout: 0).
         "hydra.launcher.timeout_min=30", *tiny_overrides(tmp_path / "data", out),
         "+callbacks.hold._target_=fixtures_kill.HoldUntilRequeued", "+callbacks.hold.epoch=1",
         f"+callbacks.hold.marker={marker}", "+callbacks.hold.timeout_s=300"],
        cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore", **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 600
        while not (marker.exists() and marker.read_text()):
            assert sweep.poll() is None, sweep.stdout.read()
            assert time.monotonic() < deadline, "the job never reached its second epoch"
            time.sleep(0.2)
        job = marker.read_text().strip()
        slurm_cluster.run("scancel", "--signal=USR2", job)
        # SLURM holds a requeued job back until the old credential expires (reason BeginTime;
        # cred_expire in tests/fixtures_slurm.py), then starts it by itself.
        while "BeginTime" not in (state := slurm_cluster.run(
                "squeue", "-h", "-j", job, "-o", "%T %r", check=False)):
            assert sweep.poll() is None and time.monotonic() < deadline, f"not requeued: {state}"
            time.sleep(0.2)
        try:
            log = sweep.communicate(timeout=600)[0]
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the requeued job did not end: {slurm_cluster.run('squeue')}"
                                 f"\n{slurm_cluster.logs()}") from None
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, log[-3000:]

    run = out / EXPERIMENT / "fold_0"
    job_log = "\n".join(p.read_text() for p in (out / ".submitit").glob("*/*_log.err"))
    assert "Caught signal SIGUSR2" in job_log and "this job is preempted" in job_log, job_log
    assert "DUE TO JOB REQUEUE" in job_log, job_log  # submitit asked SLURM to requeue it
    assert "resumed from epoch 1 (fold_0/checkpoints/last.ckpt)" in (run / "train.log").read_text()
    assert not list(run.glob("hpc_ckpt_*.ckpt"))  # Lightning's own requeue stayed out of it
    pd.testing.assert_frame_equal(
        pd.read_csv(run / "oof_predictions.csv"),
        pd.read_csv(tmp_path / "whole" / EXPERIMENT / "fold_0" / "oof_predictions.csv"),
        check_exact=True)


def _launcher_config(name: str, *overrides: str):
    from hydra import compose, initialize_config_dir

    from gmn_weather.launchers import use_project_launcher_configs

    use_project_launcher_configs()  # what train.py does on import
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. Hydra's "automatic schema matching" deprecation
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            cfg = compose("train", [f"hydra/launcher={name}", "paths.output_root=/scratch/out",
                                    *overrides], return_hydra_config=True)
    return cfg.hydra.launcher


def test_launcher_configs_carry_the_cluster_keys_and_put_job_files_under_outputs():
    slurm = _launcher_config("submitit_slurm", "hydra.launcher.partition=gpu",
                             "hydra.launcher.gpus_per_node=1", "hydra.launcher.mem_gb=32")
    assert slurm._target_.endswith("SlurmLauncher")
    assert (slurm.partition, slurm.gpus_per_node, slurm.mem_gb) == ("gpu", 1, 32)
    assert (slurm.timeout_min, slurm.cpus_per_task, slurm.max_num_timeout) == (60, 5, 0)
    assert slurm.submitit_folder == "/scratch/out/.submitit/%j"
    local = _launcher_config("submitit_local")
    assert local._target_.endswith("LocalLauncher")
    assert local.submitit_folder == "/scratch/out/.submitit/%j"
    joblib = _launcher_config("joblib", "hydra.launcher.n_jobs=2")
    assert joblib._target_.endswith("JoblibLauncher") and joblib.n_jobs == 2


def _fake_srun(folder: Path) -> str:
    """Lightning only looks for an ``srun`` on the PATH: where SLURM is not installed, an empty
    executable of that name stands in for it."""
    if shutil.which("srun"):
        return os.environ["PATH"]
    srun = folder / "srun"
    srun.write_text("#!/bin/sh\nexit 0\n")
    srun.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


@pytest.mark.parametrize("in_slurm_job", [False, True])
def test_srun_hint_only_inside_a_slurm_allocation(tmp_path, monkeypatch, in_slurm_job):
    import pytorch_lightning as pl

    from gmn_weather.trainer_setup import quiet_lightning

    monkeypatch.setenv("PATH", _fake_srun(tmp_path))
    for variable in ("SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_JOB_NAME"):
        monkeypatch.delenv(variable, raising=False)
    if in_slurm_job:  # an allocation (salloc/sbatch) in which python was started without srun
        monkeypatch.setenv("SLURM_JOB_ID", "123")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_lightning():
            pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False,
                       default_root_dir=str(tmp_path))
    hints = [w for w in caught if "`srun` command is available" in str(w.message)]
    assert len(hints) == (1 if in_slurm_job else 0)
