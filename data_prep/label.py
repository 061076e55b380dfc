"""``python -m data_prep.label``: each extracted night frame gets clear/cloudy from its own
station-night's RMS intervals.

Reads every PNG in ``label.images_dir`` (``extracted_night/``), finds the interval file of the
image's station and night (``night_of``: frames before 12:00 UTC belong to the previous date's
night) among ``label.intervals_dir`` and its ``all_cloudy_time_intervals/`` subfolder, and
writes ``label.output`` (``extracted_night_labels.csv``: ``image_filename,label,station,night,
timestamp,edge_distance_s``) atomically. Images whose station-night has no interval file, and
reference-format names without a station unless ``label.station`` is set, are reported and
left out, never guessed; the step then exits non-zero. The decisions live in
:mod:`data_prep.nights.label_rules`, the interval files are read by
:mod:`data_prep.nights.interval_files`, the table is written by
:mod:`data_prep.nights.label_table`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.nights.interval_files import load_interval_index
from data_prep.nights.label_rules import format_balance, label_balance, label_images
from data_prep.nights.label_table import labels_csv_text
from data_prep.summary import StepSummary, format_names, run_step
from gmn_base.atomic import remove_stale_temporaries, write_text
from gmn_base.command_line import guard_secrets
from gmn_base.formats import GMNFormatError, ImageName, parse_image_name, parse_station

log = logging.getLogger(__name__)


@dataclass
class LabelOutcome:
    summary: StepSummary
    balance: dict[str, Counter]


def night_images(images_dir: Path, summary: StepSummary) -> list[tuple[str, ImageName]]:
    """Every PNG of ``images_dir`` with its parsed name; bad names are failures."""
    images = []
    for path in sorted(images_dir.glob("*.png")):
        try:
            images.append((path.name, parse_image_name(path.name, images_dir)))
        except GMNFormatError as exc:
            summary.add_failure(str(exc))
            summary.count("bad_names")
    return images


def label_step(cfg: DictConfig) -> LabelOutcome:
    """The whole step: label ``label.images_dir``, write ``label.output``, count the balance."""
    started = time.monotonic()
    lcfg = cfg.label
    summary = StepSummary("label")
    images_dir, output = Path(lcfg.images_dir), Path(lcfg.output)
    default_station = parse_station(lcfg.station, "label.station") if lcfg.station else None
    remove_stale_temporaries(output.parent, target=output.name)  # left by a killed run

    if not images_dir.is_dir():
        summary.add_failure(f"{images_dir}: image folder not found "
                            "(run `python -m data_prep.extract` first)")
        return LabelOutcome(summary, {})
    images = night_images(images_dir, summary)
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

    write_text(output, labels_csv_text(rows))
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


@guard_secrets
@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    # A ValueError is a bad setting (label.station), named in the message: exit 2, no traceback.
    run_step("label", _label_and_print_balance, cfg, log, user_errors=(ValueError,))


if __name__ == "__main__":
    main()
