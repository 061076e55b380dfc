"""``converter=local`` over a whole run: each image day-styled offline, in turn.

With ``converter.clear_star_density: auto`` each station's clear-sky star density is measured
first, on up to ``converter.calibration_frames`` of its frames labelled clear (the label step's
table); a station without any keeps the default, with a warning. Every image's manifest row
records the hash of the settings it was styled with, so a change of settings is visible.
The styling itself: :mod:`data_prep.converters.local_day_style`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from PIL import UnidentifiedImageError
from tqdm import tqdm

from data_prep.converters.local_day_style import (
    LOCAL_MODEL,
    DayStyleParams,
    calibrated_clear_star_density,
    day_style,
    frame_star_density,
    params_from_config,
    wants_auto_density,
)
from data_prep.converters.night_images import read_night, save_png, station_of
from data_prep.converters.night_to_day_manifest import ManifestRow, ManifestWriter, WorkPlan
from data_prep.nights.label_table import clear_frames_by_station
from data_prep.summary import StepSummary

log = logging.getLogger(__name__)


def clear_star_densities(labels_csv: Path, calibration_frames: int, params: DayStyleParams,
                         night_dir: Path, stations: set[str], summary: StepSummary
                         ) -> dict[str, float]:
    """Each station's ``clear_star_density``, measured on up to ``calibration_frames`` of its
    frames labelled clear in ``labels_csv``; stations without any are left out (warned)."""
    clear = clear_frames_by_station(labels_csv) if labels_csv.is_file() else {}
    limit = max(1, calibration_frames)
    measured: dict[str, float] = {}
    for station in sorted(stations):
        names = sorted(n for n in clear.get(station, []) if (night_dir / n).is_file())
        densities = []
        for name in names[::max(1, -(-len(names) // limit))]:  # evenly spread over its nights
            try:
                _, night = read_night(night_dir / name)
            except (OSError, UnidentifiedImageError):
                continue  # counted as failed when it is converted
            densities.append(frame_star_density(np.asarray(night.convert("L")), params))
        value = calibrated_clear_star_density(densities)
        if value is None:
            log.warning("converter=local: no readable frames labelled clear for station %s in "
                        "%s: clear_star_density=%.2f (the default; set "
                        "converter.clear_star_density for this camera)", station, labels_csv,
                        params.clear_star_density)
            summary.count("stations_default_density")
            continue
        measured[station] = value
        log.info("converter=local: station %s clear_star_density=%.2f from %d frame(s) "
                 "labelled clear", station, value, len(densities))
        summary.count("stations_calibrated")
    return measured


def station_params(cfg: DictConfig, todo: list[str], night_dir: Path, summary: StepSummary
                   ) -> dict[str | None, DayStyleParams]:
    """The settings per station (None: stations without their own), from ``converter``."""
    params = params_from_config(cfg.converter)
    by_station: dict[str | None, DayStyleParams] = {None: params}
    if wants_auto_density(cfg.converter) and todo:
        stations = {s for s in map(station_of, todo) if s is not None}
        measured = clear_star_densities(Path(cfg.label.output),
                                        int(cfg.converter.get("calibration_frames", 40)),
                                        params, night_dir, stations, summary)
        for station, value in measured.items():
            by_station[station] = replace(params, clear_star_density=value)
    return by_station


def run_local(cfg: DictConfig, plan: WorkPlan, night_dir: Path, day_dir: Path,
              writer: ManifestWriter, summary: StepSummary) -> None:
    """Day-style ``plan.todo`` into ``day_dir``, a manifest row per image (PNG first)."""
    by_station = station_params(cfg, plan.todo, night_dir, summary)
    default = by_station[None]
    hashes = {p: hashlib.sha256(repr(p).encode()).hexdigest()[:12] for p in by_station.values()}
    for name in tqdm(plan.todo, desc="night_to_day (local)", unit="image"):
        params = by_station.get(station_of(name), default)
        try:
            _, night = read_night(night_dir / name)
        except (OSError, UnidentifiedImageError) as exc:
            writer.record(ManifestRow(name, "failed", 0, False, False, LOCAL_MODEL, hashes[params],
                                      f"unreadable image: {exc}"))
            summary.count("failed")
            summary.add_failure(f"{night_dir / name}: unreadable image ({exc})")
            continue
        save_png(day_style(night, params), day_dir / name)
        writer.record(ManifestRow(name, "done", 0, False, False, LOCAL_MODEL, hashes[params], ""))
        summary.count("done")
