"""The torch backend of ``predict.py``: the trained model's ``predict_step`` on image files.

Files are decoded to the network's uint8 input in loader worker processes
(:func:`gmn_weather.inputs.decode.network_pixels`), batched, moved to the device (pinned,
non-blocking on CUDA) and scored by :meth:`SkyClassifier.predict_step` under
``torch.inference_mode()`` with the weights in channels-last layout (faster for
convolutions on CUDA and on x86 CPUs). A plain loop rather than ``Trainer.predict``: nothing
to log, no progress bar, and no per-batch Lightning work in the way of the model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from gmn_weather.export import LoadedClassifier, load_classifier
from gmn_weather.inputs.decode import ImageDecodeError, network_pixels
from gmn_weather.predict import BatchScores, PredictInputError


class ImageFiles(Dataset):
    """``{"image" (uint8), "index"}`` per file, or ``{"index", "error"}`` for an unreadable one."""

    def __init__(self, paths: Sequence[Path], spec: Mapping[str, Any]):
        self.paths, self.spec = list(paths), dict(spec)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        try:
            return {"image": torch.from_numpy(network_pixels(self.paths[index], self.spec)),
                    "index": index}
        except ImageDecodeError as exc:
            return {"index": index, "error": exc.reason}


def collate_readable(items: list[dict]) -> dict:
    """A batch of the readable images (``image`` None when there is none) and the
    ``errors`` (index, reason) of the others."""
    good = [item for item in items if "error" not in item]
    return {"image": torch.stack([item["image"] for item in good]) if good else None,
            "index": torch.tensor([item["index"] for item in good], dtype=torch.long),
            "errors": [(item["index"], item["error"]) for item in items if "error" in item]}


def torch_device(device: str | None) -> torch.device:
    """``device=`` as a torch device (null: cuda when available, else cpu)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        wanted = torch.device(device)
    except RuntimeError:
        raise PredictInputError(f"device={device!r}: expected cpu, cuda or cuda:N") from None
    if wanted.type == "cuda" and not torch.cuda.is_available():
        raise PredictInputError(f"device={device}: no CUDA device on this machine; "
                                "use device=cpu (or leave device unset)")
    if wanted.type not in ("cpu", "cuda"):
        raise PredictInputError(f"device={device!r}: expected cpu, cuda or cuda:N")
    return wanted


class TorchScorer:
    """A loaded classifier on one device, scoring files batch by batch."""

    def __init__(self, loaded: LoadedClassifier, device: torch.device):
        self.loaded, self.device = loaded, device
        self.model = loaded.model.to(device).eval()
        self.model.on_predict_start()  # as Trainer.predict does for the out-of-fold scores
        self.threshold, self.threshold_source = loaded.threshold, loaded.threshold_source

    @classmethod
    def load(cls, checkpoint: str | Path, device: str | None = None) -> TorchScorer:
        return cls(load_classifier(checkpoint), torch_device(device))

    def batches(self, paths: Sequence[Path], batch_size: int,
                num_workers: int) -> Iterator[BatchScores]:
        cuda = self.device.type == "cuda"
        loader = DataLoader(ImageFiles(paths, self.loaded.preprocessing), batch_size=batch_size,
                            shuffle=False, num_workers=min(num_workers, os.cpu_count() or 1),
                            collate_fn=collate_readable, pin_memory=cuda)
        with torch.inference_mode():
            for batch in loader:
                if batch["image"] is not None:
                    batch["image"] = batch["image"].to(self.device, non_blocking=cuda)
                scores = self.model.predict_step(batch)
                yield BatchScores(scores["index"].tolist(), scores["prob_clear"].cpu().tolist(),
                                  batch["errors"])
