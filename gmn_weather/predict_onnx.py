"""The ONNX backend of ``predict.py`` (``backend=onnx``): onnxruntime, no torch at all.

What a station runs: ``final/model.onnx`` (``int8=true``: ``model.int8.onnx``) with the input
spec and threshold of ``final/model.json``. Files are decoded to the network's uint8 input by
:func:`gmn_weather.inputs.decode.network_pixels` (the decoder training used) in a pool of
worker processes, in order, and scored a batch at a time; the graph normalises the pixels
itself (:mod:`gmn_weather.onnx_export`). Neither this module nor what it imports needs torch.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from gmn_weather.experiment import FinalDir
from gmn_weather.inputs.decode import ImageDecodeError, network_pixels
from gmn_weather.model_card import ONNX_INPUT, CheckpointError, card_threshold, read_card
from gmn_weather.predict import BatchScores, PredictInputError


def _decode(spec: Mapping[str, Any], path: Path) -> tuple[np.ndarray | None, str | None]:
    try:
        return network_pixels(path, spec), None
    except ImageDecodeError as exc:
        return None, exc.reason


def _onnx_file(checkpoint: Path, card: dict, int8: bool) -> Path:
    onnx = card.get("onnx") or {}
    entry = onnx.get("int8") if int8 else onnx
    if not entry:
        what = "model.int8.onnx (export.int8=true)" if int8 else "model.onnx"
        raise PredictInputError(f"checkpoint={checkpoint}: the final model has no {what}; "
                                "train it again with python train.py mode=final"
                                f"{' export.int8=true' if int8 else ''}, or use backend=torch")
    return checkpoint / entry["file"]


@dataclass
class OnnxScorer:
    """An onnxruntime session with the model card it came with."""

    session: Any
    card: dict
    threshold: float
    threshold_source: str

    @classmethod
    def load(cls, checkpoint: str | Path, int8: bool = False,
             device: str | None = None) -> OnnxScorer:
        import onnxruntime

        path = Path(checkpoint)
        if path.suffix == ".onnx":  # a file: its model.json is beside it
            final, onnx_path = FinalDir(path.parent), path
            card = read_card(final)
        elif path.is_dir():
            final = FinalDir(path)
            card = read_card(final)
            onnx_path = _onnx_file(path, card, int8)
        else:
            raise FileNotFoundError(f"checkpoint={path}: give a final/ folder written by "
                                    "python train.py mode=final, or its model.onnx")
        if not onnx_path.is_file():
            raise FileNotFoundError(f"checkpoint={path}: {onnx_path} is missing")
        if device not in (None, "cpu"):
            raise PredictInputError(f"device={device}: backend=onnx runs on the CPU here; "
                                    "use backend=torch for a GPU")
        try:
            session = onnxruntime.InferenceSession(str(onnx_path),
                                                   providers=["CPUExecutionProvider"])
        except RuntimeError as exc:  # onnxruntime's load errors (InvalidProtobuf, Fail)
            raise CheckpointError(f"{onnx_path}: not a readable ONNX model "
                                  f"({str(exc).splitlines()[0]})") from exc
        threshold, source = card_threshold(card, final.path)
        return cls(session, card, threshold, source)

    def batches(self, paths: Sequence[Path], batch_size: int,
                num_workers: int) -> Iterator[BatchScores]:
        decode = partial(_decode, self.card["input"])
        workers = min(num_workers, os.cpu_count() or 1)
        if workers > 0:
            with multiprocessing.get_context().Pool(workers) as pool:
                yield from self._score(pool.imap(decode, paths, chunksize=4), batch_size)
        else:
            yield from self._score(map(decode, paths), batch_size)

    def _score(self, decoded: Iterator[tuple], batch_size: int) -> Iterator[BatchScores]:
        numbered = enumerate(decoded)
        while chunk := list(islice(numbered, batch_size)):
            good = [(i, pixels) for i, (pixels, _) in chunk if pixels is not None]
            errors = [(i, error) for i, (pixels, error) in chunk if pixels is None]
            probs: list[float] = []
            if good:
                images = np.stack([pixels for _, pixels in good])
                probs = self.session.run(None, {ONNX_INPUT: images})[0].tolist()
            yield BatchScores([i for i, _ in good], probs, errors)
