"""``nights.csv`` and ``good_weather_dates.json``: every station-night found, and the clear ones.

One :class:`NightRow` per station-night: its ``_detected`` folders (several when RMS restarted
mid-night), their interval files, the number of clear intervals and the clear minutes. ``find``
writes the table (:func:`night_rows`, :func:`nights_csv_text`, :func:`good_weather_dates`);
``plan`` reads it back (:func:`read_nights_csv`). Pure except the reader.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from gmn_base.formats import (
    ClearIntervals,
    DetectedFolder,
    format_night,
    parse_night,
    parse_station,
)

NIGHTS_COLUMNS = ["station", "night", "detected_folders", "interval_files", "interval_count",
                  "clear_minutes", "all_cloudy"]


@dataclass(frozen=True)
class NightRow:
    station: str
    night: str
    detected_folders: tuple[str, ...]
    interval_files: tuple[str, ...]
    interval_count: int
    clear_minutes: float

    @property
    def all_cloudy(self) -> bool:
        return self.interval_count == 0


def night_rows(found: list[tuple[DetectedFolder, str, ClearIntervals]]) -> list[NightRow]:
    """One row per station-night from (folder, local file, intervals); several ``_detected``
    folders of one night (RMS restarted) are merged."""
    groups: dict[tuple[str, date], list[tuple[DetectedFolder, str, ClearIntervals]]] = {}
    for item in found:
        groups.setdefault((item[0].station, item[0].night), []).append(item)
    rows = []
    for (station, night), items in sorted(groups.items()):
        items.sort(key=lambda i: i[0].start)
        rows.append(NightRow(
            station, format_night(night),
            tuple(i[0].name for i in items), tuple(i[1] for i in items),
            sum(len(i[2].intervals) for i in items),
            round(sum(i[2].clear_minutes() for i in items), 1)))
    return rows


def good_weather_dates(rows: list[NightRow], stations: list[str]) -> dict[str, list[str]]:
    """``{station: [YYYYMMDD, ...]}``: each station's nights with a clear interval (every
    station listed, an empty list for one without)."""
    dates: dict[str, list[str]] = {station: [] for station in stations}
    for row in rows:
        if not row.all_cloudy:
            dates.setdefault(row.station, []).append(row.night)
    return {station: sorted(nights) for station, nights in sorted(dates.items())}


def nights_csv_text(rows: list[NightRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(NIGHTS_COLUMNS)
    for r in rows:
        writer.writerow([r.station, r.night, ";".join(r.detected_folders), ";".join(r.interval_files),
                         r.interval_count, r.clear_minutes, str(r.all_cloudy).lower()])
    return out.getvalue()


def read_nights_csv(path: Path) -> list[NightRow]:
    """Rows of a ``nights.csv`` written by ``find`` (``plan`` reads it)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m data_prep.find` first")
    rows = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(NIGHTS_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
        for lineno, r in enumerate(reader, start=2):
            where = f"{path}:{lineno}"
            rows.append(NightRow(
                parse_station(r["station"], where), format_night(parse_night(r["night"], where)),
                tuple(filter(None, r["detected_folders"].split(";"))),
                tuple(filter(None, r["interval_files"].split(";"))),
                int(r["interval_count"]), float(r["clear_minutes"])))
    return rows
