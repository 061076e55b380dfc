"""``extracted_night_labels.csv``: the labels table ``label`` writes and training reads.

Columns :data:`LABEL_COLUMNS` (``image_filename,label,station,night,timestamp,edge_distance_s,
night_rule``), one :class:`~data_prep.nights.label_rules.LabelRow` each, label ``clear`` or
``cloudy``, ``night`` the capture session's night id and ``night_rule`` the rule that made it
(:data:`gmn_base.sessions.NIGHT_RULE`). :func:`labels_csv_text` writes it;
:func:`read_previous_labels` reads back what a previous run wrote (so a rerun that cannot read
an interval file keeps those labels), and tells a table of the old clock rule apart;
:func:`clear_frames_by_station` reads back the frames labelled clear (``converter=local``
measures each camera's clear sky on them).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from data_prep.nights.label_rules import CLEAR, LabelRow
from gmn_base.sessions import is_current_night_rule

LABEL_COLUMNS = ("image_filename", "label", "station", "night", "timestamp", "edge_distance_s",
                 "night_rule")


def labels_csv_text(rows: list[LabelRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    for row in rows:
        writer.writerow([getattr(row, column) for column in LABEL_COLUMNS])
    return buffer.getvalue()


@dataclass
class PreviousLabels:
    """What a previous ``label`` run left: its rows by image, or, for a table written by
    another night rule, none of them and that rule (``None``: no ``night_rule`` column)."""

    rows: dict[str, LabelRow] = field(default_factory=dict)
    other_rule: bool = False
    found_rule: str | None = None


def read_previous_labels(path: Path) -> PreviousLabels:
    """The labels table at ``path`` as a previous run wrote it (nothing when absent)."""
    if not path.is_file():
        return PreviousLabels()
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = set(reader.fieldnames or [])
        if "night_rule" not in columns:
            return PreviousLabels(other_rule=True)
        missing = set(LABEL_COLUMNS) - columns
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}, so it is "
                             "not a labels table `label` wrote; move it away and rerun")
        previous = PreviousLabels()
        for r in reader:
            if not is_current_night_rule(r["night_rule"]):
                return PreviousLabels(other_rule=True, found_rule=r["night_rule"])
            previous.rows[r["image_filename"]] = LabelRow(
                r["image_filename"], r["label"], r["station"], r["night"], r["timestamp"],
                float(r["edge_distance_s"]), r["night_rule"])
    return previous


def clear_frames_by_station(labels_csv: Path) -> dict[str, list[str]]:
    """The image names labelled clear in ``labels_csv``, by station."""
    by_station: dict[str, list[str]] = {}
    with labels_csv.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"image_filename", "label", "station"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{labels_csv}: no column(s) {', '.join(sorted(missing))} "
                             f"(expected the label step's output)")
        for row in reader:
            if row["label"] == CLEAR:
                by_station.setdefault(row["station"], []).append(row["image_filename"])
    return by_station
