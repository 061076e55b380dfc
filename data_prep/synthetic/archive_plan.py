"""The plan of a synthetic archive, decided before anything is drawn: one :class:`SpanPlan`
per timelapse (span, captures, weather, frame times, naming variant).

Each station captures from its local dusk to the next dawn (:mod:`.stations`), so a night's
UTC span depends on where it stands. Each station-night gets a night span over that capture
(and, with ``day_timelapses``, a day span from that dawn to the next dusk). A share of the
station-nights (``restarts`` of them) has RMS restart mid-night: two capture folders, one
session. Frame times come in ``bursts_per_night`` runs, the first at the start of capture and
the last at its end (RMS keeps frames all night, so a timelapse spans its capture), at
millisecond precision like real frame times; each timelapse is named after its first and last
frame (``_buildName``). A cloud field is drawn per span (overcast throughout for a share
``overcast_fraction`` of station-nights). With ``legacy_names`` the spans cycle through the
other naming variants a user meets. Every random draw is seeded by the settings' seed and the
span's identity, so the same settings give the same plan.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np

from data_prep.synthetic.clouds import CloudField, make_clouds
from data_prep.synthetic.settings import SyntheticSettings
from data_prep.synthetic.sky_scene import StationScene, make_scene
from data_prep.synthetic.stations import capture_window, station_site
from gmn_base.interval_files import INTERVAL_FILE_NAME
from gmn_base.night_folders import (
    DETECTED_SUFFIX,
    IMGDATA_SUFFIX,
    METADATA_SUFFIX,
    NightFolder,
    format_night_folder,
)
from gmn_base.station_time import frame_time_at, parse_night
from gmn_base.timelapse_names import (
    Timelapse,
    format_timelapse_folder,
    frame_times_name,
    timelapse_for_frames,
)


@dataclass(frozen=True)
class NamingVariant:
    doy: bool = False              # a day-of-year field after the station
    timestamps_json: bool = False  # _timestamps.json instead of _frametimes.json
    no_suffix: bool = False        # frame times without _n/_d flags
    split_upload: bool = False     # _metadata (+ _imgdata) night folders instead of _detected
    package: bool = False          # video and map packed in ..._frames_timelapse.tar

    @property
    def legacy(self) -> bool:
        return self != NamingVariant()


# Night spans take these in turn, day spans from the third on, so two nights already show all.
LEGACY_CYCLE = (
    NamingVariant(),
    NamingVariant(doy=True, split_upload=True),
    NamingVariant(timestamps_json=True, no_suffix=True),
    NamingVariant(package=True),
)


@dataclass
class SpanPlan:
    """One timelapse's span, captures, weather and frame times, decided before drawing."""

    station: str
    night: date               # the session's night id (UTC date of its first capture start)
    kind: str
    start: datetime
    end: datetime
    frame_times: list[datetime]
    clouds: CloudField
    overcast: bool
    variant: NamingVariant
    seed_key: tuple[int, ...]
    country: str
    capture_starts: tuple[datetime, ...] = ()   # night spans: one per capture folder
    session_id: str = ""      # the session it shows (night) or follows (day)
    intervals: list[tuple[datetime, datetime]] = field(default_factory=list)
    capture_intervals: list[list[tuple[datetime, datetime]]] = field(default_factory=list)

    @property
    def suffix(self) -> str | None:
        if self.variant.no_suffix:
            return None
        return "n" if self.kind == "night" else "d"

    @property
    def timelapse(self) -> Timelapse:
        """The name RMS gives it: first to last frame, cut to seconds."""
        return timelapse_for_frames(self.station, self.frame_times)

    @property
    def doy(self) -> int | None:
        return self.timelapse.start.timetuple().tm_yday if self.variant.doy else None

    def folder_rel(self) -> str:
        lapse = self.timelapse
        folder = format_timelapse_folder(self.station, lapse.start, lapse.end, self.doy)
        return f"contrails/{self.country}/{self.station}/{folder}"

    def _names(self) -> Timelapse:
        return Timelapse(self.station, self.timelapse.start, self.timelapse.end, self.doy)

    def video_rel(self) -> str:
        """Where the video lies (inside :meth:`package_rel` for a packaged timelapse)."""
        return f"{self.folder_rel()}/{self._names().file_name('video')}"

    def frame_times_rel(self) -> str:
        lapse = self.timelapse
        name = frame_times_name(self.station, lapse.start, lapse.end, self.doy,
                                legacy=self.variant.timestamps_json)
        return f"{self.folder_rel()}/{name}"

    def package_rel(self) -> str | None:
        return f"{self.folder_rel()}/{self._names().file_name('package')}" \
            if self.variant.package else None

    def night_folders_rel(self) -> list[str]:
        """Every night folder of the session (several names per capture with split upload)."""
        suffixes = (METADATA_SUFFIX, IMGDATA_SUFFIX) if self.variant.split_upload \
            else (DETECTED_SUFFIX,)
        return [f"extracted_data/{self.country}/{self.station}/"
                f"{format_night_folder(self.station, start, suffix)}"
                for start in self.capture_starts for suffix in suffixes]

    def interval_files_rel(self) -> list[str]:
        """Each capture's interval file, in its ``_detected`` (or ``_metadata``) folder."""
        if not self.capture_starts:
            raise ValueError(f"{self.folder_rel()}: a {self.kind} timelapse has no interval file")
        suffix = METADATA_SUFFIX if self.variant.split_upload else DETECTED_SUFFIX
        return [f"extracted_data/{self.country}/{self.station}/"
                f"{format_night_folder(self.station, start, suffix)}/{INTERVAL_FILE_NAME}"
                for start in self.capture_starts]


