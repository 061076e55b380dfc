"""``extracted_night_labels.csv``: the labels table ``label`` writes and training reads.

Columns :data:`LABEL_COLUMNS` (``image_filename,label,station,night,timestamp,edge_distance_s``),
one :class:`~data_prep.nights.label_rules.LabelRow` each, label ``clear`` or ``cloudy``.
:func:`labels_csv_text` writes it; :func:`clear_frames_by_station` reads back the frames
labelled clear (``converter=local`` measures each camera's clear sky on them).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from data_prep.nights.label_rules import CLEAR, LabelRow

LABEL_COLUMNS = ("image_filename", "label", "station", "night", "timestamp", "edge_distance_s")


def labels_csv_text(rows: list[LabelRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    for row in rows:
        writer.writerow([getattr(row, column) for column in LABEL_COLUMNS])
    return buffer.getvalue()


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
