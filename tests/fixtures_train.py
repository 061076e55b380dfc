"""Tiny labelled image sets for the training tests, drawn by the tests themselves.

Clear frames are dark with bright stars; cloudy frames are flat grey with a little noise, so
even one epoch of a tiny timm ``test_*`` model can tell something apart. Names follow
``{ST}_{YYYYMMDD}_{HHMMSS}_{mmm}.png``; some frames lie after midnight UTC, in the night (the
capture session, its night id the UTC date it started) that began the evening before.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from gmn_base.image_names import format_image_name
from gmn_base.sessions import NIGHT_RULE
from gmn_base.station_time import format_night

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

# (station, evening start) per station-night: 6 groups, 4 frames each, 2 clear + 2 cloudy.
GROUPS = [
    ("CAWEC2", datetime(2025, 11, 6, 23, 0)),
    ("CAWEC2", datetime(2025, 11, 7, 22, 0)),
    ("US0001", datetime(2025, 11, 6, 21, 0)),
    ("US0001", datetime(2025, 11, 8, 23, 30)),
    ("AU0002", datetime(2025, 11, 6, 22, 30)),
    ("AU0002", datetime(2025, 11, 9, 23, 45)),
]
TINY_SIZE = (32, 56)  # H, W: 16:9-ish


def draw_frame(clear: bool, rng: np.random.Generator, size=TINY_SIZE, mode: str = "L") -> Image.Image:
    h, w = size
    if clear:
        pixels = rng.normal(20, 5, (h, w))
        ys, xs = rng.integers(0, h, 25), rng.integers(0, w, 25)
        pixels[ys, xs] = 255
    else:
        pixels = rng.normal(120, 8, (h, w))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")
    return image.convert(mode)


def make_dataset(root: Path, groups=GROUPS, per_group: int = 4, with_columns: bool = True,
                 seed: int = 0, labels_name: str = "extracted_night_labels.csv",
                 image_dir_name: str = "converted_day") -> tuple[Path, Path, pd.DataFrame]:
    """Write images and a labels CSV under ``root``; return (labels_csv, image_dir, table)."""
    rng = np.random.default_rng(seed)
    image_dir = root / image_dir_name
    image_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for station, start in groups:
        for i in range(per_group):
            # Frames spread over 4 h so the later ones are after midnight UTC.
            ts = start + timedelta(minutes=75 * i, seconds=5 * i)
            name = format_image_name(station, ts)
            clear = i % 2 == 0
            draw_frame(clear, rng, mode="L" if i < 2 else "RGB").save(image_dir / name)
            rows.append({"image_filename": name, "label": "clear" if clear else "cloudy",
                         "station": station, "night": format_night(start.date()),
                         "timestamp": ts.isoformat(), "edge_distance_s": 30.0 * (i + 1),
                         "night_rule": NIGHT_RULE})
    table = pd.DataFrame(rows)
    out = table if with_columns else table[["image_filename", "label"]]
    labels_csv = root / labels_name
    out.to_csv(labels_csv, index=False)
    return labels_csv, image_dir, table


def tiny_overrides(data_dir: Path, output_root: Path) -> list[str]:
    """Command-line overrides for a seconds-long CPU run on a :func:`make_dataset` folder."""
    return [f"paths.data_dir={data_dir}", f"paths.output_root={output_root}", "debug=tiny",
            "logger=csv"]


def run_cli(script: str, *overrides: str, env: dict | None = None, timeout: int = 300,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python <script> overrides...`` from the repository root, as a user would."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore",
                **(env or {})}
    proc = subprocess.run([PYTHON, script, *overrides], check=False, cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {' '.join(overrides)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def compose_train(*overrides: str, config_name: str = "train"):
    """Compose a config in-process, the way Hydra's entry points do: Hydra's own record of
    the job (its overrides name the experiment) is set, and the config handed over
    without it, with the name and the defining overrides fixed as this job saw them."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from gmn_weather.hydra_config import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides),
                      return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.name = str(cfg.name)
        cfg.experiment_overrides = list(cfg.experiment_overrides)
    return cfg


def unreachable_hub(monkeypatch, tmp_path) -> int:
    """Point huggingface_hub at a closed loopback port (a machine without network), online
    mode, empty cache; return the port."""
    from huggingface_hub import constants

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: connections refused
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    for variable in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)
    return port
