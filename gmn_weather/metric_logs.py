"""The run's metric table, ``metrics/version_0/metrics.csv``: one file per run folder.

Lightning's CSVLogger starts a new ``version_N`` folder each time a job runs in the same
folder, so a resumed fold's epochs would be split over two tables. :class:`RunCSVLogger`
keeps one: a job that resumes after N finished epochs continues the file (rows of epochs
from N on, logged by the interrupted job after its last checkpoint, are dropped since those
epochs run again); a job that starts over replaces it. Rows are written as they are logged
(``flush_logs_every_n_steps=1``), so a killed job's finished epochs stay in the table.
"""

from __future__ import annotations

import csv
import io
import logging
import os

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from gmn_base.atomic import write_text

log = logging.getLogger(__name__)


class _ContinuingWriter(ExperimentWriter):
    def __init__(self, log_dir: str, keep_epochs_below: int | None):
        self._keep_epochs_below = keep_epochs_below
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        """Called by the writer on creation: start the table over, or keep its first epochs."""
        path = self.metrics_file_path
        if not os.path.isfile(path):
            return
        if self._keep_epochs_below is None:
            os.remove(path)  # this run starts over: its table starts over too
            return
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            keys = list(reader.fieldnames or [])
            rows = [row for row in reader if _epoch(row) < self._keep_epochs_below]
        self.metrics_keys = sorted(keys)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.metrics_keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(path, out.getvalue())
        log.info("%s: continuing after epoch %d (%d earlier rows kept)", path,
                 self._keep_epochs_below, len(rows))


def _epoch(row: dict) -> float:
    try:
        return float(row.get("epoch") or 0)
    except ValueError:
        return 0.0


class RunCSVLogger(CSVLogger):
    """CSVLogger writing ``{save_dir}/{name}/version_0/metrics.csv`` for every run of a folder."""

    def __init__(self, save_dir: str, name: str = "metrics", version: int | str = 0,
                 prefix: str = "", flush_logs_every_n_steps: int = 1):
        super().__init__(save_dir, name=name, version=version, prefix=prefix,
                         flush_logs_every_n_steps=flush_logs_every_n_steps)
        self.keep_epochs_below: int | None = None

    def continue_after(self, epochs_done: int | None) -> None:
        """Before the first log: keep the table's rows of the first ``epochs_done`` epochs
        (None: start the table over)."""
        self.keep_epochs_below = epochs_done

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _ContinuingWriter(self.log_dir, self.keep_epochs_below)
        return self._experiment
