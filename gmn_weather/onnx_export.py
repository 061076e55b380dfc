"""ONNX files of a final model, for stations: uint8 RGB pixels in, ``prob_clear`` out.

The graph is the whole inference step after decoding: :class:`InputNormalization` (the
spec's mean/std), the backbone, and the sigmoid. Input ``image``: uint8 [N, 3, H, W] at the
network's input size (N dynamic; decode, resize and crop with
:mod:`gmn_weather.inputs.decode`); output ``prob_clear``: float32 [N]. Exported with
PyTorch's ``torch.export``-based exporter at opset :data:`ONNX_OPSET`, one self-contained file.

``export.int8=true`` adds an int8 model made by onnxruntime's static quantisation (QDQ,
int8 weights per channel, uint8 activations, min-max ranges) calibrated on a sample of the
training frames. Static rather than dynamic: dynamic quantisation leaves convolutions'
activations in float and ran no faster than fp32 on a CPU here, static ran several times
faster at batch 1. The stem and depthwise convolutions stay float: on the demo's small
MobileNet they caused most flipped decisions, and they are a small share of the work
(``bench/predict.py``; measured agreement in docs/performance.md).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gmn_base.atomic import atomic_path
from gmn_weather.model_card import ONNX_INPUT as INPUT_NAME
from gmn_weather.model_card import ONNX_OUTPUT as OUTPUT_NAME
from gmn_weather.transforms_factory import InputNormalization

log = logging.getLogger(__name__)

ONNX_OPSET = 18
FP32_TOLERANCE = 1e-4  # largest |prob_clear| difference to torch accepted for the fp32 file


_CHATTY_LOGGERS = ("onnx_ir", "onnxscript", "onnxruntime")


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """The exporter's and quantiser's step-by-step INFO lines stay out of the job's log."""
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # notes on features the graph does not use
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class OnnxExportError(RuntimeError):
    """The model could not be exported to ONNX; the message says how to go on without it."""


class StationModel(torch.nn.Module):
    """uint8 pixels [N, 3, H, W] -> prob_clear [N]: what the ONNX file computes."""

    def __init__(self, net: torch.nn.Module, spec: Mapping[str, Any]):
        super().__init__()
        self.normalize, self.net = InputNormalization(spec), net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(self.normalize(image)).squeeze(1))


@dataclass
class Agreement:
    """How closely another model's prob_clear follows the reference on a set of frames."""

    n_images: int
    max_abs_difference: float
    same_decision: float  # share of frames on the same side of the threshold
    threshold: float


def agreement(reference: np.ndarray, other: np.ndarray, threshold: float) -> Agreement:
    same = np.mean((reference >= threshold) == (other >= threshold)) if len(reference) else 1.0
    return Agreement(len(reference), float(np.max(np.abs(reference - other), initial=0.0)),
                     float(same), float(threshold))


def station_model(net: torch.nn.Module, spec: Mapping[str, Any]) -> StationModel:
    """A CPU copy of ``net`` in evaluation mode, wrapped with its input normalisation."""
    return StationModel(copy.deepcopy(net).cpu().float(), spec).eval()


def torch_prob_clear(model: StationModel, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
    with torch.inference_mode():
        return np.concatenate([model(torch.from_numpy(pixels[i:i + batch_size])).numpy()
                               for i in range(0, len(pixels), batch_size)] or [np.zeros(0)])


def onnx_prob_clear(path: Path, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {INPUT_NAME: pixels[i:i + batch_size]})[0]
                           for i in range(0, len(pixels), batch_size)] or [np.zeros(0)])


