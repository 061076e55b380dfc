"""Restyle each extracted night frame as a daytime frame: ``extracted_night/`` ->
``converted_day/`` (same file names, same size, PNG), with ``night_to_day_manifest.csv``
recording per image its status (done, blocked, failed), the requests it cost and how it was
checked. ``converter=gemini`` asks the Gemini API (concurrent, rate-limited, retried, star
check plus one correction), ``converter=local`` does an offline approximation, and
``converter=none`` converts nothing (train on ``extracted_night/`` instead). Kill-safe: each
PNG and the manifest are written atomically (PNG first), stale temporaries are removed at
start, and a rerun sends nothing for images the manifest lists as done or blocked.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from data_prep.converters.local_day_style import (
    LOCAL_MODEL,
    DayStyleParams,
    calibrated_clear_star_density,
    day_style,
    frame_star_density,
    params_from_config,
    wants_auto_density,
)
from data_prep.converters.manifest import (
    ManifestError,
    ManifestRow,
    read_manifest,
    write_manifest,
)
from data_prep.summary import StepSummary, run_step
from gmn_base.atomic import TEMP_SUFFIX, atomic_path, remove_stale_temporaries
from gmn_base.formats import GMNFormatError, parse_image_name

log = logging.getLogger(__name__)

NIGHT_DIR = "extracted_night"
DAY_DIR = "converted_day"
MANIFEST = "night_to_day_manifest.csv"


@dataclass(frozen=True)
class Plan:
    todo: list[str]
    skipped_done: int
    skipped_blocked: int
    capped: int  # pending images left for a later run by converter.max_images


def is_local_row(row: ManifestRow) -> bool:
    return row.model == LOCAL_MODEL


def plan_work(names: Iterable[str], manifest: Mapping[str, ManifestRow], local: bool,
              retry_blocked: bool, outputs: set[str], max_images: int | None) -> Plan:
    """Which images to convert now. A ``done`` row counts while its PNG exists, except a local
    one in a Gemini run (the offline stand-in does not stop the real conversion); a Gemini
    image is never replaced by a local one (it was paid for). A ``blocked`` row of the same
    converter is final unless ``retry_blocked``; ``failed`` and unseen images are todo."""
    todo, done, blocked = [], 0, 0
    for name in sorted(names):
        row = manifest.get(name)
        if row is not None:
            same_converter = is_local_row(row) == local
            if row.status == "done" and name in outputs and (same_converter or local):
                done += 1
                continue
            if row.status == "blocked" and same_converter and not retry_blocked:
                blocked += 1
                continue
        todo.append(name)
    capped = 0
    if max_images is not None and len(todo) > max_images:
        capped = len(todo) - max_images
        todo = todo[:max_images]
    return Plan(todo, done, blocked, capped)


class ManifestWriter:
    """Holds the manifest rows and rewrites the file atomically, at most every
    ``min_interval_s`` (0: after every row) and on :meth:`flush`."""

    def __init__(self, path: Path, rows: dict[str, ManifestRow], min_interval_s: float = 0.0):
        self.path = path
        self.rows = rows
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self._dirty = False

    def record(self, row: ManifestRow) -> None:
        self.rows[row.image_filename] = row
        self._dirty = True
        if time.monotonic() - self._last >= self.min_interval_s:
            self.flush()

    def flush(self) -> None:
        if self._dirty:
            write_manifest(self.path, self.rows)
            self._dirty = False
            self._last = time.monotonic()


def _list_night_images(night_dir: Path, summary: StepSummary) -> list[str]:
    if not night_dir.is_dir():
        raise FileNotFoundError(f"{night_dir} does not exist: run the extract step first "
                                "(python -m data_prep.extract) or set paths.data_dir")
    names = []
    for path in sorted(night_dir.glob("*.png")):
        if path.name.startswith("."):
            continue
        try:
            parse_image_name(path.name, source=night_dir)
        except GMNFormatError as exc:
            summary.count("bad_name")
            summary.add_failure(str(exc))
            continue
        names.append(path.name)
    return names


def _remove_stale(day_dir: Path, data_dir: Path) -> int:
    removed = remove_stale_temporaries(day_dir)
    for tmp in data_dir.glob(f".{MANIFEST}.*{TEMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def _read_night(path: Path) -> tuple[bytes, Image.Image]:
    data = path.read_bytes()
    image = Image.open(path)
    image.load()
    if image.format != "PNG":  # the bytes are sent as image/png
        raise UnidentifiedImageError(f"{image.format} data in a .png file")
    return data, image


def save_png(image: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


# --- converter=local -------------------------------------------------------------------------


def _station_of(name: str) -> str | None:
    try:
        return parse_image_name(name).station
    except GMNFormatError:
        return None


def clear_frames_by_station(labels_csv: Path) -> dict[str, list[str]]:
    """The image names labelled clear in ``labels_csv`` (label step's output), by station."""
    by_station: dict[str, list[str]] = {}
    with labels_csv.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"image_filename", "label", "station"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{labels_csv}: no column(s) {', '.join(sorted(missing))} "
                             f"(expected the label step's output)")
        for row in reader:
            if row["label"] == "clear":
                by_station.setdefault(row["station"], []).append(row["image_filename"])
    return by_station


