"""Write a realistic miniature GMN server tree, for the offline demo and the tests.

``python -m data_prep.synthetic synthetic.out_dir=... synthetic.stations=2 ...`` writes, under
``out_dir``, night (and daytime) timelapse videos with their frame-time maps in the server's
``contrails/CA/{ST}/{night folder}/`` layout, RMS interval files under
``extracted_data/CA/{ST}/{..._detected}/flux_time_intervals.json``, and ``truth.csv`` with
one row per frame. Each night's weather is modelled over the whole night (dusk to dawn); the
interval files come from that night's visible-star fraction through RMS's own rule
(:mod:`data_prep.rms_intervals`), while the timelapse holds ``frames_per_night`` frames taken
``frame_interval_s`` apart in a few bursts spread over the night, so a short demo video still
samples clear spells, cloudy spells and the edges between them. Every name is produced by
:mod:`gmn_base.formats`. The same seed gives the same frame-time maps, interval files and truth.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf
from tqdm import tqdm

from data_prep import sky_render as sky
from data_prep.rms_intervals import clear_intervals, in_intervals
from data_prep.summary import StepSummary, run_step
from data_prep.timelapse_video import encode_timelapse
from gmn_base import formats as gmn
from gmn_base.atomic import atomic_path, remove_stale_temporaries, write_csv, write_json

log = logging.getLogger(__name__)

REGION = "CA"
SETTINGS_FILE = "synthetic_settings.json"
# Stored in SETTINGS_FILE. Bump it with any change that alters what an archive holds for given
# settings (frames, frame times, intervals, truth): a rerun then refuses the old archive
# instead of keeping its videos beside new interval files and truth.
GENERATOR_VERSION = 3
TRUTH_FILE = "truth.csv"
TRUTH_COLUMNS = [
    "station", "timestamp", "label", "physical_label", "cloud_fraction",
    "visible_star_fraction", "video", "frame_index", "kind", "night", "image_filename",
]
SKY_EPOCH = datetime(2000, 1, 1, 12, tzinfo=gmn.UTC)  # star positions are a function of time since


@dataclass(frozen=True)
class SyntheticSettings:
    """Everything that decides the archive's content (stored beside it)."""

    stations: tuple[str, ...] = ("CA0001", "CA0002")
    nights: int = 2
    frames_per_night: int = 150
    frame_interval_s: float = 5.0
    width: int = 1280
    height: int = 720
    seed: int = 0
    legacy_names: bool = False
    day_timelapses: bool = True
    frames_per_day: int | None = None   # frames in each daytime timelapse; None: frames_per_night
    first_night: str = "20251106"
    night_hours: float = 10.0
    day_hours: float = 7.0
    bursts_per_night: int = 6
    overcast_fraction: float = 0.25
    moon_probability: float = 0.3
    rms_sample_s: float = 60.0
    crf: int = 23
    preset: str = "veryfast"

    def validate(self) -> None:
        for station in self.stations:
            gmn.parse_station(station, "synthetic.stations")
        if len(set(self.stations)) != len(self.stations):
            raise ValueError(f"synthetic.stations: duplicate station ids in {list(self.stations)}")
        gmn.parse_night(self.first_night, "synthetic.first_night")
        if self.frames_per_day is not None and self.frames_per_day < 1:
            raise ValueError(f"synthetic.frames_per_day must be at least 1, got {self.frames_per_day}")
        for key in ("nights", "frames_per_night", "width", "height", "bursts_per_night"):
            if getattr(self, key) < 1:
                raise ValueError(f"synthetic.{key} must be at least 1, got {getattr(self, key)}")
        for key in ("width", "height"):
            if getattr(self, key) % 2 or getattr(self, key) < 16:
                raise ValueError(f"synthetic.{key} must be even and >= 16 (H.264 yuv420p), "
                                 f"got {getattr(self, key)}")
        if not 0.05 <= self.frame_interval_s <= 600:
            raise ValueError(f"synthetic.frame_interval_s out of range: {self.frame_interval_s}")
        if not 0 <= self.overcast_fraction <= 1:
            raise ValueError(f"synthetic.overcast_fraction must lie in [0, 1]: {self.overcast_fraction}")


