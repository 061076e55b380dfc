"""``hparams_search=optuna`` for real: hydra-optuna-sweeper runs mode=cv trials on tiny data,
maximises the pooled metric each returns, and the study's trials land in a CSV.
"""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest
from fixtures_train import make_dataset, run_cli, tiny_overrides

from gmn_weather.optuna_trials import TrialsCsvStorage, trials_table


@pytest.mark.slow
def test_three_trials_each_pool_an_experiment_and_list_its_pooled_metric(tmp_path):
    make_dataset(tmp_path / "data")
    output_root = tmp_path / "outputs"
    proc = run_cli("train.py", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=3",
                   # the tiny backbone only; two folds keep the three trials short
                   "model.backbone=choice(test_resnet)", "data.n_folds=2",
                   *tiny_overrides(tmp_path / "data", output_root), timeout=600)
    (csv,) = (output_root / "optuna").glob("sky_classifier_*.csv")
    trials = pd.read_csv(csv)
    assert list(trials["trial"]) == [0, 1, 2] and set(trials["state"]) == {"COMPLETE"}
    assert {"model.optimizer.lr", "augmentation", "model.backbone"} <= set(trials.columns)
    assert trials["ap"].between(0, 1).all()
    experiments = {}
    for folder in output_root.glob("tiny_test_resnet_*"):
        settings = json.loads((folder / "fold_0" / "run_info.json").read_text())["settings"]
        experiments[(settings["augmentation"]["name"], settings["model"]["optimizer"]["lr"])] = folder
    for _, trial in trials.iterrows():
        folder = experiments[(trial["augmentation"], trial["model.optimizer.lr"])]
        metrics = json.loads((folder / "pooled_metrics.json").read_text())
        assert metrics["n_folds"] == 2  # mode=cv trained and pooled every fold
        assert trial["ap"] == pytest.approx(metrics["ap"])  # what the job returned
        assert (folder / "cv" / ".hydra" / "overrides.yaml").is_file()
    assert "Best value" in proc.stdout + proc.stderr


def test_trials_table_lists_params_value_and_state(tmp_path):
    storage = TrialsCsvStorage(tmp_path / "trials.csv", "auroc")
    study = optuna.create_study(storage=storage, direction="maximize")
    for value in (0.5, None):
        trial = study.ask()
        trial.suggest_float("model.optimizer.lr", 1e-4, 1e-2, log=True)
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
    written = pd.read_csv(tmp_path / "trials.csv")
    assert list(written["state"]) == ["COMPLETE", "FAIL"]
    assert written.loc[0, "auroc"] == 0.5 and pd.isna(written.loc[1, "auroc"])
    assert written["model.optimizer.lr"].between(1e-4, 1e-2).all()
    assert list(written.columns) == ["trial", "state", "auroc", "model.optimizer.lr",
                                     "datetime_start", "datetime_complete", "duration_s"]
    assert (written["duration_s"] >= 0).all()
    assert list(trials_table([], "ap").columns)[:3] == ["trial", "state", "ap"]
