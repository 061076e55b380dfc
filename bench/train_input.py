"""Benchmark: the training loader (input cache + uint8 augmentation) against the reference
pipeline's loader and a pure read of the cache.

Makes (once, kept in --workdir) 512 synthetic 1280x720 RGB PNG frames, then measures the
steady-state epoch rate (img/s: epochs after the first, batch 32, shuffled) of
  light, strong   the project's training loader (GMNDataModule, augmentation=light|strong,
                  data.image_size [216, 384]): frames from the input cache, v2 transforms on
                  uint8 tensors in the loader workers, then the batch normalised to float
                  as the model does before its forward pass;
  reference       the reference pipeline's loader: PIL decode of every PNG every epoch,
                  Resize 256, RandomCrop 224, flip, rotation 15, colour jitter 0.2, ToTensor,
                  Normalize (torchvision on PIL images);
  cache read      the cache's frames batched and normalised, no augmentation (the floor
                  of any loader reading this cache);
all with --workers loader processes (2). Prints each rate and its ratios. Goals: light and
strong >= 10x reference and >= 0.8x the cache read.

With --gpu (a CUDA device; or --device cpu to try the code path) it also reports resnet18
training img/s at [216, 384] fed by the light loader, as a fraction of the same training
step on synthetic tensors already on the device (goal >= 70 %).

    python bench/train_input.py
    python bench/train_input.py --frames 128 --epochs 2        # quicker
    python bench/train_input.py --gpu
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gmn_weather.datamodule import GMNDataModule
from gmn_weather.inputs.cache import InputCache
from gmn_weather.preprocessing import resolve_preprocessing
from gmn_weather.transforms_factory import InputNormalization

SIZE = [216, 384]
BATCH = 32


def write_frames(folder: Path, n: int, seed: int = 0) -> pd.DataFrame:
    """Sky-like 1280x720 RGB frames (gradient, stars or cloud, noise) and their labels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:720, 0:1280].astype(np.float32)
    rows = []
    for i in range(n):
        name = f"XX0001_20250101_{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}_000.png"
        rows.append({"image_filename": name, "label": "clear" if i % 2 else "cloudy"})
        if (folder / name).exists():
            continue
        sky = 60 + 80 * yy / 720 + 20 * np.sin(xx / 200 + i)
        if i % 2:
            ys, xs = rng.integers(0, 720, 400), rng.integers(0, 1280, 400)
            sky[ys, xs] = 255
        else:
            sky += 40 * np.sin(xx / 90 + yy / 70 + i)
        rgb = np.stack([sky, sky * 0.9 + 10, sky * 1.1], -1) + rng.normal(0, 3, (720, 1280, 1))
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(folder / name)
    return pd.DataFrame(rows)


def rate(loader, epochs: int, normalize=None) -> float:
    """img/s over the epochs after the first (worker start-up and warm caches excluded)."""
    counted, started = 0, None
    for epoch in range(epochs + 1):
        if epoch == 1:
            started = time.perf_counter()
        for batch in loader:
            images = batch["image"] if isinstance(batch, dict) else batch[0]
            if normalize is not None:
                images = normalize(images)
            if epoch >= 1:
                counted += len(images)
    return counted / (time.perf_counter() - started)


class ReferenceFrames(Dataset):
    """The reference pipeline's dataset: PIL open + convert + transform per item."""

    def __init__(self, paths, transform):
        self.paths, self.transform = paths, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB")), 0


class CacheRead(Dataset):
    def __init__(self, frames):
        self.frames = frames

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, i):
        return {"image": torch.from_numpy(self.frames.pixels(i))}


def loader(dataset, workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                      persistent_workers=workers > 0)


def augmentation(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "augmentation" / f"{name}.yaml"))


def project_loader(labels: Path, images: Path, cache: Path, name: str, workers: int):
    dm = GMNDataModule(str(labels), str(images), mode="final", image_size=SIZE,
                       batch_size=BATCH, num_workers=workers, augmentation=augmentation(name),
                       cache_dir=str(cache))
    dm.setup("fit")
    return dm


