"""Batched inference with a trained classifier: images in, ``filename,prediction,...`` out.

:func:`predict_paths` is the library call other code uses; :func:`run` is what
``predict.py`` does (resolve ``input=`` to image files, predict, write ``output=``).
Scoring runs ``Trainer.predict`` with the model's ``predict_step``, the same inference path
as the out-of-fold predictions of training. Unreadable images get a row with
``prediction=unreadable`` and the reason in ``error``; they are counted in the summary and
never scored as if they were an image.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset

from gmn_base.atomic import write_csv
from gmn_base.run_checks import write_problem
from gmn_base.settings import setting_problems, whole
from gmn_weather.export import LoadedClassifier, load_classifier
from gmn_weather.thresholds import ThresholdSettingError, check_unit
from gmn_weather.trainer_setup import quiet_lightning
from gmn_weather.transforms_factory import eval_transform, load_rgb

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
PREDICTION_COLUMNS = ["filename", "prediction", "confidence", "prob_clear", "error"]
UNREADABLE = "unreadable"


class PredictInputError(ValueError):
    """A predict.py setting that cannot be used; the message names it."""


class ImageFiles(Dataset):
    """``{"image", "index"}`` per file, or ``{"index", "error"}`` for one that cannot be read."""

    def __init__(self, paths: Sequence[Path], transform):
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        try:
            return {"image": self.transform(load_rgb(self.paths[index])), "index": index}
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for broken files
            return {"index": index, "error": f"{type(exc).__name__}: {exc}"}


def collate_readable(items: list[dict]) -> dict:
    """A batch of the readable images (``image`` None when there is none) and the
    ``errors`` (index, reason) of the others."""
    good = [item for item in items if "error" not in item]
    return {"image": torch.stack([item["image"] for item in good]) if good else None,
            "index": torch.tensor([item["index"] for item in good], dtype=torch.long),
            "errors": [(item["index"], item["error"]) for item in items if "error" in item]}


class PredictionRows(BasePredictionWriter):
    """``prob_clear`` and read errors by file index, collected batch by batch."""

    def __init__(self):
        super().__init__(write_interval="batch")
        self.prob_clear: dict[int, float] = {}
        self.errors: dict[int, str] = {}

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           prediction: Any, batch_indices: Sequence[int] | None, batch: Any,
                           batch_idx: int, dataloader_idx: int) -> None:
        self.errors.update(batch["errors"])
        self.prob_clear.update(zip(prediction["index"].tolist(),
                                   prediction["prob_clear"].tolist()))


def accelerator_for(device: str | None) -> tuple[str, int | list[int]]:
    """Lightning's (accelerator, devices) for ``device=`` (null: cuda when available)."""
    if device is None:
        return ("gpu", 1) if torch.cuda.is_available() else ("cpu", 1)
    try:
        wanted = torch.device(device)
    except RuntimeError:
        raise PredictInputError(f"device={device!r}: expected cpu, cuda or cuda:N") from None
    if wanted.type == "cpu":
        return "cpu", 1
    if wanted.type == "cuda":
        if not torch.cuda.is_available():
            raise PredictInputError(f"device={device}: no CUDA device on this machine; "
                                    "use device=cpu (or leave device unset)")
        return "gpu", [wanted.index or 0]
    raise PredictInputError(f"device={device!r}: expected cpu, cuda or cuda:N")


def label_rows(prob_clear: Iterable[float], threshold: float) -> list[tuple[str, float]]:
    """(prediction, confidence) per probability; confidence is the predicted class's probability."""
    rows = []
    for p in prob_clear:
        rows.append(("clear", p) if p >= threshold else ("cloudy", 1.0 - p))
    return rows


def score_images(loaded: LoadedClassifier, paths: Sequence[Path], batch_size: int = 32,
                 num_workers: int = 0, device: str | None = None,
                 progress: bool = False) -> PredictionRows:
    """``prob_clear`` of every readable image (by index into ``paths``) and the read errors."""
    accelerator, devices = accelerator_for(device)
    loader = DataLoader(ImageFiles(paths, eval_transform(loaded.preprocessing)),
                        batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_readable)
    rows = PredictionRows()
    with quiet_lightning():
        trainer = pl.Trainer(accelerator=accelerator, devices=devices, logger=False,
                             enable_checkpointing=False, enable_model_summary=False,
                             enable_progress_bar=progress, callbacks=[rows])
        trainer.predict(loaded.model, dataloaders=loader, return_predictions=False)
    return rows


def predict_paths(
    model_dir_or_ckpt: str | Path | LoadedClassifier,
    paths: Sequence[str | Path],
    batch_size: int = 32,
    threshold: float | None = None,
    num_workers: int = 0,
    device: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Predict ``paths``; return ``filename,prediction,confidence,prob_clear,error``.

    ``filename`` is each path as given. ``threshold`` overrides the model's embedded one.
    """
    loaded = model_dir_or_ckpt if isinstance(model_dir_or_ckpt, LoadedClassifier) \
        else load_classifier(model_dir_or_ckpt)
    threshold = loaded.threshold if threshold is None else check_unit("threshold", threshold)
    paths = [Path(p) for p in paths]
    scored = score_images(loaded, paths, batch_size, num_workers, device, progress)
    rows = []
    for i, path in enumerate(paths):
        if i in scored.errors:
            rows.append((str(path), UNREADABLE, float("nan"), float("nan"), scored.errors[i]))
        else:
            prob = scored.prob_clear[i]
            (prediction, confidence), = label_rows([prob], threshold)
            rows.append((str(path), prediction, confidence, prob, ""))
    return pd.DataFrame(rows, columns=PREDICTION_COLUMNS)


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
    n_images: int
    n_clear: int
    n_cloudy: int
    n_unreadable: int
    threshold: float
    threshold_source: str

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
        batch_size: int = 32, num_workers: int = 0, device: str | None = None) -> PredictSummary:
    """What ``predict.py`` does: predict every image under ``input_spec`` into ``output``.

    Settings and the output's folder are checked before any image is read."""
    batch_size, num_workers = check_run_settings(output, threshold, batch_size, num_workers)
    files, base = resolve_inputs(input_spec)
    if not files:
        raise FileNotFoundError(f"input={input_spec}: the folder holds no images "
                                f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    loaded = load_classifier(checkpoint)
    used_threshold = loaded.threshold if threshold is None else float(threshold)
    source = loaded.threshold_source if threshold is None else "threshold= on the command line"
    log.info("predict: %d images with %s, threshold %.3f (%s)", len(files), checkpoint,
             used_threshold, source)
    table = predict_paths(loaded, files, batch_size, used_threshold, num_workers, device,
                          progress=True)
    if base is not None:
        table["filename"] = [str(Path(f).relative_to(base)) for f in files]
    write_csv(output, table)
    unreadable = table[table["prediction"] == UNREADABLE]
    for _, row in unreadable.iterrows():
        log.warning("predict: unreadable image %s: %s", row["filename"], row["error"])
    return PredictSummary(
        output=Path(output), n_images=len(table),
        n_clear=int((table["prediction"] == "clear").sum()),
        n_cloudy=int((table["prediction"] == "cloudy").sum()),
        n_unreadable=len(unreadable), threshold=used_threshold, threshold_source=source,
    )
