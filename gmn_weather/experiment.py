"""The experiment folder: every path and file name under ``${paths.output_root}/${name}``.

One experiment is one training configuration: its ``splits.csv``, one ``fold_{k}/`` per
cross-validation fold (checkpoints, ``oof_predictions.csv`` with its record
``oof_predictions.json``, ``run_info.json``, ``config.yaml``), the pooled decision files, the
report page (``report.html`` and ``report_files/``) and ``final/``. :class:`ExperimentDir`
names them (the lock files too), reads and writes run info and fold predictions, and refuses a
job whose settings fingerprint differs from folds that finished there or are being trained
there. No other module spells these file names; code that needs one asks this module.

A fold's predictions count as finished only through their record: the fingerprint and
settings they were made under and the SHA-256 of the CSV's bytes, written after the CSV. A
CSV without a record whose digest matches (an interrupted write, a hand edit, an older
version) is an unfinished fold, so nothing is ever pooled under a fingerprint it was not
made with.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from gmn_base.atomic import remove_stale_temporaries, write_json, write_text
from gmn_base.locks import LockRecord, held_by
from gmn_weather.fingerprint import configuration_differences
from gmn_weather.run_records import OOFRecord, RunInfo

log = logging.getLogger(__name__)

SPLITS_CSV = "splits.csv"
OOF_CSV = "oof_predictions.csv"
OOF_RECORD_JSON = "oof_predictions.json"  # a fold's: what its OOF CSV was made under
RUN_INFO_JSON = "run_info.json"
CONFIG_YAML = "config.yaml"
CHECKPOINTS = "checkpoints"
THRESHOLD_TABLE_CSV = "threshold_table.csv"
PR_CURVE_PNG = "pr_curve.png"
OPERATING_POINT_JSON = "operating_point.json"
POOLED_METRICS_JSON = "pooled_metrics.json"
CV = "cv"
FINAL = "final"
MODEL_JSON = "model.json"
MODEL_CKPT = "model.ckpt"
MODEL_ONNX = "model.onnx"
MODEL_INT8_ONNX = "model.int8.onnx"
DECISION_FILES = (OOF_CSV, THRESHOLD_TABLE_CSV, PR_CURVE_PNG, OPERATING_POINT_JSON,
                  POOLED_METRICS_JSON)
REPORT_HTML = "report.html"
REPORT_FILES = "report_files"
# Hydra's record of the command-line overrides a job was started with (its output subdir).
HYDRA_OVERRIDES_YAML = ".hydra/overrides.yaml"
# Beside the experiments, in ${paths.output_root}: analyze.py mode=compare's table.
COMPARISON_CSV = "comparison.csv"
# Locks (gmn_base.locks.FileLock): a run folder's claim, held for the whole job; the
# experiment's claims lock, held while a job checks and claims; its pooling lock, held while a
# fold job writes its predictions and pools, or analyze.py pools.
CLAIM_LOCK = ".claim.lock"
CLAIMS_LOCK = ".claims.lock"
POOLING_LOCK = ".pooling.lock"


def run_name(mode: str, fold: object) -> str:
    """A job's folder name: ``fold_{k}`` for a CV fold, ``final`` for the final model,
    ``cv`` for a ``mode=cv`` job (its log; the folds it trains get their own folders)."""
    if mode == "final":
        return FINAL
    if mode == "fold":
        return f"fold_{fold}"
    if mode == CV:
        return CV
    raise ValueError(f"mode={mode!r}: expected 'fold', 'cv' or 'final'")


class ExperimentError(RuntimeError):
    """The experiment folder cannot be used as asked; the message says what to change."""


@dataclass(frozen=True)
class RunDir:
    """One job's folder: ``fold_{k}/`` or ``final/``."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def run_info_json(self) -> Path:
        return self.path / RUN_INFO_JSON

    @property
    def config_yaml(self) -> Path:
        return self.path / CONFIG_YAML

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def oof_csv(self) -> Path:
        return self.path / OOF_CSV

    @property
    def hydra_overrides_yaml(self) -> Path:
        """Written for jobs started from the command line (by the job once it has claimed
        its folder: gmn_weather.hydra_config.save_hydra_record); absent otherwise."""
        return self.path / HYDRA_OVERRIDES_YAML

    @property
    def oof_record_json(self) -> Path:
        return self.path / OOF_RECORD_JSON

    @property
    def last_ckpt(self) -> Path:
        """Lightning's checkpoint of the last finished epoch (what a rerun resumes from)."""
        return self.checkpoints_dir / "last.ckpt"

    @property
    def claim_lock(self) -> Path:
        """Held by the job training into this folder, for as long as it runs."""
        return self.path / CLAIM_LOCK

    def write_run_info(self, info: RunInfo) -> None:
        write_json(self.run_info_json, info.to_dict())

    def read_run_info(self) -> RunInfo | None:
        if not self.run_info_json.is_file():
            return None
        return RunInfo.from_dict(json.loads(self.run_info_json.read_text()))

    def write_config(self, yaml_text: str) -> None:
        write_text(self.config_yaml, yaml_text)

    def write_oof(self, table: pd.DataFrame, record: OOFRecord) -> None:
        """The predictions, then their record (with the CSV's digest): the record commits them."""
        text = table.to_csv(index=False)
        digest = hashlib.sha256(text.encode()).hexdigest()
        write_text(self.oof_csv, text)
        write_json(self.oof_record_json,
                   asdict(replace(record, n_rows=len(table), sha256=digest)))

    def oof_record(self) -> OOFRecord | None:
        """The record of this folder's OOF predictions when they are finished: the record
        exists and the CSV's bytes match its digest. None otherwise."""
        if not self.oof_record_json.is_file():
            return None
        try:
            record = OOFRecord.from_dict(json.loads(self.oof_record_json.read_text()))
            data = self.oof_csv.read_bytes()
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            log.warning("%s is not readable (%s): %s counts as unfinished",
                        self.oof_record_json, exc, self.name)
            return None
        if hashlib.sha256(data).hexdigest() != record.sha256:
            log.warning("%s does not match its record %s (an interrupted write or an edit): "
                        "%s counts as unfinished; rerun it", self.oof_csv,
                        self.oof_record_json.name, self.name)
            return None
        return record

    def claim_holder(self) -> LockRecord | None:
        """The job training into this folder now, if any."""
        return held_by(self.claim_lock)