def _station_key(station: str) -> int:
    return zlib.crc32(station.encode())


def burst_times(
    rng: np.random.Generator, start: datetime, span_s: float, frames: int, interval_s: float,
    bursts: int,
) -> list[datetime]:
    """Frame times: ``bursts`` runs of frames ``interval_s`` apart (with millisecond jitter),
    the first starting with the span and the last ending with it, the others spread between;
    one continuous run when the frames fill the span anyway. Millisecond precision."""
    if frames * interval_s >= span_s or bursts <= 1:
        sizes = [frames]
        starts = [1.0]
    else:
        bursts = min(bursts, frames)
        sizes = [len(a) for a in np.array_split(np.arange(frames), bursts)]
        slot = span_s / bursts
        starts = [1.0 + i * slot + rng.uniform(0, max(0.0, slot - (n - 1) * interval_s - 2))
                  for i, n in enumerate(sizes)]
        starts[0], starts[-1] = 1.0, span_s - 1.0 - (sizes[-1] - 1) * interval_s
    offsets: list[float] = []
    for first, n in zip(starts, sizes):
        jitter_ms = rng.integers(-20, 21, n)
        offsets.extend(first + np.arange(n) * interval_s + jitter_ms / 1000.0)
    base = frame_time_at(start)
    return [frame_time_at(base + timedelta(seconds=float(o))) for o in offsets]


@dataclass(frozen=True)
class _Night:
    """One station-night: where it stands in the settings, and its capture window."""

    station: str
    index: int
    ordinal: int            # station index * nights + night index
    dusk: datetime
    dawn: datetime
    next_dusk: datetime


def _nights(settings: SyntheticSettings) -> list[_Night]:
    first = parse_night(settings.first_night, "synthetic.first_night")
    found = []
    for s_idx, station in enumerate(settings.stations):
        site = station_site(station, settings.locations)
        for n_idx in range(settings.nights):
            evening = first + timedelta(days=n_idx)
            dusk, dawn = capture_window(*site, evening)
            next_dusk, _ = capture_window(*site, evening + timedelta(days=1))
            found.append(_Night(station, n_idx, s_idx * settings.nights + n_idx, dusk, dawn,
                                next_dusk))
    return found


def _capture_starts(rng: np.random.Generator, start: datetime, span_s: float,
                    restart: bool) -> tuple[datetime, ...]:
    if not restart:
        return (start,)
    restart_at = start + timedelta(seconds=rng.uniform(0.3, 0.7) * span_s,
                                   microseconds=int(rng.integers(0, 1_000_000)))
    return start, restart_at


def _span(settings: SyntheticSettings, night: _Night, kind: str, overcast: bool,
          restart: bool) -> SpanPlan:
    kinds = ["night", "day"] if settings.day_timelapses else ["night"]
    key = (settings.seed, 2, _station_key(night.station), night.index, kinds.index(kind))
    rng = np.random.default_rng(list(key))
    if kind == "night":  # RMS starts at dusk, to the microsecond, and stops at dawn
        start = night.dusk + timedelta(seconds=rng.uniform(0, 60),
                                       microseconds=int(rng.integers(0, 1_000_000)))
        end, frames = night.dawn, settings.frames_per_night
    else:
        start, end = night.dawn + timedelta(seconds=5), night.next_dusk - timedelta(seconds=5)
        frames = settings.frames_per_day or settings.frames_per_night
    span_s = max((end - start).total_seconds(), frames * settings.frame_interval_s + 5)
    captures = _capture_starts(rng, start, span_s, restart) if kind == "night" else ()
    times = burst_times(rng, start, span_s, frames, settings.frame_interval_s,
                        settings.bursts_per_night)
    night_overcast = overcast and kind == "night"
    return SpanPlan(
        station=night.station, night=start.date(), kind=kind, start=start,
        end=start + timedelta(seconds=span_s), frame_times=times,
        clouds=make_clouds(rng, span_s, overcast=night_overcast), overcast=night_overcast,
        variant=NamingVariant(), seed_key=key,
        country=settings.country_folder or night.station[:2], capture_starts=captures)


def plan_archive(settings: SyntheticSettings) -> list[SpanPlan]:
    """Decide every timelapse: spans, captures, weather, frame times, naming variant."""
    nights = _nights(settings)
    order = np.random.default_rng([settings.seed, 3]).permutation(len(nights))
    overcast = set(order[:round(len(nights) * settings.overcast_fraction)])
    restarts = set(np.random.default_rng([settings.seed, 4]).permutation(len(nights))
                   [:settings.restarts])
    plans: list[SpanPlan] = []
    for night in nights:
        night_plan = _span(settings, night, "night", night.ordinal in overcast,
                           night.ordinal in restarts)
        night_plan.session_id = NightFolder(night.station, night_plan.start).capture_id
        plans.append(night_plan)
        if settings.day_timelapses:
            day = _span(settings, night, "day", False, False)
            day.night, day.session_id = night_plan.night, night_plan.session_id
            plans.append(day)
    if settings.legacy_names:
        night_spans = [p for p in plans if p.kind == "night"]
        day_spans = [p for p in plans if p.kind == "day"]
        for i, plan in enumerate(night_spans):
            plan.variant = LEGACY_CYCLE[i % len(LEGACY_CYCLE)]
        for i, plan in enumerate(day_spans):
            plan.variant = LEGACY_CYCLE[(i + 2) % len(LEGACY_CYCLE)]
    return plans


def scenes(settings: SyntheticSettings) -> dict[str, StationScene]:
    aspect = settings.width / settings.height
    return {st: make_scene(st, aspect, np.random.default_rng([settings.seed, 0, _station_key(st)]))
            for st in settings.stations}