def _clear_star_densities(cfg: DictConfig, params: DayStyleParams, night_dir: Path,
                          stations: set[str], summary: StepSummary) -> dict[str, float]:
    """``converter.clear_star_density: auto``: each station's value, measured on up to
    ``converter.calibration_frames`` of its frames labelled clear. A station without any
    keeps the default, with a warning."""
    labels_csv = Path(cfg.label.output)
    clear = clear_frames_by_station(labels_csv) if labels_csv.is_file() else {}
    limit = max(1, int(cfg.converter.get("calibration_frames", 40)))
    measured: dict[str, float] = {}
    for station in sorted(stations):
        names = sorted(n for n in clear.get(station, []) if (night_dir / n).is_file())
        densities = []
        for name in names[::max(1, -(-len(names) // limit))]:  # evenly spread over its nights
            try:
                _, night = _read_night(night_dir / name)
            except (OSError, UnidentifiedImageError):
                continue  # counted as failed when it is converted
            densities.append(frame_star_density(np.asarray(night.convert("L")), params))
        value = calibrated_clear_star_density(densities)
        if value is None:
            log.warning("converter=local: no readable frames labelled clear for station %s in "
                        "%s: clear_star_density=%.2f (the default; set "
                        "converter.clear_star_density for this camera)", station, labels_csv,
                        params.clear_star_density)
            summary.count("stations_default_density")
            continue
        measured[station] = value
        log.info("converter=local: station %s clear_star_density=%.2f from %d frame(s) "
                 "labelled clear", station, value, len(densities))
        summary.count("stations_calibrated")
    return measured


def _run_local(cfg: DictConfig, plan: Plan, night_dir: Path, day_dir: Path,
               writer: ManifestWriter, summary: StepSummary) -> None:
    params = params_from_config(cfg.converter)
    by_station: dict[str | None, DayStyleParams] = {None: params}
    if wants_auto_density(cfg.converter) and plan.todo:
        stations = {s for s in map(_station_of, plan.todo) if s is not None}
        for station, value in _clear_star_densities(cfg, params, night_dir, stations,
                                                    summary).items():
            by_station[station] = replace(params, clear_star_density=value)
    hashes = {p: hashlib.sha256(repr(p).encode()).hexdigest()[:12] for p in by_station.values()}
    for name in tqdm(plan.todo, desc="night_to_day (local)", unit="image"):
        station_params = by_station.get(_station_of(name), params)
        params_hash = hashes[station_params]
        try:
            _, night = _read_night(night_dir / name)
        except (OSError, UnidentifiedImageError) as exc:
            writer.record(ManifestRow(name, "failed", 0, False, False, LOCAL_MODEL, params_hash,
                                      f"unreadable image: {exc}"))
            summary.count("failed")
            summary.add_failure(f"{night_dir / name}: unreadable image ({exc})")
            continue
        save_png(day_style(night, station_params), day_dir / name)
        writer.record(ManifestRow(name, "done", 0, False, False, LOCAL_MODEL, params_hash, ""))
        summary.count("done")


# --- converter=gemini ------------------------------------------------------------------------


def _dry_run(settings, plan: Plan, night_dir: Path, key_present: bool) -> None:
    log.info("dry run: nothing is sent and nothing is written")
    log.info("endpoint: %s, api_version: %s, API key in environment: %s",
             settings.base_url or "SDK default", settings.api_version or "SDK default",
             "yes" if key_present else "NO (set GEMINI_API_KEY or GOOGLE_API_KEY)")
    log.info("image model %s, prompt: %s", settings.image_model, settings.prompts.day)
    if settings.check_stars:
        log.info("check model %s, prompt: %s", settings.check_model, settings.prompts.check)
        log.info("correction (only when stars remain), prompt: %s", settings.prompts.correct)
    for name in plan.todo:
        path = night_dir / name
        try:
            with Image.open(path) as image:
                shape = f"{image.size[0]}x{image.size[1]} {image.mode}"
        except (OSError, UnidentifiedImageError) as exc:
            shape = f"UNREADABLE ({exc})"
        log.info("would send %s (%s, %d bytes)", name, shape, path.stat().st_size)
    per_image = 2 if settings.check_stars else 1
    log.info("would send %d images: at least %d requests, at %s requests/minute with %d in "
             "flight", len(plan.todo), per_image * len(plan.todo), settings.rpm or "unlimited",
             settings.concurrency)


def _run_gemini(cfg: DictConfig, api_key: str | None, plan: Plan, night_dir: Path,
                day_dir: Path, writer: ManifestWriter, summary: StepSummary) -> None:
    from data_prep.converters.gemini import (
        GeminiDayConverter,
        make_client,
        redactor,
        settings_from_config,
    )
    from data_prep.converters.rate_limit import RequestPacer

    settings = settings_from_config(cfg.converter)
    if cfg.converter.dry_run:
        key_present = bool(os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY"))
        _dry_run(settings, plan, night_dir, key_present)
        summary.count("would_send", len(plan.todo))
        return
    if not plan.todo:
        return
    # httpx logs every request line at INFO; the per-image outcome is what a user needs.
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if api_key is None:
        raise ValueError("converter=gemini needs the API key read by run()")
    redact = redactor(api_key)
    client = make_client(api_key, settings)
    stop = threading.Event()
    pacer = RequestPacer(settings.rpm)
    converter = GeminiDayConverter(client, settings, pacer, stop, redact)

    def convert_one(name: str):
        try:
            data, night = _read_night(night_dir / name)
        except (OSError, UnidentifiedImageError) as exc:
            return None, f"unreadable image: {exc}"
        conversion = converter.convert(data, night.size, label=name)
        if conversion.status == "done":
            save_png(conversion.image, day_dir / name)  # PNG before its manifest row
        return conversion, ""

    def row_for(name: str, status: str, requests: int, conversion, message: str) -> ManifestRow:
        previous = writer.rows.get(name)
        attempts = requests + (previous.attempts if previous is not None else 0)
        return ManifestRow(name, status, attempts,
                           bool(conversion and conversion.verified),
                           bool(conversion and conversion.corrected),
                           settings.image_model, settings.prompt_hash, redact(message))

    fatal: str | None = None

    def record(name: str, conversion, unreadable: str) -> None:
        nonlocal fatal
        if conversion is None:
            writer.record(row_for(name, "failed", 0, None, unreadable))
            summary.count("failed")
            summary.add_failure(f"{night_dir / name}: {unreadable}")
            return
        summary.count("requests", conversion.requests)
        if conversion.status == "stopped":
            if conversion.requests:  # money was spent: keep the count
                writer.record(row_for(name, "failed", conversion.requests, conversion,
                                      conversion.message))
                summary.count("failed")
            else:
                summary.count("not_sent")
            return
        writer.record(row_for(name, conversion.status, conversion.requests, conversion,
                              conversion.message))
        summary.count(conversion.status)
        if conversion.status == "failed" and not conversion.fatal:
            summary.add_failure(f"{name}: {redact(conversion.message)}")
        elif conversion.status == "blocked":
            log.warning("%s blocked: %s", name, redact(conversion.message))
        elif conversion.message:
            log.info("%s: %s", name, redact(conversion.message))
        if conversion.fatal and fatal is None:
            fatal = redact(conversion.fatal)
            log.error("stopping: %s", fatal)
            stop.set()

    # Each worker takes the next image itself, so no worker waits for the manifest writes
    # here; after a stop, images nobody took stay unsent.
    work: queue.SimpleQueue[str] = queue.SimpleQueue()
    for name in plan.todo:
        work.put(name)
    results: queue.SimpleQueue = queue.SimpleQueue()

    def worker() -> None:
        try:
            while not stop.is_set():
                try:
                    name = work.get_nowait()
                except queue.Empty:
                    return
                results.put((name, *convert_one(name)))
        except BaseException:
            stop.set()  # a bug in one worker stops the others; its future re-raises it
            raise
        finally:
            results.put(None)

    # Twice as many workers as request slots: while one decodes, checks or saves an image,
    # another already waits with the next request, so the slots stay busy.
    n_workers = 2 * settings.concurrency
    pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="night_to_day")
    workers = [pool.submit(worker) for _ in range(n_workers)]
    progress = tqdm(total=len(plan.todo), desc="night_to_day (gemini)", unit="image")
    running = len(workers)
    try:
        while running:
            item = results.get()
            if item is None:
                running -= 1
            else:
                record(*item)
                progress.update(1)
    except BaseException:
        stop.set()  # interrupted: in-flight requests finish, nothing new is sent
        pool.shutdown(wait=True)
        while not results.empty():  # keep what finished meanwhile
            item = results.get()
            if item is not None:
                record(*item)
        raise
    finally:
        pool.shutdown(wait=True)
        progress.close()
        writer.flush()
    for future in workers:
        future.result()  # re-raises an unexpected error of a worker
    if fatal is not None:
        unsent = work.qsize()
        if unsent:
            summary.count("not_sent", unsent)
        summary.add_failure(fatal)


# --- the step --------------------------------------------------------------------------------


def run(cfg: DictConfig) -> StepSummary:
    started = time.monotonic()
    summary = StepSummary(step="night_to_day")
    converter = str(cfg.converter.name)
    data_dir = Path(cfg.paths.data_dir)
    night_dir, day_dir = data_dir / NIGHT_DIR, data_dir / DAY_DIR
    manifest_path = data_dir / MANIFEST
    if converter == "none":
        log.info("converter=none: nothing converted; train on the night frames with "
                 "data.image_dir=%s", night_dir)
        summary.outputs["image_dir"] = str(night_dir)
        return summary
    if converter not in ("gemini", "local"):
        raise ValueError(f"converter.name={converter!r}: expected gemini, local or none")

    for secret_key in ("api_key", "key"):
        if secret_key in cfg.converter:
            raise ValueError(f"converter.{secret_key} is set: the API key is read only from "
                             "GEMINI_API_KEY or GOOGLE_API_KEY; remove it from the command "
                             "line or config (Hydra has saved it in the run folder)")
    dry_run = bool(cfg.converter.get("dry_run", False))
    api_key = None
    if converter == "gemini" and not dry_run:
        from data_prep.converters.gemini import api_key_from_env
        api_key = api_key_from_env(os.environ)  # before anything is touched
    names = _list_night_images(night_dir, summary)
    if not dry_run:
        removed = _remove_stale(day_dir, data_dir)
        if removed:
            log.info("removed %d temporary file(s) left by a killed run", removed)
    manifest = read_manifest(manifest_path)
    outputs = {p.name for p in day_dir.glob("*.png")} if day_dir.is_dir() else set()
    max_images = cfg.converter.get("max_images")
    plan = plan_work(names, manifest, local=(converter == "local"),
                     retry_blocked=bool(cfg.converter.get("retry_blocked", False)),
                     outputs=outputs, max_images=None if max_images is None else int(max_images))
    summary.count("skipped_done", plan.skipped_done)
    summary.count("skipped_blocked", plan.skipped_blocked)
    if plan.capped:
        summary.count("left_by_max_images", plan.capped)
        log.info("converter.max_images=%s: %d image(s) left for a later run", max_images,
                 plan.capped)

    if not dry_run:
        for status in ("done", "blocked", "failed"):
            summary.count(status, 0)  # the closing line always shows all three
    writer = ManifestWriter(manifest_path, dict(manifest),
                            min_interval_s=0.0 if converter == "gemini" else 2.0)
    if converter == "local":
        if dry_run:
            log.info("dry run: would day-style %d image(s) locally", len(plan.todo))
            summary.count("would_convert", len(plan.todo))
        else:
            day_dir.mkdir(parents=True, exist_ok=True)
            try:
                _run_local(cfg, plan, night_dir, day_dir, writer, summary)
            finally:
                writer.flush()
    else:
        if not dry_run:
            day_dir.mkdir(parents=True, exist_ok=True)
        _run_gemini(cfg, api_key, plan, night_dir, day_dir, writer, summary)
    if not dry_run:
        summary.outputs["converted_day"] = str(day_dir)
        summary.outputs["manifest"] = str(manifest_path)
    summary.seconds = time.monotonic() - started
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    from data_prep.converters.gemini import MissingAPIKeyError

    run_step("night_to_day", run, cfg, log,
             user_errors=(MissingAPIKeyError, FileNotFoundError, ManifestError, ValueError))


if __name__ == "__main__":
    main()