@dataclass(frozen=True)
class FinalDir(RunDir):
    """A final model's folder: ``model.ckpt`` + the self-describing ``model.json``, and the
    ONNX files for stations (``model.onnx``, ``model.int8.onnx``).

    Also any folder a user hands to ``predict.py checkpoint=``.
    """

    @property
    def model_json(self) -> Path:
        return self.path / MODEL_JSON

    @property
    def model_ckpt(self) -> Path:
        return self.path / MODEL_CKPT

    @property
    def model_onnx(self) -> Path:
        return self.path / MODEL_ONNX

    @property
    def model_int8_onnx(self) -> Path:
        return self.path / MODEL_INT8_ONNX


@dataclass(frozen=True)
class ExperimentDir:
    path: Path

    @classmethod
    def of(cls, output_root: str | Path, name: str) -> ExperimentDir:
        return cls(Path(output_root) / str(name))

    @classmethod
    def at(cls, experiment: ExperimentDir | str | Path) -> ExperimentDir:
        """``experiment`` itself, or the experiment in the folder it names."""
        return experiment if isinstance(experiment, ExperimentDir) else cls(Path(experiment))

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def splits_csv(self) -> Path:
        return self.path / SPLITS_CSV

    @property
    def oof_csv(self) -> Path:
        """The pooled out-of-fold predictions of every fold."""
        return self.path / OOF_CSV

    @property
    def threshold_table_csv(self) -> Path:
        return self.path / THRESHOLD_TABLE_CSV

    @property
    def pr_curve_png(self) -> Path:
        return self.path / PR_CURVE_PNG

    @property
    def operating_point_json(self) -> Path:
        return self.path / OPERATING_POINT_JSON

    @property
    def pooled_metrics_json(self) -> Path:
        return self.path / POOLED_METRICS_JSON

    @property
    def report_html(self) -> Path:
        """The experiment's report page (gmn_weather.report), written with the decision files."""
        return self.path / REPORT_HTML

    @property
    def report_files_dir(self) -> Path:
        """What the report page links beside it (its thumbnails)."""
        return self.path / REPORT_FILES

    @property
    def final(self) -> FinalDir:
        return FinalDir(self.path / FINAL)

    def fold(self, k: int) -> RunDir:
        return RunDir(self.path / run_name("fold", int(k)))

    @property
    def cv(self) -> RunDir:
        """A ``mode=cv`` job's folder (its Hydra record and log; its folds have their own)."""
        return RunDir(self.path / CV)

    def run(self, mode: str, fold: int | None) -> RunDir:
        """The folder of a ``mode=fold`` job for ``fold``, of a ``mode=cv`` job, or of the
        ``mode=final`` job."""
        name = run_name(mode, fold)
        return self.final if name == FINAL else self.cv if name == CV else self.fold(fold)

    @property
    def claims_lock(self) -> Path:
        return self.path / CLAIMS_LOCK

    @property
    def pooling_lock(self) -> Path:
        return self.path / POOLING_LOCK

    def prepare_run(self, run: RunDir) -> None:
        """Create a job's folder and clear what killed runs left in it and in the experiment
        (only temporaries whose writer is gone: a job running beside this one keeps its own)."""
        run.path.mkdir(parents=True, exist_ok=True)
        for folder in (self.path, run.path, run.checkpoints_dir):
            remove_stale_temporaries(folder)

    # --- reading what other jobs wrote ---------------------------------------------------------

    def read_splits(self) -> pd.DataFrame:
        if not self.splits_csv.is_file():
            raise ExperimentError(f"no {SPLITS_CSV} in {self.path}: run the folds first "
                                  "(python train.py -m fold=0,1,2) or check name=")
        return pd.read_csv(self.splits_csv, dtype={"group": str})

    def read_operating_point(self) -> dict | None:
        if not self.operating_point_json.is_file():
            return None
        return json.loads(self.operating_point_json.read_text())

    def read_pooled_metrics(self) -> dict | None:
        if not self.pooled_metrics_json.is_file():
            return None
        return json.loads(self.pooled_metrics_json.read_text())

    def write_fold_oof(self, k: int, table: pd.DataFrame, record: OOFRecord) -> Path:
        """Write fold ``k``'s out-of-fold predictions and their record; return the CSV."""
        run = self.fold(k)
        run.write_oof(table, record)
        return run.oof_csv

    def read_fold_oof(self, k: int) -> pd.DataFrame:
        return pd.read_csv(self.fold(k).oof_csv, dtype={"group": str})

    def finished_folds(self, n_folds: int) -> tuple[dict[int, OOFRecord], list[int]]:
        """The records of folds whose OOF predictions are finished, and the folds still missing."""
        records, missing = {}, []
        for k in range(n_folds):
            record = self.fold(k).oof_record()
            if record is None:
                missing.append(k)
            else:
                records[k] = record
        return records, missing

    # --- one configuration per experiment -----------------------------------------------------

    def check_accepts(self, fingerprint: str, settings: dict) -> None:
        """Refuse a fold job whose settings differ from folds finished or being trained here.

        An experiment folder holds one configuration; a job with other settings under the
        same ``name`` would otherwise overwrite one fold and leave a set that can never be
        pooled. Folds that finished (their OOF record) count, and folds a running job has
        claimed (its claim lock carries its fingerprint); a job that stopped before finishing
        (say, no network for pretrained weights) must not block its corrected rerun. Callers
        hold the experiment's claims lock, so two jobs cannot both pass before either claims.
        """
        for fold_path in sorted(self.path.glob(run_name("fold", "*"))):
            run = RunDir(fold_path)
            holder = run.claim_holder()
            if holder is not None:
                if holder.note != fingerprint:
                    info = run.read_run_info()
                    raise ExperimentError(_other_configuration(
                        self.path, f"{run.name} being trained by {holder.describe()}",
                        info.settings if info else {}, settings))
                continue
            record = run.oof_record()
            if record is not None and record.fingerprint != fingerprint:
                raise ExperimentError(_other_configuration(
                    self.path, f"{run.name} trained", record.settings, settings))


def _other_configuration(experiment: Path, what: str, theirs: dict, ours: dict) -> str:
    diffs = configuration_differences(theirs, ours)
    return (f"{experiment} already holds {what} under a different configuration "
            f"({'; '.join(diffs[:5]) or 'fingerprints differ'}); folds are never pooled across "
            "configurations. Set name=<new experiment name> for these settings (or delete "
            f"{experiment} to start it over)")


def check_same_configuration(infos: Mapping[int, OOFRecord]) -> None:
    """Refuse a set of folds trained under more than one configuration."""
    folds = sorted(infos)
    first = infos[folds[0]]
    for k in folds[1:]:
        if infos[k].fingerprint != first.fingerprint:
            diffs = configuration_differences(first.settings, infos[k].settings)
            raise ExperimentError(
                f"fold_{folds[0]} and fold_{k} were trained under different configurations "
                f"({'; '.join(diffs[:5]) or 'fingerprints differ'}); folds are never pooled "
                "across configurations. Rerun every fold with one configuration, or set "
                "name=<new experiment name> so each configuration gets its own folder"
            )
