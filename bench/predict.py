"""Benchmark: predict.py against the model's own forward rate, and the ONNX files a station
runs against eager torch.

Makes (once, kept in --workdir) --frames synthetic 1280x720 RGB PNG frames (those of
bench/train_input.py) and a resnet18 final model at [216, 384] (random weights; speed only),
exported as predict.py reads it: model.ckpt, model.onnx, model.int8.onnx. Then prints
  model          predict_step on uint8 tensors already decoded (normalise, forward,
                 sigmoid; channels-last, inference_mode): the model's bound, batch --batch
                 (model rates are the best of 3 rounds: the least disturbed by other work);
  predict.py     gmn_weather.predict.run on the PNG folder (decode in --workers processes,
                 batches, CSV streamed), img/s and its ratio to the model's bound (goal >= 0.9);
  per batch size (1 and --batch), on uint8 tensors: eager torch (predict_step), onnxruntime
                 fp32, onnxruntime int8 static (model.int8.onnx) and int8 dynamic (for the
                 record: why static was chosen), with their ratios to eager torch (goal:
                 int8 >= 2x eager torch at batch 1 on CPU).

With --final DIR --images DIR it measures on a trained final model instead (e.g. the demo's
demo_outputs/demo/final with export.int8=true and demo_data/extracted_day) and adds how often
int8 and fp32 ONNX take the same clear/cloudy decision as torch.

    python bench/predict.py
    python bench/predict.py --frames 64 --repeats 5              # quicker
    python bench/predict.py --final demo_outputs/demo/final --images demo_data/extracted_day
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from train_input import write_frames

from gmn_weather.experiment import ExperimentDir
from gmn_weather.export import export_final, load_classifier
from gmn_weather.inputs.decode import network_pixels
from gmn_weather.model import SkyClassifier
from gmn_weather.predict import predict_paths, run
from gmn_weather.preprocessing import resolve_preprocessing

SIZE = [216, 384]


def bench_final(workdir: Path, images: list[Path]) -> Path:
    """A resnet18 final model at SIZE with both ONNX files (random weights)."""
    experiment = ExperimentDir(workdir / "experiment")
    if experiment.final.model_int8_onnx.is_file():
        return experiment.final.path
    spec = resolve_preprocessing({"input": "whole_frame"}, SIZE)
    model = SkyClassifier("resnet18", pretrained=False, preprocessing=spec).eval()
    sample = np.stack([network_pixels(p, spec) for p in images[:32]])
    export_final(experiment, model, "bench", {"n_images": 0}, {"onnx": True, "int8": True}, sample)
    return experiment.final.path


def timed(fn, repeats: int, n_images: int, rounds: int = 3) -> float:
    """img/s of the best of ``rounds`` rounds of ``repeats`` calls (after a warm-up): on a
    shared machine the best round is the one least disturbed by other work."""
    fn()
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = max(best, repeats * n_images / (time.perf_counter() - started))
    return best


def model_rates(final: Path, batch: int, repeats: int, dynamic: Path | None) -> dict:
    """img/s on uint8 tensors: eager torch and onnxruntime files, at this batch size."""
    import onnxruntime

    loaded = load_classifier(final)
    model = loaded.model.eval()
    model.on_predict_start()
    h, w = loaded.preprocessing["input_size"]
    pixels = np.random.default_rng(0).integers(0, 255, (batch, 3, h, w), dtype=np.uint8)
    tensor = torch.from_numpy(pixels)

    def torch_step():
        with torch.inference_mode():
            model.predict_step({"image": tensor, "index": torch.arange(batch)})

    rates = {"eager torch": timed(torch_step, repeats, batch)}
    files = {"onnx fp32": final / "model.onnx", "onnx int8 static": final / "model.int8.onnx"}
    if dynamic is not None:
        files["onnx int8 dynamic"] = dynamic
    for name, path in files.items():
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        rates[name] = timed(lambda s=session: s.run(None, {"image": pixels}), repeats, batch)
    return rates


def dynamic_int8(final: Path, scratch: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared, out = scratch / "prepared.onnx", scratch / "dynamic.onnx"
    quant_pre_process(str(final / "model.onnx"), str(prepared))
    quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8)
    return out


def agreement(final: Path, images: list[Path]) -> None:
    reference = predict_paths(final, images, backend="torch")
    for label, kwargs in (("onnx fp32", {}), ("onnx int8", {"int8": True})):
        other = predict_paths(final, images, backend="onnx", **kwargs)
        same = (other["prediction"] == reference["prediction"]).mean()
        diff = np.abs(other["prob_clear"] - reference["prob_clear"]).max()
        print(f"{label:<10} same decision as torch on {100 * same:.1f} % of {len(images)} "
              f"images (max |prob_clear difference| {diff:.2e})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="predict.py num_workers")
    parser.add_argument("--repeats", type=int, default=10, help="timed batches per rate")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gmn_bench_predict"))
    parser.add_argument("--final", type=Path, help="a trained final/ folder (with ONNX files)")
    parser.add_argument("--images", type=Path, help="its images (with --final)")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start, "
          f"torch {torch.__version__}, {torch.get_num_threads()} torch threads")
    if args.final:
        final, folder = args.final, args.images
        images = sorted(p for p in folder.rglob("*.png"))
    else:
        folder = args.workdir / "frames"
        table = write_frames(folder, args.frames)
        images = [folder / n for n in table["image_filename"]]
        final = bench_final(args.workdir, images)

    bound = model_rates(final, args.batch, args.repeats, None)["eager torch"]
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        summary = run(str(final), str(folder), str(Path(scratch) / "p.csv"),
                      batch_size=args.batch, num_workers=args.workers)
        predicted = summary.n_images / (time.perf_counter() - started)
        print(f"\nmodel (predict_step on decoded uint8, batch {args.batch}): {bound:.1f} img/s")
        print(f"predict.py on {summary.n_images} PNGs: {predicted:.1f} img/s = "
              f"{predicted / bound:.2f}x the model's bound (goal >= 0.9)")
        dynamic = dynamic_int8(final, Path(scratch))
        for batch in (1, args.batch):
            rates = model_rates(final, batch, args.repeats * (4 if batch == 1 else 1), dynamic)
            print(f"\nbatch {batch}:")
            for name, value in rates.items():
                print(f"  {name:<18} {value:8.1f} img/s  {value / rates['eager torch']:5.2f}x eager torch")
    print("goal: onnx int8 >= 2x eager torch at batch 1")
    if args.final:
        print()
        agreement(final, images)
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
