"""RMS's clear-sky interval rule, applied to a night's visible-star fraction.

RMS (``Utils/Flux.py``) decides when a night was clear enough for meteor flux by comparing
the stars it detects with those its catalogue predicts, in 5-minute bins: a bin whose
visible-star fraction is at least 0.5 is clear; consecutive clear bins form an interval,
which closes when the fraction drops or when the data stop for more than 15 minutes; an
interval is kept only if longer than 60 minutes (90 minutes if it is still open when the
night ends). The synthetic archive computes its ``flux_time_intervals.json`` with this rule,
so its labels carry the edge noise real labels carry. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np


@dataclass(frozen=True)
class CloudRule:
    """The thresholds of the RMS rule (seconds and fractions)."""

    bin_s: float = 300.0
    clear_fraction: float = 0.5
    max_gap_s: float = 900.0
    min_duration_s: float = 3600.0
    min_open_duration_s: float = 5400.0


@dataclass(frozen=True)
class _Bin:
    first: datetime
    last: datetime
    fraction: float


def _bins(times: Sequence[datetime], fractions: Sequence[float], bin_s: float) -> list[_Bin]:
    order = np.argsort(np.array([t.timestamp() for t in times]), kind="stable")
    times = [times[i] for i in order]
    values = np.asarray(fractions, dtype=float)[order]
    t0 = times[0]
    keys = [int((t - t0).total_seconds() // bin_s) for t in times]
    bins: list[_Bin] = []
    start = 0
    for i in range(1, len(times) + 1):
        if i == len(times) or keys[i] != keys[start]:
            bins.append(_Bin(times[start], times[i - 1], float(values[start:i].mean())))
            start = i
    return bins


def clear_intervals(
    times: Sequence[datetime], fractions: Sequence[float], rule: CloudRule = CloudRule()
) -> list[tuple[datetime, datetime]]:
    """Clear-sky intervals of one night from per-image visible-star fractions.

    ``times`` are the image (FF file) times, ``fractions`` the fraction of predicted stars
    detected in each. Returns ``(start, end)`` pairs: the first and last image time of each
    kept run of clear bins. An empty list means the night counts as cloudy throughout.
    """
    if len(times) != len(fractions):
        raise ValueError(f"{len(times)} times but {len(fractions)} fractions")
    if not len(times):
        return []
    kept: list[tuple[datetime, datetime]] = []
    start: datetime | None = None
    end: datetime | None = None

    def close(min_s: float) -> None:
        if start is not None and end is not None and (end - start).total_seconds() > min_s:
            kept.append((start, end))

    for b in _bins(times, fractions, rule.bin_s):
        if b.fraction >= rule.clear_fraction:
            if start is not None and (b.first - end).total_seconds() > rule.max_gap_s:
                close(rule.min_duration_s)
                start = None
            if start is None:
                start = b.first
            end = b.last
        elif start is not None:
            close(rule.min_duration_s)
            start = end = None
    if start is not None:
        close(rule.min_open_duration_s)
    return kept


def in_intervals(ts: datetime, intervals: Sequence[tuple[datetime, datetime]]) -> bool:
    """Whether ``ts`` lies inside one of the intervals (both ends included)."""
    return any(s <= ts <= e for s, e in intervals)
