"""Inference on image files: ``filename,prediction,...`` rows, streamed to a CSV.

:func:`predict_paths` is the library call other code uses; :func:`run` is what
``predict.py`` does (resolve ``input=`` to image files, predict, write ``output=``). Two
backends score the images: ``torch`` (:mod:`gmn_weather.predict_torch`: the model's
``predict_step``, the same inference path as the out-of-fold predictions of training) and
``onnx`` (:mod:`gmn_weather.predict_onnx`: ``final/model.onnx`` in onnxruntime; this module
and that one import no torch, so a station needs none). Both decode with
:mod:`gmn_weather.inputs.decode` in worker processes and hand back batch after batch; rows
are written as the batches come, so a folder of 100 000 images never becomes a table in
memory. Unreadable images get a row with ``prediction=unreadable`` and the reason in
``error``; they are counted in the summary and never scored as if they were an image.

``station`` and ``timestamp`` come from a ``{ST}_{YYYYMMDD}_{HHMMSS}_{mmm}.png`` name.
``night`` stays empty: a night is a capture session (its id is the UTC date the session's
capture started), and a name alone cannot tell which session a frame belongs to (a frame
at 02:00 UTC may end a session that started the previous UTC date or, at another station,
start one). The labels file of data prep carries the session night.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd

from gmn_base.atomic import atomic_path
from gmn_base.errors import GMNFormatError
from gmn_base.image_names import parse_image_name
from gmn_base.run_checks import write_problem
from gmn_base.settings import setting_problems, whole
from gmn_weather.thresholds import ThresholdSettingError, check_unit

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
PREDICTION_COLUMNS = ["filename", "prediction", "confidence", "prob_clear", "error",
                      "station", "night", "timestamp"]
UNREADABLE = "unreadable"
BACKENDS = ("torch", "onnx")
MAX_WORKERS = 4  # default decoding processes: enough to keep one model busy on a CPU


class PredictInputError(ValueError):
    """A predict.py setting that cannot be used; the message names it."""


@dataclass
class BatchScores:
    """One batch: ``prob_clear`` by index into the path list, and the unreadable ones."""

    indices: list[int]
    prob_clear: list[float]
    errors: list[tuple[int, str]] = field(default_factory=list)


class Scorer(Protocol):
    """A loaded model that scores files batch by batch (a backend)."""

    threshold: float
    threshold_source: str

    def batches(self, paths: Sequence[Path], batch_size: int,
                num_workers: int) -> Iterator[BatchScores]: ...


def open_scorer(checkpoint: str | Path, backend: str = "torch", int8: bool = False,
                device: str | None = None) -> Scorer:
    """The model behind ``checkpoint`` on ``backend`` (torch is imported only for torch)."""
    if backend == "torch":
        if int8:
            raise PredictInputError("int8=true needs backend=onnx (model.int8.onnx)")
        from gmn_weather.predict_torch import TorchScorer

        return TorchScorer.load(checkpoint, device)
    if backend == "onnx":
        from gmn_weather.predict_onnx import OnnxScorer

        return OnnxScorer.load(checkpoint, int8, device)
    raise PredictInputError(f"backend={backend!r}: expected one of {', '.join(BACKENDS)}")


def label_rows(prob_clear: Iterable[float], threshold: float) -> list[tuple[str, float]]:
    """(prediction, confidence) per probability; confidence is the predicted class's probability."""
    rows = []
    for p in prob_clear:
        rows.append(("clear", p) if p >= threshold else ("cloudy", 1.0 - p))
    return rows


def name_fields(path: str | Path) -> tuple[str, str, str]:
    """(station, night, timestamp) a frame's name tells; empty where it does not."""
    try:
        name = parse_image_name(Path(path).name)
    except GMNFormatError:
        return "", "", ""
    return name.station or "", "", name.timestamp.isoformat(timespec="milliseconds")


def prediction_rows(filenames: Sequence[str], batches: Iterable[BatchScores],
                    threshold: float) -> Iterator[list]:
    """One row per file, in file order, as the (in-order) batches arrive."""
    for batch in batches:
        rows = {}
        for i, p in zip(batch.indices, batch.prob_clear):
            (prediction, confidence), = label_rows([p], threshold)
            rows[i] = [prediction, confidence, p, ""]
        for i, error in batch.errors:
            rows[i] = [UNREADABLE, "", "", error]
        for i in sorted(rows):
            yield [filenames[i], *rows[i], *name_fields(filenames[i])]


def predict_paths(
    checkpoint: str | Path | Scorer,
    paths: Sequence[str | Path],
    batch_size: int = 32,
    threshold: float | None = None,
    num_workers: int = 0,
    device: str | None = None,
    backend: str = "torch",
    int8: bool = False,
) -> pd.DataFrame:
    """Predict ``paths``; return the rows (:data:`PREDICTION_COLUMNS`) as a table.

    ``filename`` is each path as given. ``threshold`` overrides the model's embedded one.
    ``checkpoint`` may be a scorer already opened with :func:`open_scorer`.
    """
    scorer = checkpoint if hasattr(checkpoint, "batches") else \
        open_scorer(checkpoint, backend, int8, device)
    threshold = scorer.threshold if threshold is None else check_unit("threshold", threshold)
    paths = [Path(p) for p in paths]
    rows = prediction_rows([str(p) for p in paths],
                           scorer.batches(paths, batch_size, num_workers), threshold)
    table = pd.DataFrame(list(rows), columns=PREDICTION_COLUMNS)
    for column in ("confidence", "prob_clear"):
        table[column] = pd.to_numeric(table[column])
    return table