def export_onnx(model: StationModel, input_size: list[int], path: Path) -> None:
    """Write ``model`` as one ONNX file with a dynamic batch dimension."""
    example = torch.zeros((2, 3, *input_size), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    try:
        with _quiet_exporters():
            program = torch.onnx.export(model, (example,), input_names=[INPUT_NAME],
                                        output_names=[OUTPUT_NAME], opset_version=ONNX_OPSET,
                                        dynamic_shapes={"image": {0: batch}}, dynamo=True,
                                        external_data=False, verbose=False)
    except Exception as exc:  # the exporter raises many types; the job must say which step
        raise OnnxExportError(f"ONNX export failed ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); "
                              "model.ckpt and model.json are written; set export.onnx=false "
                              "to train final models of this backbone without ONNX") from exc
    with atomic_path(path) as tmp:
        program.save(str(tmp), external_data=False)


class _Calibration:
    """onnxruntime's calibration reader over uint8 frames, eight at a time."""

    def __init__(self, pixels: np.ndarray):
        self._batches: Iterator[np.ndarray] = iter(np.array_split(pixels, max(1, len(pixels) // 8)))

    def get_next(self) -> dict | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def float_convolutions(model_path: Path) -> list[str]:
    """Convolutions left in float: the stem (it reads the image) and depthwise ones (few
    operations, but int8 errors there moved a small MobileNet's decisions the most)."""
    import onnx

    convs = [node for node in onnx.load(str(model_path)).graph.node if node.op_type == "Conv"]
    depthwise = [node.name for node in convs
                 if next((a.i for a in node.attribute if a.name == "group"), 1) > 1]
    return ([convs[0].name] if convs else []) + depthwise


def quantize_int8(fp32: Path, path: Path, calibration: np.ndarray) -> None:
    """Static int8 quantisation of ``fp32`` calibrated on ``calibration`` frames."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_Calibration, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory() as scratch, atomic_path(path) as tmp, _quiet_exporters():
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared))
        quantize_static(str(prepared), str(tmp), Reader(calibration),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv", "Gemm", "MatMul"],
                        nodes_to_exclude=float_convolutions(prepared))


def export_station_files(net: torch.nn.Module, spec: Mapping[str, Any], fp32_path: Path,
                         int8_path: Path | None, sample: np.ndarray, threshold: float) -> dict:
    """Write the fp32 (and int8) ONNX files; return their part of ``model.json``.

    ``sample``: uint8 network inputs of training frames, to check the fp32 file against
    torch and to calibrate the int8 one.
    """
    model = station_model(net, spec)
    export_onnx(model, list(sample.shape[2:]), fp32_path)
    reference = torch_prob_clear(model, sample)
    fp32 = agreement(reference, onnx_prob_clear(fp32_path, sample), threshold)
    if fp32.max_abs_difference > FP32_TOLERANCE:
        raise OnnxExportError(f"{fp32_path}: prob_clear differs from torch by "
                              f"{fp32.max_abs_difference:.2e} (> {FP32_TOLERANCE}); set "
                              "export.onnx=false to train without ONNX and report the backbone")
    card = {"file": fp32_path.name, "opset": ONNX_OPSET, "input": f"{INPUT_NAME}: uint8 RGB "
            "[N, 3, H, W] at input.input_size, decoded, resized and cropped as input says; "
            "normalisation is inside the graph", "output": f"{OUTPUT_NAME}: float32 [N]",
            "agreement_with_torch": asdict(fp32)}
    log.info("final model: wrote %s (opset %d; max |prob_clear - torch| %.1e on %d frames)",
             fp32_path, ONNX_OPSET, fp32.max_abs_difference, fp32.n_images)
    if int8_path is not None:
        quantize_int8(fp32_path, int8_path, sample)
        int8 = agreement(reference, onnx_prob_clear(int8_path, sample), threshold)
        card["int8"] = {"file": int8_path.name, "method": "onnxruntime static quantisation, "
                        "QDQ, int8 per-channel weights, uint8 activations (min-max); the "
                        "first and the depthwise convolutions stay float",
                        "calibration_images": len(sample),
                        "agreement_on_calibration_frames": asdict(int8)}
        log.info("final model: wrote %s (same decision as torch on %.1f %% of the %d "
                 "calibration frames)", int8_path, 100 * int8.same_decision, int8.n_images)
    return card
