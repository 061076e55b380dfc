"""RMS clear-sky interval files (``flux_time_intervals.json``), parsed and written as RMS does.

RMS (``Utils/Flux.py``: ``saveTimeInvervals``) writes one file per capture folder:
``{"stationID": "CAWEC2", "time_intervals": [["2025-11-14T23:01:05.018000", ...], ...]}``,
naive UTC in ``%Y-%m-%dT%H:%M:%S.%f``, ``json.dumps(..., indent=4, sort_keys=True)``. The
times are FF file times, so they carry milliseconds and a ``000`` microsecond tail. An empty
list means RMS found no clear interval in that capture: it was cloudy throughout.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gmn_base.errors import GMNFormatError, load_json
from gmn_base.station_time import UTC, frame_time_at, parse_station

INTERVAL_FILE_NAME = "flux_time_intervals.json"
INTERVAL_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class ClearIntervals:
    """One capture's RMS clear-sky intervals (empty: cloudy throughout)."""

    station: str
    intervals: tuple[Interval, ...]

    @property
    def all_cloudy(self) -> bool:
        return not self.intervals

    def clear_minutes(self) -> float:
        return sum((e - s).total_seconds() for s, e in self.intervals) / 60.0


def parse_interval_time(value: Any, source: str | Path | None = None) -> datetime:
    if isinstance(value, str):
        for fmt in (INTERVAL_TIME_FORMAT, "%Y-%m-%dT%H:%M:%S"):
            try:
                return datetime.strptime(value, fmt).replace(tzinfo=UTC)
            except ValueError:
                continue
    raise GMNFormatError("interval time", value, source, "expected %Y-%m-%dT%H:%M:%S.%f (UTC)")


def format_interval_time(ts: datetime) -> str:
    """RMS's form: naive UTC, milliseconds with a ``000`` microsecond tail (FF file times)."""
    return frame_time_at(ts).replace(tzinfo=None).strftime(INTERVAL_TIME_FORMAT)


def parse_interval_file(data: Any, source: str | Path | None = None) -> ClearIntervals:
    """Parse the JSON content of an RMS ``flux_time_intervals.json``."""
    if not isinstance(data, Mapping):
        raise GMNFormatError("interval file", type(data).__name__, source, "expected a JSON object")
    for key in ("stationID", "time_intervals"):
        if key not in data:
            raise GMNFormatError("interval file", f"missing key {key!r}", source)
    station = parse_station(data["stationID"], source)
    raw = data["time_intervals"]
    if not isinstance(raw, list):
        raise GMNFormatError("time_intervals", raw, source, "expected a list of [start, end] pairs")
    intervals = []
    for pair in raw:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise GMNFormatError("time interval", pair, source, "expected [start, end]")
        start, end = parse_interval_time(pair[0], source), parse_interval_time(pair[1], source)
        if end < start:
            raise GMNFormatError("time interval", pair, source, "end before start")
        intervals.append((start, end))
    return ClearIntervals(station, tuple(sorted(intervals)))


def format_interval_file(station: str, intervals: Iterable[Interval]) -> dict:
    return {
        "stationID": station,
        "time_intervals": [[format_interval_time(s), format_interval_time(e)] for s, e in intervals],
    }


def interval_file_text(station: str, intervals: Iterable[Interval]) -> str:
    """The file's text exactly as RMS writes it (sorted keys, four-space indent)."""
    return json.dumps(format_interval_file(station, intervals), indent=4, sort_keys=True)


def load_interval_file(path: str | Path) -> ClearIntervals:
    path = Path(path)
    return parse_interval_file(load_json(path), path)
