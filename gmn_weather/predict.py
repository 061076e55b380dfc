"""Batched inference with a trained classifier: images in, ``filename,prediction,...`` out.

:func:`predict_paths` is the library call other code uses; :func:`run` is what
``predict.py`` does (resolve ``input=`` to image files, predict, write ``output=``).
Unreadable images get a row with ``prediction=unreadable`` and the reason in ``error``;
they are counted in the summary and never scored as if they were an image.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from gmn_base.atomic import write_csv
from gmn_weather.export import LoadedClassifier, load_classifier
from gmn_weather.transforms_factory import eval_transform, load_rgb

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
PREDICTION_COLUMNS = ["filename", "prediction", "confidence", "prob_clear", "error"]
UNREADABLE = "unreadable"


class _Images(Dataset):
    def __init__(self, paths: Sequence[Path], transform):
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        try:
            return self.transform(load_rgb(self.paths[index])), index, ""
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for broken files
            return None, index, f"{type(exc).__name__}: {exc}"


def _collate(items):
    good = [(t, i) for t, i, _ in items if t is not None]
    images = torch.stack([t for t, _ in good]) if good else None
    return images, [i for _, i in good], [(i, e) for t, i, e in items if t is None]


class PredictInputError(ValueError):
    """A predict.py setting that cannot be used; the message names it."""


def label_rows(prob_clear: Iterable[float], threshold: float) -> list[tuple[str, float]]:
    """(prediction, confidence) per probability; confidence is the predicted class's probability."""
    rows = []
    for p in prob_clear:
        rows.append(("clear", p) if p >= threshold else ("cloudy", 1.0 - p))
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
    threshold = loaded.threshold if threshold is None else float(threshold)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = loaded.model.to(device).eval()
    paths = [Path(p) for p in paths]
    loader = DataLoader(_Images(paths, eval_transform(loaded.preprocessing)),
                        batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=_collate)
    prob: dict[int, float] = {}
    errors: dict[int, str] = {}
    with torch.no_grad():
        for images, indices, failed in tqdm(loader, desc="predict", unit="batch",
                                            disable=not progress):
            errors.update(failed)
            if images is not None:
                values = torch.sigmoid(model(images.to(device))).float().cpu().tolist()
                prob.update(zip(indices, values))
    rows = []
    for i, path in enumerate(paths):
        if i in errors:
            rows.append((str(path), UNREADABLE, float("nan"), float("nan"), errors[i]))
        else:
            (prediction, confidence), = label_rows([prob[i]], threshold)
            rows.append((str(path), prediction, confidence, prob[i], ""))
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


def run(checkpoint: str, input_spec: str, output: str, threshold: float | None = None,
        batch_size: int = 32, num_workers: int = 0, device: str | None = None) -> PredictSummary:
    """What ``predict.py`` does: predict every image under ``input_spec`` into ``output``."""
    if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
        raise PredictInputError(f"threshold={threshold}: a threshold on prob_clear lies in "
                                f"[0, 1] (null uses the model's own)")
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
