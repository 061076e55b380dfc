"""Benchmark: extracting N frames of a night-length timelapse, this code vs plain ffmpeg.

Makes (once, cached) a night-like video: 8640 frames (12 h at one frame per 5 s), 1280x720,
H.264 yuv420p 30 fps GOP 120 crf 27, grayscale stars, drifting clouds, sensor noise and the
RMS text bar. Then for each N (20, 100, 500) it extracts the same N random frames to
grayscale PNG by
  ours       data_prep.video.frames_to_png.extract_video: one demux pass, then only the
             GOPs that hold the frames (PyAV), PNG written atomically;
  per-frame  one ffmpeg process per frame (``-ss t -i V -frames:v 1``);
  select     one ffmpeg pass with ``select='eq(n,a)+eq(n,b)+...'`` (the reference approach;
             ffmpeg's expression parser gives up somewhere above 100 terms);
and times a bare full decode (``ffmpeg -i V -f null -``) as the floor for a whole pass.
Both sides write PNG at the same zlib level (``--png-level``). Prints seconds and ratios.

    python bench/extract.py                       # the full benchmark
    python bench/extract.py --frames 2400 --counts 20,100 --per-frame-max 100   # quicker
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_prep.video.frames_to_png import ImageOptions, VideoJob, extract_video
from data_prep.video.timelapse_encode import encode_timelapse

FPS = 30


def night_frames(n: int, width: int, height: int, seed: int = 0):
    """Night-sky-like gray frames: slowly turning stars, drifting clouds, noise, text bar."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    glow = 18 + 14 * (yy / height) + 6 * (xx / width)
    n_stars = 1500
    sx, sy = rng.uniform(0, width, n_stars), rng.uniform(0, height * 0.85, n_stars)
    flux = 200 * 10 ** (-0.4 * rng.uniform(0, 4, n_stars))
    cloud = rng.normal(0, 1, (height // 16 + 2, width // 16 + 2)).astype(np.float32)
    for _ in range(3):  # smooth the coarse noise into cloud banks
        cloud = (cloud + np.roll(cloud, 1, 0) + np.roll(cloud, 1, 1) + np.roll(cloud, -1, 0)
                 + np.roll(cloud, -1, 1)) / 5
    cloud = np.kron(cloud, np.ones((16, 16), np.float32))
    noise_pool = [rng.normal(0, 2.0, (height, width)).astype(np.float32) for _ in range(8)]
    cx, cy = width / 2, height * 1.2
    for i in range(n):
        angle = i * 2e-4  # sidereal-like turn about a pole below the frame
        c, s = np.cos(angle), np.sin(angle)
        x = (cx + (sx - cx) * c - (sy - cy) * s).astype(int)
        y = (cy + (sx - cx) * s + (sy - cy) * c).astype(int)
        ok = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        image = glow.copy()
        np.add.at(image, (y[ok], x[ok]), flux[ok])
        shift = (i * 3) % cloud.shape[1]
        opacity = np.clip(np.roll(cloud, shift, axis=1)[:height, :width] * 2.5 + 0.3
                          + 0.4 * np.sin(i / 900), 0, 1)
        image = image * (1 - opacity) + 45 * opacity + noise_pool[i % len(noise_pool)]
        image[height - 24:, : width // 4] = 0
        image[height - 18:height - 6, 6: width // 4 - 6: 2] = 255  # a text-like bar
        yield np.clip(image, 0, 255).astype(np.uint8)


def cached_video(cache: Path, frames: int, width: int, height: int, gop: int, crf: int) -> Path:
    path = cache / f"night_{frames}f_{width}x{height}_gop{gop}_crf{crf}.mp4"
    if not path.exists():
        print(f"encoding {path.name} once (cached for later runs) ...", flush=True)
        started = time.monotonic()
        encode_timelapse(path, night_frames(frames, width, height), fps=FPS, gop=gop, crf=crf)
        print(f"  {time.monotonic() - started:.1f} s, {path.stat().st_size / 1e6:.1f} MB")
    return path


def timed(fn, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def run_ours(video: Path, frames: int, targets: list[int], out: Path, level: int) -> None:
    job = VideoJob(str(video), "(no map in the benchmark)", frames,
                   tuple((i, f"{i:05d}.png") for i in targets))
    result = extract_video(job, ImageOptions(out_dir=str(out), png_compress_level=level))
    if result.failures or result.written != len(targets):
        raise RuntimeError(f"ours failed: {result.failures}")


def run_per_frame(ffmpeg: str, video: Path, targets: list[int], out: Path, level: int) -> None:
    for i in targets:
        subprocess.run([ffmpeg, "-v", "error", "-ss", f"{i / FPS:.6f}", "-i", str(video),
                        "-frames:v", "1", "-pix_fmt", "gray", "-compression_level", str(level),
                        "-y", str(out / f"{i:05d}.png")], check=True, capture_output=True)


def run_select(ffmpeg: str, video: Path, targets: list[int], out: Path, level: int) -> str:
    """'' on success, else the reason ffmpeg gave."""
    expression = "+".join(f"eq(n\\,{i})" for i in targets)
    result = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(video), "-vf", f"select='{expression}'",
         "-fps_mode", "passthrough", "-pix_fmt", "gray", "-compression_level", str(level),
         "-y", str(out / "%05d.png")], check=False, capture_output=True, text=True)
    if result.returncode != 0:
        return (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
    written = len(list(out.glob("*.png")))
    return "" if written == len(targets) else f"wrote {written} of {len(targets)} frames"


def run_bare(ffmpeg: str, video: Path) -> None:
    subprocess.run([ffmpeg, "-v", "error", "-i", str(video), "-f", "null", "-"], check=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8640)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--gop", type=int, default=120)
    parser.add_argument("--crf", type=int, default=27)
    parser.add_argument("--counts", default="20,100,500", help="frames to extract, comma list")
    parser.add_argument("--per-frame-max", type=int, default=500,
                        help="skip the one-process-per-frame method above this many frames")
    parser.add_argument("--png-level", type=int, default=1, help="zlib level for every method")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path,
                        default=Path.home() / ".cache" / "gmn-weather" / "bench")
    args = parser.parse_args(argv)

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    video = cached_video(args.cache_dir, args.frames, args.width, args.height, args.gop, args.crf)
    counts = [int(c) for c in args.counts.split(",")]
    rng = np.random.default_rng(args.seed)
    bare_s, _ = timed(run_bare, ffmpeg, video)
    print(f"video: {video.name} ({video.stat().st_size / 1e6:.1f} MB); "
          f"bare full decode (ffmpeg -f null): {bare_s:.2f} s")
    header = (f"{'N':>5} {'ours s':>8} {'per-frame s':>12} {'select s':>9} "
              f"{'per-frame/ours':>15} {'select/ours':>12} {'ours/bare':>10}")
    print(header)
    notes = []
    for n in counts:
        targets = sorted(int(i) for i in rng.choice(args.frames, size=n, replace=False))
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            dirs = {name: tmp / name for name in ("ours", "per_frame", "select")}
            for d in dirs.values():
                d.mkdir()
            ours_s, _ = timed(run_ours, video, args.frames, targets, dirs["ours"],
                              args.png_level)
            per_frame_s = None
            if n <= args.per_frame_max:
                per_frame_s, _ = timed(run_per_frame, ffmpeg, video, targets,
                                       dirs["per_frame"], args.png_level)
            select_s, select_error = timed(run_select, ffmpeg, video, targets,
                                           dirs["select"], args.png_level)
            if select_error:
                notes.append(f"select pass for {n} frames failed: {select_error[:160]}")
            shutil.rmtree(tmp, ignore_errors=True)

        def fmt(seconds):
            return f"{seconds:.2f}" if seconds is not None else "-"

        def ratio(a, b):
            return f"{a / b:.2f}x" if a is not None and b else "-"

        select_shown = None if select_error else select_s
        print(f"{n:>5} {ours_s:>8.2f} {fmt(per_frame_s):>12} "
              f"{(fmt(select_shown) if not select_error else 'FAILED'):>9} "
              f"{ratio(per_frame_s, ours_s):>15} {ratio(select_shown, ours_s):>12} "
              f"{ratio(ours_s, bare_s):>10}", flush=True)
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