def resolve_inputs(input_spec: str) -> tuple[list[Path], Path | None]:
    """Image files named by ``input=`` (one image, a folder, or a glob), and the base folder
    their ``filename`` is written relative to (None: as given)."""
    path = Path(input_spec)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        return files, path
    if path.is_file():
        return [path], None
    matches = sorted(Path(p) for p in glob.glob(input_spec, recursive=True) if Path(p).is_file())
    if not matches:
        raise FileNotFoundError(f"input={input_spec}: no such image, folder, or matching files")
    return matches, None


@dataclass
class PredictSummary:
    output: Path
    n_images: int = 0
    n_clear: int = 0
    n_cloudy: int = 0
    n_unreadable: int = 0
    threshold: float = 0.5
    threshold_source: str = ""

    def count(self, prediction: str) -> None:
        self.n_images += 1
        if prediction == "clear":
            self.n_clear += 1
        elif prediction == "cloudy":
            self.n_cloudy += 1
        else:
            self.n_unreadable += 1

    def lines(self) -> list[str]:
        return [
            (f"predicted {self.n_images} images: {self.n_clear} clear, "
             f"{self.n_cloudy} cloudy, {self.n_unreadable} unreadable -> {self.output}"),
            f"threshold {self.threshold:.3f} ({self.threshold_source})",
        ]


PREDICT_RULES = {"batch_size": whole(1), "num_workers": whole(0)}


def check_run_settings(output: str, threshold, batch_size, num_workers) -> tuple[int, int]:
    """(batch_size, num_workers) once ``threshold=``, ``batch_size=``, ``num_workers=`` and
    the ``output=`` path are usable; PredictInputError naming each that is not."""
    problems = setting_problems({"batch_size": batch_size, "num_workers": num_workers},
                                PREDICT_RULES)
    if threshold is not None:
        try:
            check_unit("threshold", threshold)
        except ThresholdSettingError as exc:
            problems.insert(0, f"{exc} (null uses the model's own)")
    unwritable = write_problem(output, is_file=True)
    if unwritable:
        problems.append(f"output={output}: {unwritable}; give output= a file in a folder you "
                        "can write to")
    if problems:
        raise PredictInputError("; ".join(problems))
    return int(batch_size), int(num_workers)


def run(checkpoint: str, input_spec: str, output: str, threshold: float | None = None,
        batch_size: int = 32, num_workers: int | None = None, device: str | None = None,
        backend: str = "torch", int8: bool = False) -> PredictSummary:
    """What ``predict.py`` does: predict every image under ``input_spec`` into ``output``.

    Settings and the output's folder are checked before any image is read. ``num_workers``
    None: one decoding process per CPU, at most :data:`MAX_WORKERS`.
    """
    if num_workers is None:
        num_workers = min(MAX_WORKERS, os.cpu_count() or 1)
    batch_size, num_workers = check_run_settings(output, threshold, batch_size, num_workers)
    files, base = resolve_inputs(input_spec)
    if not files:
        raise FileNotFoundError(f"input={input_spec}: the folder holds no images "
                                f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    names = [str(f.relative_to(base)) if base is not None else str(f) for f in files]
    with contextlib.ExitStack() as stack:
        try:  # the output is known writable before any image is read
            tmp = stack.enter_context(atomic_path(output))
        except OSError as exc:
            raise PredictInputError(f"output={output}: cannot write there "
                                    f"({exc.strerror or exc})") from exc
        summary = _predict_into(tmp, checkpoint, files, names, threshold, batch_size,
                                num_workers, device, backend, int8)
    summary.output = Path(output)
    return summary


def _predict_into(tmp: Path, checkpoint: str, files: list[Path], names: list[str],
                  threshold: float | None, batch_size: int, num_workers: int,
                  device: str | None, backend: str, int8: bool) -> PredictSummary:
    scorer = open_scorer(checkpoint, backend, int8, device)
    used = scorer.threshold if threshold is None else float(threshold)
    source = scorer.threshold_source if threshold is None else "threshold= on the command line"
    log.info("predict: %d images with %s (%s%s), threshold %.3f (%s)", len(files), checkpoint,
             backend, " int8" if int8 else "", used, source)
    summary = PredictSummary(Path(tmp), threshold=used, threshold_source=source)
    with open(tmp, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(PREDICTION_COLUMNS)
        for row in prediction_rows(names, scorer.batches(files, batch_size, num_workers), used):
            writer.writerow(row)
            summary.count(row[1])
            if row[1] == UNREADABLE:
                log.warning("predict: unreadable image %s: %s", row[0], row[4])
    return summary