def station_ids(stations: int | Sequence[str]) -> tuple[str, ...]:
    """``2`` -> ``("CA0001", "CA0002")``; a list of ids is checked and kept."""
    if isinstance(stations, (int, np.integer)) and not isinstance(stations, bool):
        if stations < 1:
            raise ValueError(f"synthetic.stations: need at least one station, got {stations}")
        return tuple(f"{REGION}{i:04d}" for i in range(1, int(stations) + 1))
    if isinstance(stations, str):
        stations = [stations]
    return tuple(gmn.parse_station(str(s), "synthetic.stations") for s in stations)


# --- records handed back ------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratedTimelapse:
    """One timelapse written (paths relative to the archive root)."""

    station: str
    night: date
    kind: str                 # "night" or "day"
    folder: str
    video: str
    frame_times_file: str
    frame_count: int
    legacy: bool
    overcast: bool


@dataclass(frozen=True)
class SyntheticArchive:
    """What :func:`generate_archive` wrote under ``out_dir``."""

    out_dir: Path
    stations: tuple[str, ...]
    timelapses: tuple[GeneratedTimelapse, ...]
    interval_files: tuple[str, ...]   # relative to out_dir
    truth_csv: Path
    frames: int
    clear_frames: int                 # night frames whose label is clear
    cloudy_nights: int                # station-nights with an empty interval list
    rendered: int                     # timelapses encoded by this call (others were complete)
    seconds: float = 0.0

    def path(self, relative: str) -> Path:
        return self.out_dir / relative

    def truth(self) -> pd.DataFrame:
        return pd.read_csv(self.truth_csv, dtype={"night": str, "label": str}, keep_default_na=False)


# --- planning (pure) ----------------------------------------------------------------------


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
    clouds: sky.CloudField
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
                clouds = sky.make_clouds(rng, span_s, overcast=overcast and kind == "night")
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


def scenes(settings: SyntheticSettings) -> dict[str, sky.StationScene]:
    aspect = settings.width / settings.height
    return {st: sky.make_scene(st, aspect, np.random.default_rng([settings.seed, 0, _station_key(st)]))
            for st in settings.stations}


def sky_seconds(ts: datetime) -> float:
    return (ts - SKY_EPOCH).total_seconds()


def star_fraction_curve(
    plan: SpanPlan, scene: sky.StationScene, sample_s: float
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
    t0 = plan.detected_start or plan.start
    times = [t0 + timedelta(seconds=float(o)) for o in offsets]
    fractions = sky.visible_star_fractions(
        scene, plan.clouds, np.array([sky_seconds(t) for t in times]),
        np.array([(t - plan.start).total_seconds() for t in times]))
    return times, [float(f) for f in fractions]


@dataclass(frozen=True)
class FrameTruth:
    cloud_fraction: float
    visible_star_fraction: float


def frame_truths(plan: SpanPlan, scene: sky.StationScene, height: int, width: int,
                 ) -> tuple[list[FrameTruth], list[np.ndarray]]:
    """Per-frame truth and the low-resolution opacity grids the renderer upsamples."""
    yy, xx, sky_mask = sky.cloud_grid(scene, height, width)
    cloud_t = np.array([(ts - plan.start).total_seconds() for ts in plan.frame_times])
    stars = sky.visible_star_fractions(
        scene, plan.clouds, np.array([sky_seconds(ts) for ts in plan.frame_times]), cloud_t)
    grids = [plan.clouds.opacity(t, yy, xx) for t in cloud_t]
    truths = [FrameTruth(round(sky.cloud_fraction(alpha, sky_mask), 4), round(float(f), 4))
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
            "night": gmn.format_night(plan.night),
            "image_filename": gmn.format_image_name(plan.station, ts),
        })
    return rows


