"""``trainer=ddp`` for real: two CPU processes (gloo) started by Lightning's launcher from the
command users type, inside a Hydra multirun.

The validation fold is built so that the two ranks see different classes: Lightning's
DistributedSampler deals the fold's rows out in turn (rank 0 rows 0, 2, 4, ...; rank 1 rows 1,
3, 5, ...) and pads an odd count by repeating row 0. The labels alternate clear/cloudy and the
fold has an odd number of images, so rank 0 sees clear images only and rank 1 both classes:
a per-rank Python tally deciding whether AUROC's collective runs would leave the ranks out of
step ("distributed collective mismatch"). The padded row must still appear once in the OOF file.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fixtures_train import make_dataset, run_cli, tiny_overrides

from gmn_weather.labelled_images import load_labelled_images
from gmn_weather.splits import assign_folds

WORLD = 2


def _rank_classes(labels: list[str]) -> list[set[str]]:
    """The classes each rank validates on under DistributedSampler(shuffle=False)."""
    padded = labels + labels[: (-len(labels)) % WORLD]
    return [set(padded[rank::WORLD]) for rank in range(WORLD)]


def _skewed_fold(root) -> int:
    """Drop images until some fold has an odd count and ranks with different classes."""
    labels_csv, image_dir, table = make_dataset(root / "data")
    for dropped in range(len(table)):
        reduced = table.drop(index=dropped).reset_index(drop=True)
        reduced.to_csv(labels_csv, index=False)
        loaded, _ = load_labelled_images(labels_csv, image_dir)
        folds = assign_folds(loaded, 3, 42).set_index("image_filename")["fold"]
        for k in range(3):
            val = loaded[loaded["image_filename"].map(folds) == k]
            classes = _rank_classes(list(val["label"]))
            if len(val) % WORLD and classes[0] != classes[1] and {len(c) for c in classes} == {1, 2}:
                return k
    raise AssertionError("no fold with per-rank label skew could be made")


@pytest.mark.slow
def test_ddp_two_cpu_processes_predict_each_image_once_and_log_val_metrics(tmp_path):
    fold = _skewed_fold(tmp_path)
    out = tmp_path / "out"
    proc = run_cli("train.py", "-m", f"fold={fold}", "trainer=ddp", f"trainer.devices={WORLD}",
                   *tiny_overrides(tmp_path / "data", out), env={"OMP_NUM_THREADS": "1"},
                   timeout=600)
    log = proc.stdout + proc.stderr
    assert "distributed_backend=gloo" in log and f"Starting with {WORLD} processes" in log
    assert "collective mismatch" not in log
    run = out / "tiny_test_resnet_light" / f"fold_{fold}"

    oof = pd.read_csv(run / "oof_predictions.csv")
    splits = pd.read_csv(out / "tiny_test_resnet_light" / "splits.csv")
    expected = sorted(splits.loc[splits["fold"] == fold, "image_filename"])
    assert len(expected) % WORLD == 1  # DistributedSampler padded one row
    assert sorted(oof["image_filename"]) == expected and oof["image_filename"].is_unique

    metrics = pd.read_csv(run / "metrics" / "version_0" / "metrics.csv")
    validated = metrics.dropna(subset=["val/loss"])
    assert len(validated) == 1  # one epoch, one row, written once (rank zero)
    for key in ("val/auroc", "val/ap", "val/acc"):
        assert validated[key].between(0, 1).all(), key

    record = json.loads((run / "oof_predictions.json").read_text())
    batch_size = record["settings"]["data"]["batch_size"]
    assert record["settings"]["effective_batch_size"] == WORLD * batch_size  # devices x batch
    assert record["metrics"]["val/auroc"] == validated["val/auroc"].iloc[0]
    # Rank 1 ran the job's own command line (no sweep of its own) and logged beside rank 0.
    assert (run / "train_ddp_process_1.log").is_file()
    assert not (out / "tiny_test_resnet_light" / "multirun.yaml").exists()


def test_the_other_ranks_run_the_jobs_own_command_line():
    """A rank started by Lightning reruns the command line: in a sweep (or a mode=cv job)
    that must be this one fold job, with the sweep's config options kept."""
    from gmn_weather.ddp import job_command_line

    sweep = ["-m", "fold=0,1,2", "--config-dir", "/site/conf", "-cn=train", "trainer=ddp"]
    job = ["fold=1", "trainer=ddp", "trainer.devices=2"]
    assert job_command_line(sweep, job, {"mode": "fold", "fold": 1}) == [
        "--config-dir", "/site/conf", "-cn=train", "trainer=ddp", "trainer.devices=2",
        "mode=fold", "fold=1"]
    cv_job = ["mode=cv", "trainer=ddp"]
    assert job_command_line(["mode=cv", "trainer=ddp"], cv_job, {"mode": "fold", "fold": 2}) \
        == ["trainer=ddp", "mode=fold", "fold=2"]


def test_effective_batch_size_enters_the_fingerprint():
    from gmn_weather.fingerprint import device_count, effective_batch_size

    assert [device_count(d, "cpu") for d in (1, 2, "2", [0, 1, 3], "0,1", "auto", -1)] == \
        [1, 2, 2, 3, 2, 1, 1]
    one = {"data": {"batch_size": 16}, "trainer": {"devices": 1, "accelerator": "cpu"}}
    two = {"data": {"batch_size": 16}, "trainer": {"devices": 2, "accelerator": "cpu",
                                                   "accumulate_grad_batches": 2,
                                                   "num_nodes": 2}}
    assert effective_batch_size(one) == 16 and effective_batch_size(two) == 128
