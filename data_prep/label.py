"""Label extracted night frames clear/cloudy against their own station-night's RMS intervals.

``python -m data_prep.label`` reads every PNG in ``label.images_dir`` (``extracted_night/``),
finds the interval file of the image's station and night (``night_of``: frames before 12:00
UTC belong to the previous date's night) among ``label.intervals_dir`` and its
``all_cloudy_time_intervals/`` subfolder, and writes ``label.output``
(``extracted_night_labels.csv``: ``image_filename,label,station,night,timestamp,
edge_distance_s``) atomically. Images whose station-night has no interval file, and
reference-format names without a station unless ``label.station`` is set, are reported and
left out, never guessed; the step then exits non-zero. The decisions live in
:mod:`data_prep.labelling`; this module does the file I/O.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.labelling import (
    LABEL_COLUMNS,
    Interval,
    LabelRow,
    StationNight,
    format_balance,
    interval_file_key,
    label_balance,
    label_images,
    merge_clear_intervals,
)
from data_prep.summary import StepSummary, run_step
from gmn_base.atomic import TEMP_SUFFIX, write_text
from gmn_base.formats import GMNFormatError, load_interval_file, parse_image_name, parse_station

log = logging.getLogger(__name__)

SHOWN_NAMES = 10  # image names quoted per failure message; the log lists them all


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


def format_names(names: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return shown + (f" ... and {more} more" if more > 0 else "")


def labels_csv(rows: list[LabelRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    for row in rows:
        writer.writerow(row.as_tuple())
    return buffer.getvalue()


@dataclass
class LabelOutcome:
    summary: StepSummary
    balance: dict[str, Counter]


def label_step(cfg: DictConfig) -> LabelOutcome:
    """The whole step: label ``label.images_dir``, write ``label.output``, count the balance."""
    started = time.monotonic()
    lcfg = cfg.label
    summary = StepSummary("label")
    images_dir, output = Path(lcfg.images_dir), Path(lcfg.output)
    default_station = parse_station(lcfg.station, "label.station") if lcfg.station else None
    for stale in output.parent.glob(f".{output.name}.*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)  # left by a killed run

    if not images_dir.is_dir():
        summary.add_failure(f"{images_dir}: image folder not found "
                            "(run `python -m data_prep.extract` first)")
        return LabelOutcome(summary, {})
    images = []
    for path in sorted(images_dir.glob("*.png")):
        try:
            images.append((path.name, parse_image_name(path.name, images_dir)))
        except GMNFormatError as exc:
            summary.add_failure(str(exc))
            summary.count("bad_names")
    summary.count("images", len(images))

    intervals, problems = load_interval_index(lcfg.intervals_dir)
    for problem in problems:
        summary.add_failure(problem)
    summary.count("station_nights_with_intervals", len(intervals))

    rows, left_out = label_images(images, intervals, default_station)
    for group in left_out:
        log.warning("%s: %s", group.reason, ", ".join(group.images))
        summary.add_failure(f"{len(group.images)} image(s) left out, {group.reason}: "
                            f"{format_names(group.images)}")
        summary.count("left_out", len(group.images))
    for row in rows:
        summary.count(row.label)

    write_text(output, labels_csv(rows))
    summary.count("labelled", len(rows))
    summary.outputs["labels"] = str(output)
    summary.seconds = time.monotonic() - started
    return LabelOutcome(summary, label_balance(rows))


def run(cfg: DictConfig) -> StepSummary:
    outcome = label_step(cfg)
    log.info("label balance per station:\n%s", format_balance(outcome.balance))
    return outcome.summary


def _label_and_print_balance(cfg: DictConfig) -> StepSummary:
    outcome = label_step(cfg)
    print(format_balance(outcome.balance))
    return outcome.summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    # A ValueError is a bad setting (label.station), named in the message: exit 2, no traceback.
    run_step("label", _label_and_print_balance, cfg, log, user_errors=(ValueError,))


if __name__ == "__main__":
    main()
