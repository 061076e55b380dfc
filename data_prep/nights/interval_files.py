"""The RMS interval files on disk: their names, the all-cloudy subfolder, the index by night.

``find`` stores each night's ``flux_time_intervals.json`` as
``{_detected folder}_flux_time_intervals.json`` (:func:`interval_file_name`) in
``find.interval_dir``, and moves the all-cloudy ones (an empty ``time_intervals`` list, a whole
night cloudy) into its ``all_cloudy_time_intervals/`` (:func:`move_all_cloudy`), the layout the
reference pipeline kept so a folder listing shows the good nights at a glance. ``extract`` and
``label`` read them back, at any depth, keyed by station-night (:func:`load_interval_index`).
Malformed files are reported by name, never guessed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from data_prep.nights.label_rules import (
    Interval,
    StationNight,
    interval_file_key,
    merge_clear_intervals,
)
from gmn_base.formats import INTERVAL_FILE_NAME, GMNFormatError, load_interval_file

log = logging.getLogger(__name__)

ALL_CLOUDY_DIR = "all_cloudy_time_intervals"


def interval_file_name(detected_folder: str) -> str:
    """Local name of a night's interval file: the ``_detected`` folder name kept in front."""
    return f"{detected_folder}_{INTERVAL_FILE_NAME}"


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


def load_interval_index(folder: str | Path) -> tuple[dict[StationNight, tuple[Interval, ...]],
                                                     list[str]]:
    """Every interval file under ``folder`` (any depth, so ``all_cloudy_time_intervals/`` too)
    keyed by the station-night of the ``_detected`` folder name in its path, and the
    problems met (unreadable or malformed files, station mismatches), each naming the file.
    Several files of one station-night (a capture restarted mid-night) are merged."""
    folder = Path(folder)
    parts: dict[StationNight, list] = {}
    problems: list[str] = []
    if not folder.is_dir():
        return {}, [f"{folder}: interval folder not found (run `python -m data_prep.find` first)"]
    for path in sorted(folder.rglob("*.json")):
        try:
            key = interval_file_key(path.relative_to(folder))
        except GMNFormatError as exc:
            problems.append(f"{path}: {exc}")
            continue
        if key is None:
            log.debug("%s: no _detected folder name in it, not an interval file", path)
            continue
        try:
            intervals = load_interval_file(path)
        except (GMNFormatError, OSError) as exc:
            problems.append(f"{exc}" if str(path) in str(exc) else f"{path}: {exc}")
            continue
        if intervals.station != key[0]:
            problems.append(f"{path}: stationID {intervals.station!r} does not match the "
                            f"station {key[0]!r} in its name; file ignored")
            continue
        parts.setdefault(key, []).append(intervals)
    return {key: merge_clear_intervals(found) for key, found in parts.items()}, problems
