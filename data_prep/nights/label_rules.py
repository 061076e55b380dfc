"""Pure labelling core: a frame's clear/cloudy label from its own station-night's intervals.

A frame is ``clear`` when its time lies inside one of the RMS clear-sky intervals of its own
station and night (ends inclusive), else ``cloudy``; an empty interval list is a real
all-cloudy night. ``edge_distance_s`` is the signed distance in seconds to the nearest
interval edge: positive inside an interval (clear), negative outside (cloudy), ``0.0`` on an
edge (which is clear, ends being inclusive) and ``-inf`` on an all-cloudy night, which has
no edge. Training drops ambiguous frames near an edge with ``abs(edge_distance_s) < min``.
Interval files are found by the ``{ST}_{YYYYMMDD}_{HHMMSS}_{ffffff}_detected`` folder name
anywhere in their path. No I/O here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePath

from gmn_base.formats import (
    ClearIntervals,
    ImageName,
    find_detected_folder,
    format_night,
    night_of,
)

CLEAR = "clear"
CLOUDY = "cloudy"


Interval = tuple[datetime, datetime]
StationNight = tuple[str, date]


@dataclass(frozen=True)
class FrameLabel:
    label: str
    edge_distance_s: float


def classify_time(ts: datetime, intervals: Sequence[Interval]) -> FrameLabel:
    """Label one instant against one station-night's clear intervals (ends inclusive)."""
    if not intervals:
        return FrameLabel(CLOUDY, -math.inf)
    inside = [min((ts - s).total_seconds(), (e - ts).total_seconds())
              for s, e in intervals if s <= ts <= e]
    if inside:
        # Overlapping intervals: the frame is as deep inside as its deepest interval allows.
        return FrameLabel(CLEAR, max(inside))
    nearest = min(abs((ts - edge).total_seconds()) for pair in intervals for edge in pair)
    return FrameLabel(CLOUDY, -nearest)


def interval_file_key(path: str | PurePath) -> StationNight | None:
    """The (station, night) an interval file belongs to, from the ``_detected`` folder name
    anywhere in its path (file name or a parent folder); None when no such name is there.
    When several appear, the one nearest the file name wins."""
    folder = find_detected_folder(path)
    return None if folder is None else (folder.station, folder.night)


def merge_clear_intervals(parts: Iterable[ClearIntervals]) -> tuple[Interval, ...]:
    """Union of several files' intervals for one station-night (RMS restarted mid-night
    writes one ``_detected`` folder per capture, each covering its own part of the night)."""
    return tuple(sorted(pair for part in parts for pair in part.intervals))


@dataclass(frozen=True)
class LabelRow:
    """One row of the labels table (:mod:`data_prep.nights.label_table`)."""

    image_filename: str
    label: str
    station: str
    night: str
    timestamp: str
    edge_distance_s: float


@dataclass(frozen=True)
class LeftOut:
    """Images that could not be labelled, grouped by reason (one message per group)."""

    reason: str
    images: tuple[str, ...]


def resolve_station(image: ImageName, default_station: str | None) -> str | None:
    """The image's own station, else ``label.station`` for reference-format names, else None."""
    return image.station or default_station


def label_images(
    images: Iterable[tuple[str, ImageName]],
    intervals: Mapping[StationNight, Sequence[Interval]],
    default_station: str | None = None,
) -> tuple[list[LabelRow], list[LeftOut]]:
    """Label each ``(file name, parsed name)`` against its own station-night's intervals.

    Images without a station (and no ``default_station``) and images whose station-night has
    no interval file are left out and returned grouped, never guessed.
    """
    rows: list[LabelRow] = []
    no_station: list[str] = []
    no_intervals: dict[StationNight, list[str]] = {}
    for filename, image in images:
        station = resolve_station(image, default_station)
        if station is None:
            no_station.append(filename)
            continue
        night = night_of(image.timestamp)
        key = (station, night)
        if key not in intervals:
            no_intervals.setdefault(key, []).append(filename)
            continue
        result = classify_time(image.timestamp, intervals[key])
        rows.append(LabelRow(
            image_filename=filename,
            label=result.label,
            station=station,
            night=format_night(night),
            timestamp=image.timestamp.isoformat(timespec="milliseconds"),
            edge_distance_s=result.edge_distance_s,
        ))
    left_out = []
    if no_station:
        left_out.append(LeftOut(
            "image name has no station; set label.station=ST for reference-format names",
            tuple(no_station)))
    for (station, night), names in sorted(no_intervals.items()):
        left_out.append(LeftOut(
            f"no interval file for station {station} night {format_night(night)} (looked for "
            f"a name holding a {station}_YYYYMMDD_HHMMSS_ffffff_detected folder of that night; "
            "frames before 12:00 UTC belong to the previous date's night)",
            tuple(names)))
    rows.sort(key=lambda row: row.image_filename)
    return rows, left_out


def label_balance(rows: Iterable[LabelRow]) -> dict[str, Counter]:
    """Label counts per station, for the balance report."""
    balance: dict[str, Counter] = {}
    for row in rows:
        balance.setdefault(row.station, Counter())[row.label] += 1
    return dict(sorted(balance.items()))


def format_balance(balance: Mapping[str, Counter]) -> str:
    lines = [f"{'station':<8} {'clear':>7} {'cloudy':>7} {'clear %':>8}"]
    total = Counter()
    for station, counts in balance.items():
        total.update(counts)
        lines.append(_balance_line(station, counts))
    if len(balance) > 1:
        lines.append(_balance_line("all", total))
    return "\n".join(lines)


def _balance_line(name: str, counts: Counter) -> str:
    n = counts[CLEAR] + counts[CLOUDY]
    share = f"{100.0 * counts[CLEAR] / n:.1f}" if n else "-"
    return f"{name:<8} {counts[CLEAR]:>7} {counts[CLOUDY]:>7} {share:>8}"

