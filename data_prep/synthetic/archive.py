"""Write a realistic miniature GMN server tree, for the offline demo and the tests.

:func:`generate_archive` writes, under ``out_dir``, night (and daytime) timelapse videos with
their frame-time maps in the server's ``contrails/{CC}/{ST}/{timelapse folder}/`` layout (``CC``
the station's country letters, or ``synthetic.country_folder``), the night folders of each
capture session under ``extracted_data/{CC}/{ST}/`` with one RMS interval file per capture
(``{..._detected}/flux_time_intervals.json``), and ``truth.csv`` with one row per frame. Each
station captures from its local dusk to dawn (:mod:`.stations`), so sessions cross 00:00 or
12:00 UTC depending on where it stands; a share of sessions has a restart (two folders). Each
night's weather is modelled over the whole capture; the interval files come from its
visible-star fraction through RMS's own rule (:mod:`.truth`, :mod:`.rms_intervals`), while the
timelapse holds ``frames_per_night`` frames taken ``frame_interval_s`` apart in a few bursts
from the start of capture to its end (:mod:`.archive_plan`), so a short demo video still
samples clear spells, cloudy spells and the edges between them. Frames are drawn by
:mod:`.sky_render` and encoded RMS-style by :mod:`data_prep.video.timelapse_encode`; every name
is produced by :mod:`gmn_base`. The same seed gives the same frame-time maps, interval files
and truth; a rerun resumes.
"""

from __future__ import annotations

import json
import logging
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from data_prep.synthetic.archive_plan import SpanPlan, plan_archive, scenes
from data_prep.synthetic.clouds import cloud_grid, sample_periodic
from data_prep.synthetic.settings import SyntheticSettings, station_ids
from data_prep.synthetic.sky_render import (
    day_look,
    draw_overlay,
    night_look,
    overlay_font,
    overlay_text,
    render_day,
    render_night,
)
from data_prep.synthetic.sky_scene import StationScene
from data_prep.synthetic.truth import (
    TRUTH_COLUMNS,
    TRUTH_FILE,
    compute_intervals,
    frame_truths,
    sky_seconds,
    truth_rows,
)
from data_prep.video.timelapse_encode import encode_timelapse
from gmn_base.atomic import atomic_path, remove_stale_temporaries, write_csv, write_json, write_text
from gmn_base.frame_times import format_frame_times
from gmn_base.interval_files import interval_file_text

log = logging.getLogger(__name__)

SETTINGS_FILE = "synthetic_settings.json"
# Stored in SETTINGS_FILE. Bump it with any change that alters what an archive holds for given
# settings (frames, frame times, intervals, truth): a rerun then refuses the old archive
# instead of keeping its videos beside new interval files and truth.
GENERATOR_VERSION = 4


@dataclass(frozen=True)
class GeneratedTimelapse:
    """One timelapse written (paths relative to the archive root)."""

    station: str
    night: date               # the capture session's night id
    kind: str                 # "night" or "day"
    folder: str
    video: str
    frame_times_file: str
    frame_count: int
    legacy: bool
    overcast: bool
    package: str | None = None  # the .tar the video and map lie in, if packed
    session: str = ""           # the capture session it shows (night) or follows (day)
    captures: int = 0           # night: capture folders of the session (2 after a restart)


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
    cloudy_nights: int                # capture sessions without a clear interval
    rendered: int                     # timelapses encoded by this call (others were complete)
    seconds: float = 0.0

    def path(self, relative: str) -> Path:
        return self.out_dir / relative

    def truth(self) -> pd.DataFrame:
        return pd.read_csv(self.truth_csv, dtype={"night": str, "label": str}, keep_default_na=False)


@dataclass
class _Written:
    """What :func:`generate_archive` has written so far."""

    timelapses: list[GeneratedTimelapse] = field(default_factory=list)
    truth_rows: list[dict] = field(default_factory=list)
    interval_files: list[str] = field(default_factory=list)
    rendered: int = 0
    cloudy_nights: int = 0