def gpu_fraction(dm: GMNDataModule, device: str, steps: int) -> tuple[float, float]:
    """(training img/s fed by the loader, img/s of the same step on device tensors)."""
    import timm

    net = timm.create_model("resnet18", num_classes=1).to(device).to(memory_format=torch.channels_last)
    normalize = InputNormalization(dm.preprocessing).to(device)
    optimizer = torch.optim.Adam(net.parameters(), 1e-4)

    def step(images, targets):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            net(normalize(images)).squeeze(1), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def timed(batches) -> float:
        n, started = 0, None
        for i, (images, targets) in enumerate(batches):
            if i == 3:  # warm-up steps excluded
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                started, n = time.perf_counter(), 0
            step(images, targets)
            n += len(images)
            if i >= steps + 3:
                break
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return n / (time.perf_counter() - started)

    def from_loader():
        while True:
            for batch in dm.train_dataloader():
                yield (batch["image"].to(device, non_blocking=True),
                       batch["target"].to(device, non_blocking=True))

    synthetic = (torch.randint(0, 255, (BATCH, 3, *SIZE), dtype=torch.uint8, device=device),
                 torch.ones(BATCH, device=device))
    pure = timed(iter(lambda: synthetic, None))
    return timed(from_loader()), pure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the first")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gmn_bench_train_input"))
    parser.add_argument("--gpu", action="store_true", help="also the training-step fraction")
    parser.add_argument("--device", default="cuda", help="device for --gpu (cpu to try it)")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps for --gpu")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start, "
          f"torch {torch.__version__}, {args.workers} loader workers")
    images = args.workdir / "frames"
    table = write_frames(images, args.frames)
    labels = args.workdir / "labels.csv"
    table.to_csv(labels, index=False)
    cache = args.workdir / "cache"
    shutil.rmtree(cache, ignore_errors=True)

    spec = resolve_preprocessing({"input": "whole_frame"}, SIZE)
    started = time.perf_counter()
    frames, report = InputCache(cache, spec["resize"], args.workers).build(
        [images / n for n in table["image_filename"]])
    build_s = time.perf_counter() - started
    print(f"cache build: {args.frames} frames in {build_s:.1f} s "
          f"({args.frames / build_s:.0f} img/s, {report.nbytes / 1e6:.0f} MB)")

    normalize = InputNormalization(spec)
    rates = {"cache read": rate(loader(CacheRead(frames), args.workers), args.epochs, normalize)}
    for name in ("light", "strong"):
        dm = project_loader(labels, images, cache, name, args.workers)
        rates[name] = rate(dm.train_dataloader(), args.epochs, normalize)
    reference = T.Compose([T.Resize(256), T.RandomCrop(224), T.RandomHorizontalFlip(),
                           T.RandomRotation(15), T.ColorJitter(0.2, 0.2, 0.2), T.ToTensor(),
                           T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    paths = [images / n for n in table["image_filename"]]
    rates["reference"] = rate(loader(ReferenceFrames(paths, reference), args.workers), args.epochs)

    print(f"\n{'loader':<12} {'img/s':>8} {'x reference':>12} {'x cache read':>13}")
    for name in ("light", "strong", "reference", "cache read"):
        print(f"{name:<12} {rates[name]:8.0f} {rates[name] / rates['reference']:12.1f} "
              f"{rates[name] / rates['cache read']:13.2f}")
    print("goals: light and strong >= 10x reference and >= 0.80x cache read")

    if args.gpu:
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            print("\n--gpu: no CUDA device here; the training-step fraction is unmeasured")
        else:
            dm = project_loader(labels, images, cache, "light", args.workers)
            fed, pure = gpu_fraction(dm, args.device, args.steps)
            print(f"\nresnet18 training at {SIZE[0]}x{SIZE[1]} on {args.device}: {fed:.0f} img/s "
                  f"fed by the light loader, {pure:.0f} img/s on device tensors: "
                  f"{100 * fed / pure:.0f} % (goal >= 70 %)")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
