"""Benchmark: night-to-day throughput against the stand-in Gemini server (not a test).

The stand-in (tests/fixtures_gemini.py) answers every image request after ``--latency``
seconds (1 s by default) and star checks at once. We run the real ``night_to_day.run`` with
the real google-genai client and report images per minute for

- this code, concurrency-bound: ``--concurrency`` in flight, no rpm limit;
- this code, rpm-bound: ``--rpm`` requests per minute (every request counts, so an image
  costs two: the day request and the star check);
- a sequential client (the same protocol, one request at a time, as the reference did),

each timed from the call of ``run(cfg)`` to its return (the SDK import, ~1 s once per process,
is done before), with its anchor ``min(rpm / requests_per_image, 60 * concurrency / latency)`` images per
minute and the ratio to it (goal >= 0.9), plus lost images (goal 0): images neither done nor
reported, or done without their PNG.

    .venv/bin/python bench/night_to_day.py            # ~1 minute
    .venv/bin/python bench/night_to_day.py --images 60 --rpm 120
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from fixtures_gemini import (
    GeminiStandIn,
    gemini_overrides,
    make_night_image,
    prep_config,
)

from data_prep import night_to_day
from data_prep.converters import gemini  # noqa: F401 (imported once, before any timing)
from data_prep.converters.night_to_day_manifest import read_manifest

KEY = "bench-key-not-secret"


def measure(label: str, images: int, concurrency: int, rpm: float | None, latency: float,
            size: tuple[int, int]) -> dict:
    with tempfile.TemporaryDirectory(prefix="n2d-bench-") as tmp:
        data = Path(tmp) / "data"
        for i in range(images):
            name = f"CAWEC2_20251106_{220000 + i // 60 * 100 + i % 60:06d}_000.png"
            make_night_image(data / "extracted_night" / name, 1 + i % 90, size=size)
        with GeminiStandIn(KEY, image_delay_s=latency) as server:
            cfg = prep_config(gemini_overrides(
                data, server, concurrency=concurrency,
                rpm="null" if rpm is None else rpm, request_timeout_s=60))
            started = time.perf_counter()
            summary = night_to_day.run(cfg)
            elapsed = time.perf_counter() - started
            requests = len(server.requests)
        rows = read_manifest(data / "night_to_day_manifest.csv")
        done = {n for n, r in rows.items() if r.status == "done"}
        pngs = {p.name for p in (data / "converted_day").glob("*.png")}
    per_image = requests / images
    anchor = 60.0 * concurrency / latency
    if rpm:
        anchor = min(anchor, rpm / per_image)
    rate = images / elapsed * 60.0
    lost = images - len(rows) + len(done - pngs)
    return {"label": label, "images": images, "concurrency": concurrency,
            "rpm": rpm or "-", "seconds": elapsed, "requests": requests,
            "images_per_min": rate, "anchor": anchor, "ratio": rate / anchor,
            "done": summary.counts.get("done", 0), "lost": lost}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per image request")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--images", type=int, default=120, help="for the concurrency-bound run")
    parser.add_argument("--rpm", type=float, default=240)
    parser.add_argument("--rpm-images", type=int, default=40, help="for the rpm-bound run")
    parser.add_argument("--sequential-images", type=int, default=6)
    parser.add_argument("--size", default="160x90", help="frame size WxH")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    os.environ["GEMINI_API_KEY"] = KEY
    os.environ.pop("GOOGLE_API_KEY", None)
    logging.basicConfig(level=logging.WARNING)

    results = [
        measure("concurrent (concurrency-bound)", args.images, args.concurrency, None,
                args.latency, size),
        measure("concurrent (rpm-bound)", args.rpm_images, args.concurrency, args.rpm,
                args.latency, size),
        measure("sequential client", args.sequential_images, 1, None, args.latency, size),
    ]
    print(f"stand-in latency {args.latency:.1f} s per image request, star check immediate; "
          f"frames {size[0]}x{size[1]}; {os.cpu_count()} CPUs")
    header = (f"{'run':32} {'images':>6} {'conc':>4} {'rpm':>5} {'req':>5} {'sec':>6} "
              f"{'img/min':>8} {'anchor':>7} {'ratio':>6} {'lost':>4}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['label']:32} {r['images']:>6} {r['concurrency']:>4} {r['rpm']!s:>5} "
              f"{r['requests']:>5} {r['seconds']:>6.1f} {r['images_per_min']:>8.1f} "
              f"{r['anchor']:>7.1f} {r['ratio']:>6.2f} {r['lost']:>4}")
    speedup = results[0]["images_per_min"] / results[2]["images_per_min"]
    print(f"concurrent / sequential: {speedup:.1f}x")
    ok = all(r["ratio"] >= 0.9 and r["lost"] == 0 for r in results[:2])
    print("goal (ratio >= 0.9, zero lost): " + ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
