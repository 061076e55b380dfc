"""The Optuna study's trials as a CSV, rewritten as each trial of ``hparams_search=optuna`` ends.

hydra-optuna-sweeper keeps its study in the storage its config names and leaves only the
best trial on disk (``optimization_results.yaml``). ``conf/hparams_search/optuna.yaml``
gives it :class:`TrialsCsvStorage`: Optuna's own in-memory storage which, whenever a trial
finishes (complete or failed), writes every trial of the study so far to one CSV,
atomically: the trial number, its state, the value of ``optimized_metric`` (the pooled metric
the job returned), one column per searched parameter, and its times. A search that is
stopped keeps the rows of the trials that ended. (Optuna 2.10's database storage cannot be
used for this: it does not run on the SQLAlchemy 2 installed with it.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from optuna.storages import InMemoryStorage
from optuna.trial import FrozenTrial, TrialState

from gmn_base.atomic import write_csv


def trials_table(trials: Sequence[FrozenTrial], metric: str) -> pd.DataFrame:
    """One row per trial: ``trial``, ``state``, ``metric``, the parameters, the times."""
    params = sorted({name for trial in trials for name in trial.params})
    rows = []
    for trial in trials:
        end, start = trial.datetime_complete, trial.datetime_start
        rows.append({
            "trial": trial.number, "state": trial.state.name,
            metric: trial.value if trial.values else None,
            **{name: trial.params.get(name) for name in params},
            "datetime_start": start.isoformat(timespec="seconds") if start else None,
            "datetime_complete": end.isoformat(timespec="seconds") if end else None,
            "duration_s": round((end - start).total_seconds(), 1) if start and end else None,
        })
    columns = ["trial", "state", metric, *params, "datetime_start", "datetime_complete",
               "duration_s"]
    return pd.DataFrame(rows, columns=columns)


class TrialsCsvStorage(InMemoryStorage):
    """In-memory Optuna storage that keeps ``csv_path`` listing the study's trials."""

    def __init__(self, csv_path: str | Path, metric: str) -> None:
        super().__init__()
        self.csv_path, self.metric = Path(csv_path), str(metric)

    def set_trial_state(self, trial_id: int, state: TrialState) -> bool:
        changed = super().set_trial_state(trial_id, state)
        if state.is_finished():
            study_id = self.get_study_id_from_trial_id(trial_id)
            write_csv(self.csv_path, trials_table(self.get_all_trials(study_id), self.metric))
        return changed
