"""Move all-cloudy RMS interval files (an empty ``time_intervals`` list) into a subfolder.

An interval file whose list is empty says the whole night was cloudy; the reference pipeline
kept those apart in ``all_cloudy_time_intervals/`` so a folder listing shows the good nights
at a glance, and this step keeps that layout. ``data_prep.find`` calls
:func:`move_all_cloudy` after fetching; ``python -m data_prep.filter_cloudy`` runs it alone on
``filter_cloudy.folder`` (default ``find.interval_dir``; any folder). Malformed files are reported by name and left
where they are.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.summary import StepSummary, run_step
from gmn_base.formats import GMNFormatError, load_interval_file

log = logging.getLogger(__name__)

ALL_CLOUDY_DIR = "all_cloudy_time_intervals"


@dataclass
class CloudyMove:
    moved: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def move_all_cloudy(folder: Path) -> CloudyMove:
    """Move every all-cloudy ``*.json`` interval file in ``folder`` (not recursive) to
    ``folder/all_cloudy_time_intervals/``; a same-named file there is replaced."""
    result = CloudyMove()
    if not folder.is_dir():
        result.errors.append(f"{folder}: interval folder not found (set filter_cloudy.folder)")
        return result
    target = folder / ALL_CLOUDY_DIR
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue  # a temporary of an interrupted write
        try:
            intervals = load_interval_file(path)
        except GMNFormatError as exc:
            result.errors.append(str(exc))
            continue
        if intervals.all_cloudy:
            target.mkdir(exist_ok=True)
            os.replace(path, target / path.name)
            result.moved.append(target / path.name)
        else:
            result.kept.append(path)
    return result


def run(cfg: DictConfig) -> StepSummary:
    summary = StepSummary("filter_cloudy")
    folder = Path(str(cfg.filter_cloudy.folder))
    result = move_all_cloudy(folder)
    summary.count("moved_all_cloudy", len(result.moved))
    summary.count("kept_with_intervals", len(result.kept))
    for error in result.errors:
        summary.add_failure(error)
    summary.outputs["all_cloudy"] = str(folder / ALL_CLOUDY_DIR)
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    run_step("filter_cloudy", run, cfg, log)


if __name__ == "__main__":
    main()
