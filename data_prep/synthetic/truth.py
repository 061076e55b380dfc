"""What each synthetic frame truly shows, and the labels RMS would give it.

A night's RMS clear-sky intervals come from its visible-star fraction sampled across the
whole night at millisecond-precision image times, through RMS's own rule
(:mod:`.rms_intervals`) applied to each capture (folder) on its own, as RMS writes one file per
capture, so they carry the edge noise real labels carry. Per frame, ``truth.csv`` records both:
``label`` (what the interval files imply, what training sees) and ``physical_label`` (the
instantaneous truth: clear when at least half the stars RMS would predict stay visible), with
the cloud fraction, that star fraction, the capture session's night id (``night``) and id
(``session``; a day frame's is the session it follows). All of it is computed without rendering
(:func:`truth_table`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from data_prep.synthetic.archive_plan import SpanPlan, plan_archive, scenes
from data_prep.synthetic.clouds import cloud_fraction, cloud_grid, visible_star_fractions
from data_prep.synthetic.rms_intervals import clear_intervals, in_intervals
from data_prep.synthetic.settings import SyntheticSettings
from data_prep.synthetic.sky_scene import StationScene
from gmn_base.image_names import format_image_name
from gmn_base.station_time import UTC, format_night, frame_time_at

TRUTH_FILE = "truth.csv"  # in the archive's root
TRUTH_COLUMNS = [
    "station", "timestamp", "label", "physical_label", "cloud_fraction",
    "visible_star_fraction", "video", "frame_index", "kind", "night", "session",
    "image_filename",
]
SKY_EPOCH = datetime(2000, 1, 1, 12, tzinfo=UTC)  # star positions are a function of time since


def sky_seconds(ts: datetime) -> float:
    return (ts - SKY_EPOCH).total_seconds()


def star_fraction_curve(
    plan: SpanPlan, scene: StationScene, sample_s: float
) -> tuple[list[datetime], list[float]]:
    """The night's visible-star fraction as RMS would measure it, image by image.

    Samples every ``sample_s`` seconds with a little jitter, across the whole night; some
    nights lose a stretch of data (calibration failures), which the RMS rule treats as a gap.
    """
    rng = np.random.default_rng([*plan.seed_key, 7])
    span_s = (plan.end - plan.start).total_seconds()
    offsets = np.arange(0.0, span_s, sample_s) + rng.uniform(0, 2.0, int(np.ceil(span_s / sample_s)))
    offsets = offsets[offsets < span_s]
    if rng.random() < 0.2:
        gap_start = rng.uniform(0, span_s)
        gap_len = rng.uniform(16, 40) * 60
        offsets = offsets[(offsets < gap_start) | (offsets > gap_start + gap_len)]
    times = [frame_time_at(plan.start + timedelta(seconds=float(o))) for o in offsets]
    fractions = visible_star_fractions(
        scene, plan.clouds, np.array([sky_seconds(t) for t in times]),
        np.array([(t - plan.start).total_seconds() for t in times]))
    return times, [float(f) for f in fractions]


@dataclass(frozen=True)
class FrameTruth:
    cloud_fraction: float
    visible_star_fraction: float


def frame_truths(plan: SpanPlan, scene: StationScene, height: int, width: int,
                 ) -> tuple[list[FrameTruth], list[np.ndarray]]:
    """Per-frame truth and the low-resolution opacity grids the renderer upsamples."""
    yy, xx, sky_mask = cloud_grid(scene, height, width)
    cloud_t = np.array([(ts - plan.start).total_seconds() for ts in plan.frame_times])
    stars = visible_star_fractions(
        scene, plan.clouds, np.array([sky_seconds(ts) for ts in plan.frame_times]), cloud_t)
    grids = [plan.clouds.opacity(t, yy, xx) for t in cloud_t]
    truths = [FrameTruth(round(cloud_fraction(alpha, sky_mask), 4), round(float(f), 4))
              for alpha, f in zip(grids, stars)]
    return truths, grids


def truth_rows(plan: SpanPlan, truths: Sequence[FrameTruth]) -> list[dict]:
    rows = []
    for index, (ts, truth) in enumerate(zip(plan.frame_times, truths)):
        physical = "clear" if truth.visible_star_fraction >= 0.5 else "cloudy"
        if plan.kind == "night":
            label = "clear" if in_intervals(ts, plan.intervals) else "cloudy"
        else:
            label = ""  # no star-based label exists in daylight
        rows.append({
            "station": plan.station,
            "timestamp": ts.isoformat(timespec="milliseconds"),
            "label": label,
            "physical_label": physical,
            "cloud_fraction": truth.cloud_fraction,
            "visible_star_fraction": truth.visible_star_fraction,
            "video": plan.video_rel(),
            "frame_index": index,
            "kind": plan.kind,
            "night": format_night(plan.night),
            "session": plan.session_id,
            "image_filename": format_image_name(plan.station, ts),
        })
    return rows


def compute_intervals(plan: SpanPlan, scene: StationScene, settings: SyntheticSettings
                      ) -> list[tuple[datetime, datetime]]:
    """The night's RMS clear-sky intervals, each capture's computed from its own images as RMS
    does (stored on ``plan``: per capture and their union)."""
    times, fractions = star_fraction_curve(plan, scene, settings.rms_sample_s)
    ends = list(plan.capture_starts[1:]) + [None]
    plan.capture_intervals = []
    for start, end in zip(plan.capture_starts, ends):
        part = [i for i, t in enumerate(times) if t >= start and (end is None or t < end)]
        plan.capture_intervals.append(
            clear_intervals([times[i] for i in part], [fractions[i] for i in part]))
    plan.intervals = sorted(pair for part in plan.capture_intervals for pair in part)
    return plan.intervals


def truth_table(settings: SyntheticSettings) -> pd.DataFrame:
    """The ``truth.csv`` an archive with these settings gets, computed without rendering."""
    settings.validate()
    station_scenes = scenes(settings)
    rows: list[dict] = []
    for plan in plan_archive(settings):
        scene = station_scenes[plan.station]
        if plan.kind == "night":
            compute_intervals(plan, scene, settings)
        truths, _ = frame_truths(plan, scene, settings.height, settings.width)
        rows.extend(truth_rows(plan, truths))
    return pd.DataFrame(rows, columns=TRUTH_COLUMNS)