def compute_intervals(plan: SpanPlan, scene: sky.StationScene, settings: SyntheticSettings
                      ) -> list[tuple[datetime, datetime]]:
    """The night's RMS clear-sky intervals (also stored on ``plan``)."""
    times, fractions = star_fraction_curve(plan, scene, settings.rms_sample_s)
    plan.intervals = clear_intervals(times, fractions)
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


# --- rendering ----------------------------------------------------------------------------


def render_frames(plan: SpanPlan, scene: sky.StationScene, grids: Sequence[np.ndarray],
                  settings: SyntheticSettings) -> Iterator[np.ndarray]:
    """The timelapse's frames, one at a time (gray at night, RGB by day), with the overlay."""
    h, w = settings.height, settings.width
    look_rng = np.random.default_rng([*plan.seed_key, 11])
    font = sky.overlay_font(h)
    yy, xx, _ = sky.cloud_grid(scene, h, w)
    if plan.kind == "night":
        look = sky.night_look(scene, look_rng, h, w, settings.moon_probability)
    else:
        day = sky.day_look(scene, look_rng, h, w)
    for index, (ts, alpha) in enumerate(zip(plan.frame_times, grids)):
        noise_rng = np.random.default_rng([*plan.seed_key, 13, index])
        t = (ts - plan.start).total_seconds()
        detail = sky.sample_periodic(plan.clouds.small, yy - plan.clouds.wind_small[0] * t,
                                     xx - plan.clouds.wind_small[1] * t)
        if plan.kind == "night":
            frame = sky.render_night(scene, plan.clouds, look, sky_seconds(ts), t, alpha, noise_rng,
                                     detail)
        else:
            frame = sky.render_day(plan.clouds, day, t, alpha, detail, noise_rng)
        yield sky.draw_overlay(frame, sky.overlay_text(plan.station, ts), font)


# --- the archive --------------------------------------------------------------------------


def _check_settings_file(out_dir: Path, settings: SyntheticSettings) -> None:
    path = out_dir / SETTINGS_FILE
    wanted = {"generator_version": GENERATOR_VERSION, **json.loads(json.dumps(asdict(settings)))}
    if not path.exists():
        write_json(path, wanted)
        return
    found = json.loads(path.read_text())
    version = found.get("generator_version", 1)  # files without the key predate versioning
    if version != GENERATOR_VERSION:
        raise ValueError(
            f"{path}: this archive was made by synthetic generator version {version}, this code "
            f"is version {GENERATOR_VERSION}; its videos would not match the interval files and "
            f"truth.csv a rerun writes. Delete {out_dir} and rerun (or choose another "
            "synthetic.out_dir)"
        )
    if found != wanted:
        changed = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
        raise ValueError(
            f"{path}: this archive was generated with other settings ({', '.join(changed)}); "
            f"choose another synthetic.out_dir or delete {out_dir}"
        )


