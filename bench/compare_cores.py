"""Benchmark: the pure cores behind experiment comparison, against the budgets they are held to.

Two figures, each the best of ``--repeats`` runs:
  pooled     gmn_weather.pooled_metrics.pooled_metrics on a synthetic pooled OOF table of
             ``--images`` images (default 10 000) with 500 station-night groups and with one
             group per image (the bootstrap's worst case). Anchor: 1 s, the budget for
             pooling a large experiment; prints the ratio time / anchor (goal: well below 1).
  features   gmn_weather.baseline.features.image_features on a 1280x720 RGB night frame
             (noise, 300 stars). Anchor: decoding the same frame from PNG with Pillow, the
             cost every pass over the images pays anyway; prints the ratio features / decode.

    python bench/compare_cores.py [--images 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gmn_weather.baseline.features import image_features
from gmn_weather.pooled_metrics import pooled_metrics
from gmn_weather.thresholds import choose_operating_point

POOLED_ANCHOR_S = 1.0


def best_of(repeats: int, call) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def pooled_table(n_images: int, n_groups: int, rng) -> pd.DataFrame:
    group = rng.integers(0, n_groups, n_images)
    clear = rng.uniform(size=n_images) < 0.55
    score = np.clip(0.35 * clear + 0.65 * rng.uniform(size=n_images), 0, 1)
    return pd.DataFrame({"image_filename": [f"i{i}.png" for i in range(n_images)],
                         "label": np.where(clear, "clear", "cloudy"),
                         "group": group.astype(str), "fold": group % 3, "prob_clear": score})


def night_frame(rng) -> np.ndarray:
    frame = rng.normal(35, 3, (720, 1280))
    ys, xs = rng.integers(5, 715, 300), rng.integers(5, 1275, 300)
    frame[ys, xs] += 120
    return np.repeat(frame.clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for n_groups in (500, args.images):
        oof = pooled_table(args.images, n_groups, rng)
        point = choose_operating_point(None, oof["label"], oof["prob_clear"], 0.8)
        seconds = best_of(args.repeats,
                          lambda oof=oof, point=point: pooled_metrics(oof, point, "station-night"))
        print(f"pooled metrics, {args.images} images, {n_groups} groups: {seconds:.3f} s "
              f"(anchor {POOLED_ANCHOR_S:.0f} s, ratio {seconds / POOLED_ANCHOR_S:.2f})")
    frame = night_frame(rng)
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    png = buffer.getvalue()

    def decode():
        with Image.open(io.BytesIO(png)) as image:
            return np.asarray(image)

    decode_s = best_of(args.repeats, decode)
    features_s = best_of(args.repeats, lambda: image_features(frame))
    print(f"features of one 1280x720 RGB frame: {features_s:.3f} s; PNG decode (anchor) "
          f"{decode_s:.3f} s; ratio {features_s / decode_s:.2f}")


if __name__ == "__main__":
    main()
