"""Score predictions on synthetic daytime frames against the archive's truth.

The synthetic archive's ``truth.csv`` has one row per frame (station, UTC timestamp, label,
physical_label, ...). Daytime frames extracted by ``data_prep.extract extract.kind=day`` are
named ``{ST}_{YYYYMMDD}_{HHMMSS}_{mmm}.png``; :func:`match_truth` maps each predicted image
back to its truth row through :mod:`gmn_base.image_names` (station and millisecond timestamp) and
:func:`score` gives precision and recall of ``clear`` at the predictions' own threshold and
the threshold-free AUROC of ``prob_clear``. Used by the demo; also
``python -m gmn_demo.daytime_score predictions=... truth=...``.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig
from sklearn.metrics import confusion_matrix, roc_auc_score

from gmn_base.command_line import guard_secrets
from gmn_base.errors import GMNFormatError
from gmn_base.image_names import parse_image_name
from gmn_base.station_time import frame_time_at

log = logging.getLogger(__name__)

CLASSES = ("clear", "cloudy")


class DaytimeScoreError(ValueError):
    """Predictions or truth that cannot be scored; the message names the file and value."""


@dataclass(frozen=True)
class DaytimeScore:
    images: int
    precision: float | None  # of "clear"; None when nothing was predicted clear
    recall: float | None     # of "clear"; None when no image is truly clear
    auroc: float | None      # None when the truth has one class only
    tp: int
    fp: int
    tn: int
    fn: int
    truly_clear: int
    unmatched: int           # predicted images with no truth row
    unscored: int            # rows predict.py could not score (unreadable images)

    def line(self) -> str:
        def fmt(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3f}"
        extra = ""
        if self.tp + self.fp == 0:
            extra += "; nothing predicted clear at the model's threshold"
        if self.unmatched or self.unscored:
            extra = f"; {self.unmatched} without truth, {self.unscored} unreadable"
        return (f"{self.images} daytime images ({self.truly_clear} clear): precision {fmt(self.precision)}, "
                f"recall {fmt(self.recall)}, AUROC {fmt(self.auroc)} "
                f"(tp={self.tp} fp={self.fp} tn={self.tn} fn={self.fn}{extra})")


def truth_keys(truth: pd.DataFrame, truth_column: str, source: str = "truth.csv") -> pd.Series:
    """Truth labels indexed by ``(station, millisecond UTC timestamp)``."""
    missing = [c for c in ("station", "timestamp", truth_column) if c not in truth.columns]
    if missing:
        raise DaytimeScoreError(f"{source}: missing column(s) {', '.join(missing)}")
    times = pd.to_datetime(truth["timestamp"], utc=True, format="ISO8601")
    keys = [(str(st), frame_time_at(ts.to_pydatetime())) for st, ts in zip(truth["station"], times)]
    labels = truth[truth_column].astype(str).str.strip().str.lower()
    return pd.Series(labels.to_numpy(), index=pd.MultiIndex.from_tuples(keys))


def match_truth(predictions: pd.DataFrame, truth: pd.DataFrame, truth_column: str = "physical_label",
                source: str = "predictions") -> tuple[pd.DataFrame, int, int]:
    """Join predictions to truth; return (matched rows, unmatched count, unscored count).

    Matched rows have ``image_filename, prediction, prob_clear, truth``. A file name that is
    not a GMN image name is an error naming it; a name with no truth row is counted.
    """
    missing = [c for c in ("filename", "prediction", "prob_clear") if c not in predictions.columns]
    if missing:
        raise DaytimeScoreError(f"{source}: missing column(s) {', '.join(missing)}")
    by_key = truth_keys(truth, truth_column)
    rows, unmatched, unscored = [], 0, 0
    for row in predictions.itertuples(index=False):
        name = Path(str(row.filename)).name
        prediction = str(row.prediction).strip().lower()
        if prediction not in CLASSES or pd.isna(row.prob_clear):
            unscored += 1
            continue
        try:
            image = parse_image_name(name, source)
        except GMNFormatError as exc:
            raise DaytimeScoreError(str(exc)) from None
        key = (image.station, frame_time_at(image.timestamp))
        if key not in by_key.index:
            unmatched += 1
            continue
        rows.append({"image_filename": name, "prediction": prediction,
                     "prob_clear": float(row.prob_clear), "truth": by_key.loc[key]})
    matched = pd.DataFrame(rows, columns=["image_filename", "prediction", "prob_clear", "truth"])
    bad = sorted(set(matched["truth"]) - set(CLASSES))
    if bad:
        raise DaytimeScoreError(f"truth column {truth_column!r} has value(s) {bad} for predicted "
                                f"images; expected {', '.join(CLASSES)}")
    return matched, unmatched, unscored


def score(matched: pd.DataFrame, unmatched: int = 0, unscored: int = 0) -> DaytimeScore:
    """Precision/recall of ``clear`` from the predictions' labels; AUROC from ``prob_clear``."""
    truth = (matched["truth"] == "clear").astype(int).to_numpy()
    predicted = (matched["prediction"] == "clear").astype(int).to_numpy()
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(truth, predicted, labels=[0, 1]).ravel())
    auroc = (float(roc_auc_score(truth, matched["prob_clear"]))
             if len(set(truth.tolist())) == 2 else None)
    return DaytimeScore(
        images=len(matched),
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / (tp + fn) if tp + fn else None,
        auroc=auroc, tp=tp, fp=fp, tn=tn, fn=fn, truly_clear=int(truth.sum()),
        unmatched=unmatched, unscored=unscored,
    )


def score_files(predictions_csv: str | Path, truth_csv: str | Path,
                truth_column: str = "physical_label") -> DaytimeScore:
    for path in (predictions_csv, truth_csv):
        if not Path(path).is_file():
            raise DaytimeScoreError(f"{path}: no such file")
    matched, unmatched, unscored = match_truth(
        pd.read_csv(predictions_csv), pd.read_csv(truth_csv), truth_column, str(predictions_csv))
    if matched.empty:
        raise DaytimeScoreError(f"{predictions_csv}: no predicted image matches a row of "
                                f"{truth_csv}; were they made from the same archive?")
    return score(matched, unmatched, unscored)


@guard_secrets
@hydra.main(version_base="1.3", config_path="../conf", config_name="daytime_score")
def main(cfg: DictConfig) -> None:
    try:
        result = score_files(cfg.predictions, cfg.truth, cfg.truth_column)
    except DaytimeScoreError as exc:
        log.error("%s", exc)
        sys.exit(2)
    print(f"daytime score: {result.line()}")


if __name__ == "__main__":
    main()
