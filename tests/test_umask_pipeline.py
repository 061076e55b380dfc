"""Every output of the whole pipeline gets the mode a plain ``open()`` gives under the umask.

A tiny version of the demo pipeline runs under ``umask 022`` (every output file must be
group/other-readable: a data dir or final model shared with a group or a service account) and
under ``umask 077`` (none may be): synthetic archive -> find -> plan -> download with
``source=local`` -> extract -> label -> night_to_day ``converter=local`` (``python -m
data_prep``, a real subprocess started with that umask), then two folds, the final model and
predict in this process with the umask set (torch is imported once, which keeps this fast).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fixtures_train import REPO

PREP = [
    "--config-name", "demo_prep", "synthetic.stations=1", "synthetic.nights=2",
    "synthetic.frames_per_night=40", "synthetic.frames_per_day=10", "synthetic.width=96",
    "synthetic.height=54", "extract.per_night=6", "extract.total=4", "plan.max_videos=1",
]


# Two folds (the second pools), the final model and predict, in one fresh process: the umask
# must be the process's own from its start (as for a user's command), since libraries may read
# it once (fsspec caches it for Lightning's checkpoints).
TRAIN_AND_PREDICT = """
import sys
sys.path.insert(0, sys.argv[4])
from fixtures_train import compose_train
from gmn_weather.predict import run
from gmn_weather.training import train

data, outputs, predictions = sys.argv[1:4]
overrides = [f"paths.data_dir={data}", f"paths.output_root={outputs}", "debug=tiny",
             "data.n_folds=2", "logger=csv"]
for fold in (0, 1):
    train(compose_train(f"fold={fold}", *overrides))
train(compose_train("mode=final", *overrides))
run(f"{outputs}/tiny_test_resnet_light_n_folds-2/final", f"{data}/extracted_day", predictions,
    batch_size=4)
"""


def _run(args: list[str], umask: int) -> None:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"},
                          timeout=600, umask=umask, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


@pytest.mark.slow
@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["umask022", "umask077"])
def test_every_output_file_follows_the_umask(tmp_path, umask):
    data, outputs = tmp_path / "data", tmp_path / "outputs"
    predictions = outputs / "predictions.csv"
    _run(["-m", "data_prep", *PREP, f"paths.data_dir={data}",
          f"synthetic.out_dir={data / 'archive'}"], umask)
    _run(["-c", TRAIN_AND_PREDICT, str(data), str(outputs), str(predictions),
          str(REPO / "tests")], umask)

    experiment = outputs / "tiny_test_resnet_light_n_folds-2"  # named by its training override
    expected_outputs = [
        data / "archive" / "truth.csv", data / "nights.csv", data / "good_weather_dates.json",
        data / "download_manifest.csv", data / "extracted_night_labels.csv",
        data / "night_to_day_manifest.csv", experiment / "splits.csv",
        experiment / "oof_predictions.csv", experiment / "operating_point.json",
        experiment / "pooled_metrics.json",
        experiment / "threshold_table.csv", experiment / "fold_0" / "oof_predictions.csv",
        experiment / "fold_0" / "checkpoints" / "last.ckpt", experiment / "final" / "model.ckpt",
        experiment / "final" / "model.json", predictions,
    ]
    for path in expected_outputs:
        assert path.is_file(), path
    assert len(pd.read_csv(predictions)) == 4
    for folder in ("raw_data", "extracted_night", "extracted_day", "converted_day"):
        assert any((data / folder).rglob("*.*")), folder

    files = _files(data, outputs)
    shared = stat.S_IRGRP | stat.S_IROTH
    if umask == 0o022:
        private = [f"{p} {p.stat().st_mode & 0o777:o}" for p in files if p.stat().st_mode & shared != shared]
        assert private == []
    else:
        readable = [f"{p} {p.stat().st_mode & 0o777:o}" for p in files if p.stat().st_mode & 0o077]
        assert readable == []
