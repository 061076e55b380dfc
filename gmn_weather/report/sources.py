"""Read what the report page is made from, out of an experiment folder (the I/O edge).

The pooled decision files (``oof_predictions.csv``, ``operating_point.json``,
``threshold_table.csv``), each fold's ``run_info.json`` for the data settings the folds were
trained with (labels file, image folder, label overrides) and each fold's
``.hydra/overrides.yaml`` for the command-line overrides that define the experiment. The
labels file gives each image's station, night, timestamp and ``edge_distance_s``. What is
missing beyond the decision files is not fatal: the page says what it could not read.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from gmn_weather.experiment import ExperimentDir
from gmn_weather.report.page_data import (
    DataSources,
    ExperimentOverrides,
    attach_metadata,
    experiment_overrides,
)

log = logging.getLogger(__name__)


class ReportError(RuntimeError):
    """The report cannot be made from this folder; the message says what is missing."""


@dataclass
class ReportInputs:
    experiment: ExperimentDir
    oof: pd.DataFrame  # pooled OOF rows with station, night, timestamp, edge_distance_s
    operating_point: dict
    threshold_table: pd.DataFrame
    sources: DataSources
    overrides: ExperimentOverrides
    image_dir: Path | None  # where thumbnails are made from; None when not found
    notes: list[str] = field(default_factory=list)


def _required(path: Path) -> Path:
    if not path.is_file():
        raise ReportError(f"{path} is missing: the report is made from the pooled decision "
                          f"files; pool the folds first (python analyze.py name={path.parent.name})")
    return path


def _fold_records(experiment: ExperimentDir,
                  folds: list[int]) -> tuple[dict, dict[int, list | None]]:
    """The first fold's data settings and every fold's recorded overrides."""
    data_settings: dict = {}
    overrides: dict[int, list | None] = {}
    for k in folds:
        run = experiment.fold(k)
        info = run.read_run_info()
        if not data_settings and info is not None:
            data_settings = info.settings.get("data") or {}
        path = run.hydra_overrides_yaml
        overrides[k] = [str(o) for o in yaml.safe_load(path.read_text()) or []] \
            if path.is_file() else None
    return data_settings, overrides


def _located(value: str | None, key: str, what: str, exists, without: str,
             notes: list[str]) -> Path | None:
    """The path a fold setting names, or None with a note saying what the page does without."""
    if not value:
        notes.append(f"the folds' run_info.json names no {what} ({key}); {without}")
        return None
    path = Path(value)
    if not exists(path):
        notes.append(f"{what} {path} ({key} of the folds) not found from {Path.cwd()}; "
                     f"{without}")
        return None
    return path


def read_inputs(experiment: ExperimentDir) -> ReportInputs:
    """Everything the page needs from the experiment folder; :class:`ReportError` when the
    pooled decision files are missing."""
    oof = pd.read_csv(_required(experiment.oof_csv), dtype={"group": str})
    operating_point = json.loads(_required(experiment.operating_point_json).read_text())
    table = pd.read_csv(_required(experiment.threshold_table_csv))
    notes: list[str] = []
    data, per_fold = _fold_records(experiment, sorted(int(k) for k in oof["fold"].unique()))
    labels_csv = _located(data.get("labels_csv"), "data.labels_csv", "labels file", Path.is_file,
                          "station and night come from each image's group, the timestamp "
                          "from its name", notes)
    labels = None if labels_csv is None else pd.read_csv(
        labels_csv, dtype={"night": str, "station": str, "timestamp": str})
    oof, meta_notes = attach_metadata(oof, labels)
    notes += meta_notes
    sources = DataSources(labels_csv=data.get("labels_csv"), image_dir=data.get("image_dir"),
                          label_overrides=data.get("label_overrides"))
    return ReportInputs(
        experiment=experiment, oof=oof, operating_point=operating_point,
        threshold_table=table, sources=sources, overrides=experiment_overrides(per_fold),
        image_dir=_located(sources.image_dir, "data.image_dir", "image folder", Path.is_dir,
                           "the gallery has no thumbnails", notes),
        notes=notes)