def generate_archive(
    out_dir: str | Path,
    *,
    stations: int | Sequence[str] = 2,
    nights: int = 2,
    frames_per_night: int = 150,
    frame_interval_s: float = 5.0,
    width: int = 1280,
    height: int = 720,
    seed: int = 0,
    legacy_names: bool = False,
    day_timelapses: bool = True,
    progress: bool = False,
    **extra,
) -> SyntheticArchive:
    """Write a synthetic GMN archive under ``out_dir`` and return what was written.

    ``extra`` takes the other :class:`SyntheticSettings` fields (``first_night``,
    ``night_hours``, ``bursts_per_night``, ``overcast_fraction``, ``moon_probability``, ...).
    Re-running with the same settings skips timelapses already complete; other settings for
    an existing archive are refused.
    """
    began = time.monotonic()
    unknown = set(extra) - set(SyntheticSettings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown synthetic setting(s): {', '.join(sorted(unknown))}")
    settings = SyntheticSettings(
        stations=station_ids(stations), nights=nights, frames_per_night=frames_per_night,
        frame_interval_s=float(frame_interval_s), width=width, height=height, seed=seed,
        legacy_names=legacy_names, day_timelapses=day_timelapses, **extra,
    )
    settings.validate()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_settings_file(out_dir, settings)
    remove_stale_temporaries(out_dir)

    station_scenes = scenes(settings)
    plans = plan_archive(settings)
    rows: list[dict] = []
    written: list[GeneratedTimelapse] = []
    interval_files: list[str] = []
    rendered = cloudy_nights = 0
    for plan in tqdm(plans, desc="synthetic timelapses", unit="timelapse", disable=not progress):
        scene = station_scenes[plan.station]
        if plan.kind == "night":
            compute_intervals(plan, scene, settings)
            cloudy_nights += not plan.intervals
            rel = plan.interval_file_rel()
            write_json(out_dir / rel, gmn.format_interval_file(plan.station, plan.intervals))
            interval_files.append(rel)
        truths, grids = frame_truths(plan, scene, settings.height, settings.width)
        video, frame_times = out_dir / plan.video_rel(), out_dir / plan.frame_times_rel()
        if not (video.exists() and frame_times.exists()):
            remove_stale_temporaries(video.parent)  # left by a killed run
            count = encode_timelapse(video, render_frames(plan, scene, grids, settings),
                                     crf=settings.crf, preset=settings.preset,
                                     gray=plan.kind == "night")
            if count != len(plan.frame_times):
                raise RuntimeError(f"{video}: encoded {count} frames, planned {len(plan.frame_times)}")
            write_json(frame_times, gmn.format_frame_times(plan.frame_times, plan.suffix))
            rendered += 1
        rows.extend(truth_rows(plan, truths))
        written.append(GeneratedTimelapse(
            plan.station, plan.night, plan.kind, plan.folder_rel(), plan.video_rel(),
            plan.frame_times_rel(), len(plan.frame_times), plan.variant.legacy, plan.overcast,
        ))
    truth = pd.DataFrame(rows, columns=TRUTH_COLUMNS)
    truth_csv = out_dir / TRUTH_FILE
    write_csv(truth_csv, truth)
    archive = SyntheticArchive(
        out_dir=out_dir,
        stations=settings.stations,
        timelapses=tuple(written),
        interval_files=tuple(interval_files),
        truth_csv=truth_csv,
        frames=len(truth),
        clear_frames=int(((truth["kind"] == "night") & (truth["label"] == "clear")).sum()),
        cloudy_nights=cloudy_nights,
        rendered=rendered,
        seconds=time.monotonic() - began,
    )
    log.info("synthetic archive %s: %d timelapses (%d rendered), %d frames, %d clear night frames, "
             "%d all-cloudy nights", out_dir, len(written), rendered, archive.frames,
             archive.clear_frames, cloudy_nights)
    return archive


# --- contact sheet ------------------------------------------------------------------------


def pick_contact_frames(truth: pd.DataFrame, n_night: int = 8, n_day: int = 4) -> pd.DataFrame:
    """A spread of frames for a contact sheet: night frames labelled clear, then cloudy, then
    daytime; within each group evenly spread from the clearest to the cloudiest frame."""
    groups = [truth[(truth["kind"] == "night") & (truth["label"] == label)] for label in ("clear", "cloudy")]
    counts = [n_night - n_night // 2, n_night // 2]
    groups.append(truth[truth["kind"] == "day"])
    counts.append(n_day)
    picks = []
    for group, n in zip(groups, counts):
        if len(group) and n:
            ordered = group.sort_values(["cloud_fraction", "video", "frame_index"], kind="stable")
            idx = np.linspace(0, len(ordered) - 1, min(len(ordered), n)).round().astype(int)
            picks.append(ordered.iloc[np.unique(idx)])
    return pd.concat(picks) if picks else truth.iloc[:0]


def write_contact_sheet(archive_dir: str | Path, path: str | Path, *, n_night: int = 8,
                        n_day: int = 4, tile_width: int = 240, columns: int = 4) -> int:
    """Decode a spread of frames from the archive's videos into one captioned PNG.

    Returns the number of tiles. Frames come from the real videos (PyAV), so the sheet shows
    what a downstream step would extract.
    """
    import av
    from PIL import Image, ImageDraw, ImageFont

    archive_dir = Path(archive_dir)
    truth = pd.read_csv(archive_dir / TRUTH_FILE, dtype={"night": str, "label": str},
                        keep_default_na=False)
    picks = pick_contact_frames(truth, n_night, n_day)
    if picks.empty:
        raise ValueError(f"{archive_dir / TRUTH_FILE}: no frames to show")
    tiles = []
    for video, group in picks.groupby("video", sort=False):
        wanted = set(group["frame_index"])
        with av.open(str(archive_dir / video)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index in wanted:
                    row = group[group["frame_index"] == index].iloc[0]
                    tiles.append((row, frame.to_image().convert("RGB")))
                if index >= max(wanted):
                    break
    order = {i: k for k, i in enumerate(picks.index)}
    tiles.sort(key=lambda t: order[t[0].name])
    first = tiles[0][1]
    tile_h = round(tile_width * first.height / first.width)
    caption_h = 14
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * tile_width, rows * (tile_h + caption_h)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=10)
    for k, (row, image) in enumerate(tiles):
        x, y = (k % columns) * tile_width, (k // columns) * (tile_h + caption_h)
        sheet.paste(image.resize((tile_width, tile_h), Image.BILINEAR), (x, y))
        label = row["label"] or "-"
        caption = (f"{row['kind']} {row['station']} label={label} phys={row['physical_label']} "
                   f"stars={row['visible_star_fraction']:.2f}")
        draw.text((x + 2, y + tile_h + 1), caption, fill="black", font=font)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG", optimize=True)
    return len(tiles)


# --- entry point --------------------------------------------------------------------------


def _stations_from_config(value) -> int | list[str]:
    if isinstance(value, (ListConfig, list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def run(cfg: DictConfig) -> StepSummary:
    """Generate the archive described by ``cfg.synthetic``; optionally a contact sheet."""
    summary = StepSummary("synthetic")
    began = time.monotonic()
    syn = OmegaConf.to_container(cfg.synthetic, resolve=True)
    out_dir = syn.pop("out_dir")
    if not out_dir:
        raise ValueError("synthetic.out_dir is not set")
    contact_sheet = syn.pop("contact_sheet", None)
    syn["stations"] = _stations_from_config(syn["stations"])
    syn["first_night"] = str(syn.get("first_night", "20251106"))
    archive = generate_archive(out_dir, progress=True, **syn)
    summary.count("stations", len(archive.stations))
    summary.count("timelapses", len(archive.timelapses))
    summary.count("rendered", archive.rendered)
    summary.count("already_complete", len(archive.timelapses) - archive.rendered)
    summary.count("frames", archive.frames)
    summary.count("clear_night_frames", archive.clear_frames)
    summary.count("all_cloudy_nights", archive.cloudy_nights)
    summary.outputs["archive"] = str(archive.out_dir)
    summary.outputs["truth"] = str(archive.truth_csv)
    if contact_sheet:
        write_contact_sheet(archive.out_dir, contact_sheet)
        summary.outputs["contact_sheet"] = str(contact_sheet)
    summary.seconds = time.monotonic() - began
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    # A ValueError is a bad setting or an archive made otherwise, named in the message: exit 2, no traceback.
    run_step("synthetic", run, cfg, log, user_errors=(ValueError,))


if __name__ == "__main__":
    main()