def render_frames(plan: SpanPlan, scene: StationScene, grids: Sequence[np.ndarray],
                  settings: SyntheticSettings) -> Iterator[np.ndarray]:
    """The timelapse's frames, one at a time (gray at night, RGB by day), with the overlay."""
    h, w = settings.height, settings.width
    look_rng = np.random.default_rng([*plan.seed_key, 11])
    font = overlay_font(h)
    yy, xx, _ = cloud_grid(scene, h, w)
    if plan.kind == "night":
        look = night_look(scene, look_rng, h, w, settings.moon_probability)
    else:
        day = day_look(scene, look_rng, h, w)
    for index, (ts, alpha) in enumerate(zip(plan.frame_times, grids)):
        noise_rng = np.random.default_rng([*plan.seed_key, 13, index])
        t = (ts - plan.start).total_seconds()
        detail = sample_periodic(plan.clouds.small, yy - plan.clouds.wind_small[0] * t,
                                     xx - plan.clouds.wind_small[1] * t)
        if plan.kind == "night":
            frame = render_night(scene, plan.clouds, look, sky_seconds(ts), t, alpha, noise_rng,
                                     detail)
        else:
            frame = render_day(plan.clouds, day, t, alpha, detail, noise_rng)
        yield draw_overlay(frame, overlay_text(plan.station, ts), font)


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


def _write_captures(out_dir: Path, plan: SpanPlan, written: _Written) -> None:
    """A night's night folders (each name of each capture) and each capture's interval file,
    written as RMS writes it."""
    for folder in plan.night_folders_rel():
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    for rel, intervals in zip(plan.interval_files_rel(), plan.capture_intervals, strict=True):
        write_text(out_dir / rel, interval_file_text(plan.station, intervals))
        written.interval_files.append(rel)


def _pack(video: Path, frame_times: Path, package: Path) -> None:
    """Pack the pair into an uncompressed ``.tar`` by base name, as RMS does, then drop them."""
    with atomic_path(package) as tmp, tarfile.open(tmp, "w") as tar:
        for path in (video, frame_times):
            tar.add(path, arcname=path.name)
    video.unlink()
    frame_times.unlink()


def _write_span(out_dir: Path, plan: SpanPlan, scene: StationScene, settings: SyntheticSettings,
                written: _Written) -> None:
    """One timelapse: its captures' folders and interval files (night), its video and
    frame-time map (or their package) unless already there, its truth rows."""
    if plan.kind == "night":
        compute_intervals(plan, scene, settings)
        written.cloudy_nights += not plan.intervals
        _write_captures(out_dir, plan, written)
    truths, grids = frame_truths(plan, scene, settings.height, settings.width)
    video, frame_times = out_dir / plan.video_rel(), out_dir / plan.frame_times_rel()
    package = out_dir / plan.package_rel() if plan.package_rel() else None
    done = package.exists() if package else video.exists() and frame_times.exists()
    if not done:
        remove_stale_temporaries(video.parent)  # left by a killed run
        count = encode_timelapse(video, render_frames(plan, scene, grids, settings),
                                 crf=settings.crf, preset=settings.preset,
                                 gray=plan.kind == "night")
        if count != len(plan.frame_times):
            raise RuntimeError(f"{video}: encoded {count} frames, planned {len(plan.frame_times)}")
        write_json(frame_times, format_frame_times(plan.frame_times, plan.suffix))
        if package:
            _pack(video, frame_times, package)
        written.rendered += 1
    written.truth_rows.extend(truth_rows(plan, truths))
    written.timelapses.append(GeneratedTimelapse(
        plan.station, plan.night, plan.kind, plan.folder_rel(), plan.video_rel(),
        plan.frame_times_rel(), len(plan.frame_times), plan.variant.legacy, plan.overcast,
        plan.package_rel(), plan.session_id, len(plan.capture_starts),
    ))


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
    ``locations``, ``country_folder``, ``restarts``, ``bursts_per_night``, ``overcast_fraction``, ``moon_probability``, ...).
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
    written = _Written()
    for plan in tqdm(plan_archive(settings), desc="synthetic timelapses", unit="timelapse",
                     disable=not progress):
        _write_span(out_dir, plan, station_scenes[plan.station], settings, written)
    truth = pd.DataFrame(written.truth_rows, columns=TRUTH_COLUMNS)
    write_csv(out_dir / TRUTH_FILE, truth)
    archive = SyntheticArchive(
        out_dir=out_dir,
        stations=settings.stations,
        timelapses=tuple(written.timelapses),
        interval_files=tuple(written.interval_files),
        truth_csv=out_dir / TRUTH_FILE,
        frames=len(truth),
        clear_frames=int(((truth["kind"] == "night") & (truth["label"] == "clear")).sum()),
        cloudy_nights=written.cloudy_nights,
        rendered=written.rendered,
        seconds=time.monotonic() - began,
    )
    log.info("synthetic archive %s: %d timelapses (%d rendered), %d frames, %d clear night frames, "
             "%d all-cloudy nights", out_dir, len(archive.timelapses), archive.rendered,
             archive.frames, archive.clear_frames, archive.cloudy_nights)
    return archive
