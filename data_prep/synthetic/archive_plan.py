"""The plan of a synthetic archive, decided before anything is drawn: one :class:`SpanPlan`
per timelapse (span, weather, frame times, naming variant).

Each station-night gets a night span (and, with ``day_timelapses``, a day span): its start
near the station's evening, a length around ``night_hours``, the frame times in
``bursts_per_night`` runs spread over it, and a cloud field (overcast throughout for a share
``overcast_fraction`` of station-nights). With ``legacy_names`` the spans cycle through the
older naming variants. Every random draw is seeded by the settings' seed and the span's
identity, so the same settings give the same plan.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np

from data_prep.synthetic.clouds import CloudField, make_clouds
from data_prep.synthetic.settings import REGION, SyntheticSettings
from data_prep.synthetic.sky_scene import StationScene, make_scene
from gmn_base import formats as gmn


@dataclass(frozen=True)
class NamingVariant:
    doy: bool = False
    timestamps_json: bool = False
    no_suffix: bool = False

    @property
    def legacy(self) -> bool:
        return self.doy or self.timestamps_json or self.no_suffix


LEGACY_CYCLE = (
    NamingVariant(),
    NamingVariant(doy=True),
    NamingVariant(timestamps_json=True, no_suffix=True),
    NamingVariant(doy=True, timestamps_json=True, no_suffix=True),
)


@dataclass
class SpanPlan:
    """One timelapse's span, weather and frame times, decided before anything is drawn."""

    station: str
    night: date
    kind: str
    start: datetime
    end: datetime
    frame_times: list[datetime]
    clouds: CloudField
    overcast: bool
    variant: NamingVariant
    seed_key: tuple[int, ...]
    detected_start: datetime | None = None
    intervals: list[tuple[datetime, datetime]] = field(default_factory=list)

    @property
    def suffix(self) -> str | None:
        if self.variant.no_suffix:
            return None
        return "n" if self.kind == "night" else "d"

    @property
    def doy(self) -> int | None:
        return self.start.timetuple().tm_yday if self.variant.doy else None

    def folder_rel(self) -> str:
        folder = gmn.format_timelapse_folder(self.station, self.start, self.end, self.doy)
        return f"contrails/{REGION}/{self.station}/{folder}"

    def video_rel(self) -> str:
        return f"{self.folder_rel()}/{gmn.timelapse_video_name(self.station, self.start, self.end, self.doy)}"

    def frame_times_rel(self) -> str:
        name = gmn.frame_times_name(self.station, self.start, self.end, self.doy,
                                    legacy=self.variant.timestamps_json)
        return f"{self.folder_rel()}/{name}"

    def interval_file_rel(self) -> str:
        if self.detected_start is None:
            raise ValueError(f"{self.folder_rel()}: a {self.kind} timelapse has no interval file")
        detected = gmn.format_detected_folder(self.station, self.detected_start)
        return f"extracted_data/{REGION}/{self.station}/{detected}/{gmn.INTERVAL_FILE_NAME}"


def _station_key(station: str) -> int:
    return zlib.crc32(station.encode())


def burst_times(
    rng: np.random.Generator, start: datetime, span_s: float, frames: int, interval_s: float,
    bursts: int,
) -> list[datetime]:
    """Frame times: ``bursts`` runs of frames ``interval_s`` apart (with millisecond jitter),
    spread over the span; one continuous run when the frames fill the span anyway."""
    if frames * interval_s >= span_s or bursts <= 1:
        sizes = [frames]
        starts = [1.0 + rng.uniform(0, max(0.0, span_s - frames * interval_s - 2))]
    else:
        bursts = min(bursts, frames)
        sizes = [len(a) for a in np.array_split(np.arange(frames), bursts)]
        slot = span_s / bursts
        starts = [i * slot + 1.0 + rng.uniform(0, max(0.0, slot - (n - 1) * interval_s - 2))
                  for i, n in enumerate(sizes)]
    offsets: list[float] = []
    for first, n in zip(starts, sizes):
        jitter_ms = rng.integers(-20, 21, n)
        offsets.extend(first + np.arange(n) * interval_s + jitter_ms / 1000.0)
    base = gmn.frame_time_at(start)
    return [gmn.frame_time_at(base + timedelta(seconds=float(o))) for o in offsets]


def plan_archive(settings: SyntheticSettings) -> list[SpanPlan]:
    """Decide every timelapse: spans, weather, frame times, naming variant (no rendering)."""
    first = gmn.parse_night(settings.first_night, "synthetic.first_night")
    n_total = len(settings.stations) * settings.nights
    n_overcast = round(n_total * settings.overcast_fraction)
    overcast_ids = set(np.random.default_rng([settings.seed, 3]).permutation(n_total)[:n_overcast])
    plans: list[SpanPlan] = []
    for s_idx, station in enumerate(settings.stations):
        station_rng = np.random.default_rng([settings.seed, 1, _station_key(station)])
        evening_offset_min = station_rng.uniform(0, 120)
        for n_idx in range(settings.nights):
            night = first + timedelta(days=n_idx)
            overcast = (s_idx * settings.nights + n_idx) in overcast_ids
            kinds = ["night", "day"] if settings.day_timelapses else ["night"]
            for kind in kinds:
                key = (settings.seed, 2, _station_key(station), n_idx, kinds.index(kind))
                rng = np.random.default_rng(list(key))
                midnight = datetime.combine(night, datetime.min.time(), gmn.UTC)
                if kind == "night":
                    base, hours, frames = midnight + timedelta(hours=22.5), settings.night_hours, \
                        settings.frames_per_night
                else:
                    base, hours = midnight + timedelta(hours=13.5), settings.day_hours
                    frames = settings.frames_per_day or settings.frames_per_night
                start = base + timedelta(minutes=evening_offset_min + rng.uniform(-10, 10),
                                         microseconds=int(rng.integers(0, 1_000_000)))
                span_s = hours * 3600 + rng.uniform(-1200, 1200)
                span_s = max(span_s, frames * settings.frame_interval_s + 5)
                end = start + timedelta(seconds=span_s)
                times = burst_times(rng, start, span_s, frames, settings.frame_interval_s,
                                    settings.bursts_per_night)
                clouds = make_clouds(rng, span_s, overcast=overcast and kind == "night")
                plans.append(SpanPlan(
                    station=station, night=night, kind=kind,
                    start=start.replace(microsecond=0), end=end.replace(microsecond=0),
                    frame_times=times, clouds=clouds, overcast=overcast and kind == "night",
                    variant=NamingVariant(), seed_key=key,
                    detected_start=start if kind == "night" else None,
                ))
    if settings.legacy_names:
        for i, plan in enumerate(plans):
            plan.variant = LEGACY_CYCLE[i % len(LEGACY_CYCLE)]
    return plans


def scenes(settings: SyntheticSettings) -> dict[str, StationScene]:
    aspect = settings.width / settings.height
    return {st: make_scene(st, aspect, np.random.default_rng([settings.seed, 0, _station_key(st)]))
            for st in settings.stations}
