"""Test videos whose frames say which frame they are, written with the project's encoder.

Each frame carries a 24-bit value in 8x3 black/white 16x16 blocks at its top-left corner
(frame index in the low 16 bits, a per-video tag above), which survives H.264 at crf 20, so
a test reads back from a PNG exactly which frame of which video it holds. Frames also carry
a white bar at bottom-left where RMS draws its UTC text, for the overlay-mask test.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import av
import numpy as np

from data_prep.video.timelapse_encode import encode_timelapse
from gmn_base.frame_times import format_frame_times
from gmn_base.interval_files import INTERVAL_FILE_NAME, interval_file_text
from gmn_base.night_folders import format_night_folder
from gmn_base.timelapse_names import format_timelapse_folder, frame_times_name, timelapse_video_name

BLOCK = 16
COLS, ROWS = 8, 3
ORIGIN = 8  # pixels from the top-left corner
WIDTH, HEIGHT = 160, 96


def index_frame(value: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A gray frame holding ``value`` (< 2**24) in blocks, plus the bottom-left text bar."""
    image = np.full((height, width), 40, dtype=np.uint8)
    for bit in range(COLS * ROWS):
        row, col = divmod(bit, COLS)
        y, x = ORIGIN + row * BLOCK, ORIGIN + col * BLOCK
        image[y:y + BLOCK, x:x + BLOCK] = 255 if value >> bit & 1 else 0
    image[height - 5:height - 1, 2:60] = 255  # where RMS writes its UTC text
    return image


def read_value(image: np.ndarray) -> int:
    """The value :func:`index_frame` wrote, read from the centre of each block."""
    if image.ndim == 3:
        image = image.mean(axis=2)
    value = 0
    for bit in range(COLS * ROWS):
        row, col = divmod(bit, COLS)
        y, x = ORIGIN + row * BLOCK + 4, ORIGIN + col * BLOCK + 4
        if image[y:y + 8, x:x + 8].mean() > 128:
            value |= 1 << bit
    return value


def read_frame(image: np.ndarray) -> tuple[int, int]:
    """(tag, frame index) held by a frame image."""
    value = read_value(image)
    return value >> 16, value & 0xFFFF


def write_index_timelapse(
    folder: Path,
    station: str,
    start: datetime,
    n_frames: int,
    *,
    tag: int = 0,
    interval_s: float = 5.0,
    gop: int = 120,
    map_frames: int | None = None,
    color: bool = False,
    flag: str | None = "n",
) -> tuple[Path, list[datetime]]:
    """Write an RMS-named timelapse whose frame ``i`` holds ``(tag, i)`` and its frame-time
    map (``map_frames`` entries, default one per frame, each flagged ``flag``); return the
    video and the times."""
    folder.mkdir(parents=True, exist_ok=True)
    times = [start + timedelta(seconds=interval_s * i, milliseconds=(7 * i) % 13)
             for i in range(map_frames if map_frames is not None else n_frames)]
    end = start + timedelta(seconds=interval_s * n_frames)
    video = folder / timelapse_video_name(station, start, end)
    frames = (index_frame(tag << 16 | i) for i in range(n_frames))
    if color:  # a daylight-like tint: full red and green, half blue
        frames = (np.stack([f, f, f // 2], axis=2) for f in frames)
    encode_timelapse(video, frames, gop=gop, crf=20, gray=not color)
    frame_map = folder / frame_times_name(station, start, end)
    frame_map.write_text(json.dumps(format_frame_times(times, flag)))
    return video, times


def remux_faststart(source: Path, target: Path) -> None:
    """Copy a video with its index (moov) at the front, as a streaming-friendly file has it,
    so cutting its tail leaves the first frames readable."""
    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4",
                                              options={"movflags": "faststart"}) as dst:
        in_stream = src.streams.video[0]
        out_stream = dst.add_stream_from_template(in_stream)
        for packet in src.demux(in_stream):
            if packet.dts is None:
                continue
            packet.stream = out_stream
            dst.mux(packet)


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def found_archive(data: Path, captures, timelapses=()) -> Path:
    """Write a local GMN archive under ``data/archive`` and run ``find`` on it into ``data``.

    ``captures``: (station, capture start, clear intervals, or None for no interval file);
    ``timelapses``: (station, first frame, last frame) timelapse folder names, whose edges
    give the sessions' ends. Returns the archive root."""
    from data_prep import find

    root = data / "archive"
    for station, start, intervals in captures:
        folder = root / "extracted_data" / station[:2] / station / format_night_folder(station,
                                                                                     start)
        folder.mkdir(parents=True, exist_ok=True)
        if intervals is not None:
            (folder / INTERVAL_FILE_NAME).write_text(interval_file_text(station, intervals))
    for station, first, last in timelapses:
        (root / "contrails" / station[:2] / station /
         format_timelapse_folder(station, first, last)).mkdir(parents=True)
    summary = find.run(prep_config(data, source__root=str(root)))
    assert summary.ok, summary.failures
    return root


def prep_config(data_dir: Path, **overrides):
    """The real prep config (``conf/prep.yaml``, composed by Hydra) rooted at ``data_dir``,
    one worker; ``overrides`` use ``__`` for the dot (``extract__per_night=4``)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name="prep", overrides=[f"paths.data_dir={data_dir}"])
    cfg.extract.workers = 1
    for key, value in overrides.items():
        OmegaConf.update(cfg, key.replace("__", "."), value, merge=False)
    return cfg
