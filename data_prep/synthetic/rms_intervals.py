"""RMS's clear-sky interval rule, applied to a night's per-image star ratios.

RMS (``Utils/Flux.py``: ``detectClouds`` then ``computeClearSkyTimeIntervals``) decides when a
capture was clear enough for meteor flux from the ratio of stars it matched to stars its
catalogue predicts, per image (FF file):

1. The images, in time order, fall into 5-minute bins counted from the first image; only the
   **first image of each bin** is used, with its own ratio. An image RMS then cannot measure
   (Moon in view, recalibration failed: ``None`` here) leaves its bin empty; the bin's next
   image does not stand in.
2. Walking those images: a ratio of at least 0.5 is clear. A run of clear images ends at the
   last clear one when the next image is cloudy or comes more than 15 minutes later (a new
   run may start right there), and is kept if it lasted more than 60 minutes.
3. A run still going when the images run out is kept only if it lasted more than 90 minutes.

Interval ends are image times (FF times: milliseconds). The synthetic archive computes its
``flux_time_intervals.json`` with this rule, so its labels carry the edge noise real labels
carry. Pure functions, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CloudRule:
    """RMS's thresholds, in RMS's units (minutes, a ratio)."""

    bin_minutes: float = 5.0          # detectClouds(N=5)
    ratio_threshold: float = 0.5      # detectClouds: ratio_threshold None -> 0.5
    time_gap_minutes: float = 15.0    # computeClearSkyTimeIntervals(time_gap_threshold=15)
    min_minutes: float = 60.0         # "the interval must be at least an hour to be kept"
    clearing_minutes: float = 90.0    # computeClearSkyTimeIntervals(clearing_threshold=90)


@dataclass(frozen=True)
class BinSample:
    """The image RMS measures for one bin: its time and its star ratio."""

    time: datetime
    ratio: float


def _minutes(later: datetime, earlier: datetime) -> float:
    # The same float arithmetic as RMS, so thresholds compare identically at their edges.
    return (later - earlier).total_seconds() / 60


def first_image_of_each_bin(times: Sequence[datetime], ratios: Sequence[float | None],
                            rule: CloudRule = CloudRule()) -> list[BinSample]:
    """The image RMS measures in each bin (the first), with its ratio; bins whose first
    image has no ratio give nothing."""
    order = sorted(range(len(times)), key=lambda i: times[i])
    first_time = times[order[0]]
    samples, last_bin = [], -1
    for i in order:
        this_bin = int(_minutes(times[i], first_time) // rule.bin_minutes)
        if this_bin <= last_bin:
            continue
        last_bin = this_bin
        if ratios[i] is not None:
            samples.append(BinSample(times[i], float(ratios[i])))
    return samples


def _clear_runs(samples: list[BinSample], rule: CloudRule) -> list[tuple[list[BinSample], bool]]:
    """Runs of consecutive clear samples, each with whether the data ran out during it."""
    runs: list[tuple[list[BinSample], bool]] = []
    run: list[BinSample] = []
    previous: datetime | None = None
    for sample in samples:
        clear = sample.ratio >= rule.ratio_threshold
        gap = previous is not None and _minutes(sample.time, previous) > rule.time_gap_minutes
        if run and (gap or not clear):
            runs.append((run, False))
            run = []
        if clear:
            run.append(sample)
        previous = sample.time
    if run:
        runs.append((run, True))
    return runs


def clear_intervals(
    times: Sequence[datetime], fractions: Sequence[float | None], rule: CloudRule = CloudRule()
) -> list[tuple[datetime, datetime]]:
    """Clear-sky intervals of one capture from per-image star ratios, as RMS computes them.

    ``times`` are the image (FF file) times, ``fractions`` the ratio of matched to predicted
    stars in each, or None for an image RMS could not measure. Returns ``(start, end)``
    pairs of image times; an empty list means the capture counts as cloudy throughout.
    """
    if len(times) != len(fractions):
        raise ValueError(f"{len(times)} times but {len(fractions)} fractions")
    nan = [i for i, f in enumerate(fractions) if f is not None and math.isnan(f)]
    if nan:
        raise ValueError(f"star ratio of image {nan[0]} is NaN: give None for an image without "
                         "a measurement")
    if not len(times):
        return []
    kept = []
    for run, open_at_end in _clear_runs(first_image_of_each_bin(times, fractions, rule), rule):
        minimum = rule.clearing_minutes if open_at_end else rule.min_minutes
        if _minutes(run[-1].time, run[0].time) > minimum:
            kept.append((run[0].time, run[-1].time))
    return kept


def in_intervals(ts: datetime, intervals: Sequence[tuple[datetime, datetime]]) -> bool:
    """Whether ``ts`` lies inside one of the intervals (both ends included)."""
    return any(s <= ts <= e for s, e in intervals)
