"""Pure labelling core: a frame's clear/cloudy label from its own capture session's intervals.

A frame belongs to the capture session of its station whose span holds it
(:class:`gmn_base.sessions.SessionLookup`) and is labelled only from that session's RMS
clear-sky intervals: ``clear`` when its time lies inside one of them (ends inclusive), else
``cloudy``; an empty interval list with every capture's file present is a real all-cloudy
session. A frame in a capture whose interval file is missing, or outside every session, is
left out and reported, never guessed cloudy. ``edge_distance_s`` is the signed distance in
seconds to the nearest interval edge: positive inside an interval (clear), negative outside
(cloudy), ``0.0`` on an edge (which is clear, ends being inclusive) and ``-inf`` on an
all-cloudy session, which has no edge. Training drops ambiguous frames near an edge with
``abs(edge_distance_s) < min``. The ``night`` of a row is the session's night id, and each
row records the rule (:data:`gmn_base.sessions.NIGHT_RULE`). No I/O here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from gmn_base.image_names import ImageName
from gmn_base.interval_files import Interval
from gmn_base.session_intervals import SessionIntervals
from gmn_base.sessions import NIGHT_RULE, CaptureSession, SessionLookup

CLEAR = "clear"
CLOUDY = "cloudy"


@dataclass(frozen=True)
class FrameLabel:
    label: str
    edge_distance_s: float


def classify_time(ts: datetime, intervals: Sequence[Interval]) -> FrameLabel:
    """Label one instant against its capture session's clear intervals (ends inclusive)."""
    if not intervals:
        return FrameLabel(CLOUDY, -math.inf)
    inside = [min((ts - s).total_seconds(), (e - ts).total_seconds())
              for s, e in intervals if s <= ts <= e]
    if inside:
        # Overlapping intervals: the frame is as deep inside as its deepest interval allows.
        return FrameLabel(CLEAR, max(inside))
    nearest = min(abs((ts - edge).total_seconds()) for pair in intervals for edge in pair)
    return FrameLabel(CLOUDY, -nearest)


@dataclass(frozen=True)
class LabelRow:
    """One row of the labels table (:mod:`data_prep.nights.label_table`)."""

    image_filename: str
    label: str
    station: str
    night: str
    timestamp: str
    edge_distance_s: float
    night_rule: str = NIGHT_RULE


@dataclass(frozen=True)
class LeftOut:
    """Images that could not be labelled, grouped by reason (one message per group)."""

    reason: str
    images: tuple[str, ...]
    capture: str | None = None  # the capture whose interval file is missing, if that is why


def _left_out_key(station: str, ts: datetime, session: CaptureSession | None,
                  intervals: Mapping[str, SessionIntervals]) -> tuple[str, str | None]:
    """Why a frame that ``intervals_at`` gives nothing for is left out (reason, capture);
    ``session``: the station's session holding ``ts``, if any."""
    if session is None:
        return (f"no capture session of station {station} in nights.csv holds them (widen "
                "find.since/until/last_n and rerun `python -m data_prep.find`)"), None
    capture = session.capture_of(ts)
    if capture not in intervals[session.session_id].files:
        return (f"no interval file for capture {capture} (station {station}, night "
                f"{session.night_id}): RMS wrote none or find could not fetch or read it; "
                "never guessed cloudy"), capture
    return (f"outside the capture span of session {session.session_id} (night "
            f"{session.night_id}): RMS measured nothing there"), None


def label_images(
    images: Iterable[tuple[str, ImageName]],
    sessions: SessionLookup,
    intervals: Mapping[str, SessionIntervals],
    default_station: str | None = None,
) -> tuple[list[LabelRow], list[LeftOut]]:
    """Label each ``(file name, parsed name)`` against its own capture session's intervals
    (``intervals``: by session id, every session of ``sessions`` present).

    Images without a station (and no ``default_station``), outside every session, or in a
    capture without interval file are left out and returned grouped, never guessed.
    """
    rows: list[LabelRow] = []
    no_station: list[str] = []
    left: dict[tuple[str, str | None], list[str]] = {}
    for filename, image in images:
        station = image.station or default_station
        if station is None:
            no_station.append(filename)
            continue
        session = sessions.session_for(station, image.timestamp)
        known = None if session is None else \
            intervals[session.session_id].intervals_at(image.timestamp, sessions.rule)
        if known is None:
            left.setdefault(_left_out_key(station, image.timestamp, session, intervals),
                            []).append(filename)
            continue
        result = classify_time(image.timestamp, known)
        rows.append(LabelRow(
            image_filename=filename, label=result.label, station=station,
            night=session.night_id,
            timestamp=image.timestamp.isoformat(timespec="milliseconds"),
            edge_distance_s=result.edge_distance_s))
    left_out = []
    if no_station:
        left_out.append(LeftOut(
            "image name has no station; set label.station=ST for reference-format names",
            tuple(no_station)))
    for (reason, capture), names in sorted(left.items(), key=lambda kv: kv[0][0]):
        left_out.append(LeftOut(reason, tuple(names), capture))
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

