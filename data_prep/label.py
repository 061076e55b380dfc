"""``python -m data_prep.label``: each extracted night frame gets clear/cloudy from its own
capture session's RMS intervals.

Reads every PNG in ``label.images_dir`` (``extracted_night/``), finds the capture session of the
image's station that holds its time among the sessions of ``label.nights_csv`` (what ``find``
found), and labels it from that session's interval files under ``label.intervals_dir`` (any
depth, ``all_cloudy_time_intervals/`` included). Writes ``label.output``
(``extracted_night_labels.csv``: ``image_filename,label,station,night,timestamp,
edge_distance_s,night_rule``, ``night`` being the session's night id) atomically. Images outside
every session, in a capture without interval file, and reference-format names without a
station unless ``label.station`` is set, are reported and left out, never guessed; the step
then exits non-zero. A rerun never shrinks the labels of captures whose interval file it could
not read: their previous rows are kept and reported. A ``nights.csv`` of the old clock rule is
refused (rerun find); a labels table of the old rule is relabelled whole, none of its rows kept.
The decisions live in :mod:`data_prep.nights.label_rules`, the sessions and interval files are
read by :mod:`data_prep.nights.session_index`, the table by :mod:`data_prep.nights.label_table`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.nights.label_rules import (
    LabelRow,
    LeftOut,
    format_balance,
    label_balance,
    label_images,
)
from data_prep.nights.label_table import labels_csv_text, read_previous_labels
from data_prep.nights.nights_table import old_rule_message
from data_prep.nights.session_index import SessionIndex, load_session_index
from data_prep.remote.connect import night_folder_suffixes
from data_prep.summary import StepSummary, format_names, run_step
from gmn_base.atomic import remove_stale_temporaries, write_text
from gmn_base.command_line import guard_secrets
from gmn_base.errors import GMNFormatError
from gmn_base.image_names import ImageName, parse_image_name
from gmn_base.station_time import parse_station

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


def previous_rows(output: Path, summary: StepSummary) -> dict[str, LabelRow]:
    """The rows a previous run wrote; none from a table of another night rule (reported)."""
    previous = read_previous_labels(output)
    if previous.other_rule:
        log.warning("%s; relabelling every image by capture sessions, none of its rows kept",
                    old_rule_message(output, previous.found_rule, "`python -m data_prep.label`"))
        summary.count("old_rule_table_replaced")
    return previous.rows


def keep_unreadable(left_out: list[LeftOut], index: SessionIndex, previous: dict[str, LabelRow],
                    summary: StepSummary) -> tuple[list[LabelRow], list[LeftOut]]:
    """Previous rows of images whose capture's interval file exists but cannot be read: kept
    (a rerun must not shrink the labels), and reported naming the file."""
    kept: list[LabelRow] = []
    still_out = []
    for group in left_out:
        problems = index.unreadable.get(group.capture) if group.capture else None
        old = [previous[name] for name in group.images if name in previous] if problems else []
        if not old:
            still_out.append(group)
            continue
        kept += old
        summary.add_failure(f"kept the previous labels of {len(old)} image(s) of capture "
                            f"{group.capture}: its interval file could not be read "
                            f"({'; '.join(problems)}); fix or refetch it (rerun find) and rerun")
        summary.count("kept_previous", len(old))
        rest = tuple(name for name in group.images if name not in previous)
        if rest:
            still_out.append(LeftOut(group.reason, rest, group.capture))
    return kept, still_out


def _report_left_out(left_out: list[LeftOut], summary: StepSummary) -> None:
    for group in left_out:
        log.warning("%s: %s", group.reason, ", ".join(group.images))
        summary.add_failure(f"{len(group.images)} image(s) left out, {group.reason}: "
                            f"{format_names(group.images)}")
        summary.count("left_out", len(group.images))


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
    index = load_session_index(Path(lcfg.nights_csv), Path(lcfg.intervals_dir), summary,
                               night_folder_suffixes(cfg.source))
    previous = previous_rows(output, summary)

    rows, left_out = label_images(images, index.lookup, index.intervals, default_station)
    kept, left_out = keep_unreadable(left_out, index, previous, summary)
    rows = sorted(rows + kept, key=lambda row: row.image_filename)
    _report_left_out(left_out, summary)
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
    # A ValueError is a bad setting (label.station) or a nights.csv of the old rule, and a
    # FileNotFoundError a missing nights.csv, each named in the message: exit 2, no traceback.
    run_step("label", _label_and_print_balance, cfg, log,
             user_errors=(ValueError, FileNotFoundError))


if __name__ == "__main__":
    main()
