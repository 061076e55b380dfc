"""``converter=gemini`` over a whole run: many images at once under one request budget.

:class:`GeminiRun` hands the images to ``2 * converter.concurrency`` worker threads, each
taking the next image itself, converting it (:class:`~data_prep.converters.gemini.
GeminiDayConverter`, which holds at most ``concurrency`` requests in flight and paces all of
them under ``converter.rpm``) and saving its PNG; the calling thread alone records the
outcomes in the manifest and the summary. A fatal error (key rejected, model not found) stops
every worker before its next request; so does Ctrl-C, after which the outcomes that finished
meanwhile are still recorded. A dry run (:func:`log_dry_run`) says what would be sent and
sends nothing.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from omegaconf import DictConfig
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from data_prep.converters.gemini import Conversion, GeminiDayConverter, make_client
from data_prep.converters.gemini_settings import (
    API_KEY_VARIABLES_TEXT,
    GeminiSettings,
    find_api_key,
    redactor,
    settings_from_config,
)
from data_prep.converters.night_images import read_night, save_png
from data_prep.converters.night_to_day_manifest import ManifestRow, ManifestWriter, WorkPlan
from data_prep.converters.rate_limit import RequestPacer
from data_prep.summary import StepSummary

log = logging.getLogger(__name__)

# One image's outcome: its name, the conversion (None: its night image was unreadable) and
# why it was unreadable.
Outcome = tuple[str, Conversion | None, str]


def log_dry_run(settings: GeminiSettings, plan: WorkPlan, night_dir: Path,
                key_present: bool) -> None:
    """Log the endpoint, models, prompts and every image that would be sent."""
    log.info("dry run: nothing is sent and nothing is written")
    log.info("endpoint: %s, api_version: %s, API key in environment: %s",
             settings.base_url or "SDK default", settings.api_version or "SDK default",
             "yes" if key_present else f"NO (set {API_KEY_VARIABLES_TEXT})")
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


class GeminiRun:
    """One run's conversions: the shared converter and stop flag, the work queue, the outcomes
    queue, and the bookkeeping (manifest rows, summary counts, the first fatal error)."""

    def __init__(self, converter: GeminiDayConverter, night_dir: Path, day_dir: Path,
                 writer: ManifestWriter, summary: StepSummary):
        self.converter = converter
        self.settings = converter.settings
        self.redact: Callable[[str], str] = converter.redact
        self.stop = converter.stop
        self.night_dir, self.day_dir = night_dir, day_dir
        self.writer, self.summary = writer, summary
        self.fatal: str | None = None
        self.work: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.outcomes: queue.SimpleQueue[Outcome | None] = queue.SimpleQueue()

    # --- worker threads ---

    def convert_one(self, name: str) -> Outcome:
        try:
            data, night = read_night(self.night_dir / name)
        except (OSError, UnidentifiedImageError) as exc:
            return name, None, f"unreadable image: {exc}"
        conversion = self.converter.convert(data, night.size, label=name)
        if conversion.status == "done":
            save_png(conversion.image, self.day_dir / name)  # PNG before its manifest row
        return name, conversion, ""

    def worker(self) -> None:
        """Take images until none are left or the run stops; ``None`` on the outcomes queue
        says this worker ended."""
        try:
            while not self.stop.is_set():
                try:
                    name = self.work.get_nowait()
                except queue.Empty:
                    return
                self.outcomes.put(self.convert_one(name))
        except BaseException:
            self.stop.set()  # a bug in one worker stops the others; its future re-raises it
            raise
        finally:
            self.outcomes.put(None)

    # --- the calling thread ---

    def _row(self, name: str, status: str, requests: int, conversion: Conversion | None,
             message: str) -> ManifestRow:
        previous = self.writer.rows.get(name)
        attempts = requests + (previous.attempts if previous is not None else 0)
        return ManifestRow(name, status, attempts, bool(conversion and conversion.verified),
                           bool(conversion and conversion.corrected), self.settings.image_model,
                           self.settings.prompt_hash, self.redact(message))

    def record(self, name: str, conversion: Conversion | None, unreadable: str) -> None:
        """One outcome into the manifest and the summary; a fatal one stops the run."""
        summary = self.summary
        if conversion is None:
            self.writer.record(self._row(name, "failed", 0, None, unreadable))
            summary.count("failed")
            summary.add_failure(f"{self.night_dir / name}: {unreadable}")
            return
        summary.count("requests", conversion.requests)
        if conversion.status == "stopped":
            if conversion.requests:  # money was spent: keep the count
                self.writer.record(self._row(name, "failed", conversion.requests, conversion,
                                             conversion.message))
                summary.count("failed")
            else:
                summary.count("not_sent")
            return
        self.writer.record(self._row(name, conversion.status, conversion.requests, conversion,
                                     conversion.message))
        summary.count(conversion.status)
        message = self.redact(conversion.message)
        if conversion.status == "failed" and not conversion.fatal:
            summary.add_failure(f"{name}: {message}")
        elif conversion.status == "blocked":
            log.warning("%s blocked: %s", name, message)
        elif conversion.message:
            log.info("%s: %s", name, message)
        if conversion.fatal and self.fatal is None:
            self.fatal = self.redact(conversion.fatal)
            log.error("stopping: %s", self.fatal)
            self.stop.set()

    def _collect(self, running: int, progress: tqdm) -> None:
        while running:
            outcome = self.outcomes.get()
            if outcome is None:
                running -= 1
            else:
                self.record(*outcome)
                progress.update(1)

    def run(self, todo: list[str]) -> None:
        """Convert ``todo``; after a fatal error the images nobody took stay unsent."""
        for name in todo:
            self.work.put(name)
        # Twice as many workers as request slots: while one decodes, checks or saves an image,
        # another already waits with the next request, so the slots stay busy.
        n_workers = 2 * self.settings.concurrency
        pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="night_to_day")
        workers: list[Future] = [pool.submit(self.worker) for _ in range(n_workers)]
        progress = tqdm(total=len(todo), desc="night_to_day (gemini)", unit="image")
        try:
            self._collect(len(workers), progress)
        except BaseException:
            self.stop.set()  # interrupted: in-flight requests finish, nothing new is sent
            pool.shutdown(wait=True)
            while not self.outcomes.empty():  # keep what finished meanwhile
                outcome = self.outcomes.get()
                if outcome is not None:
                    self.record(*outcome)
            raise
        finally:
            pool.shutdown(wait=True)
            progress.close()
            self.writer.flush()
        for future in workers:
            future.result()  # re-raises an unexpected error of a worker
        if self.fatal is not None:
            if self.work.qsize():
                self.summary.count("not_sent", self.work.qsize())
            self.summary.add_failure(self.fatal)


def run_gemini(cfg: DictConfig, api_key: str | None, plan: WorkPlan, night_dir: Path,
               day_dir: Path, writer: ManifestWriter, summary: StepSummary) -> None:
    """``converter=gemini`` for ``plan.todo`` (or, with ``converter.dry_run``, what it would
    send). ``api_key`` was read by the step before anything was touched."""
    settings = settings_from_config(cfg.converter)
    if cfg.converter.dry_run:
        log_dry_run(settings, plan, night_dir, find_api_key(os.environ) is not None)
        summary.count("would_send", len(plan.todo))
        return
    if not plan.todo:
        return
    # httpx logs every request line at INFO; the per-image outcome is what a user needs.
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if api_key is None:
        raise ValueError("converter=gemini needs the API key read by the step before it starts")
    redact = redactor(api_key)
    converter = GeminiDayConverter(make_client(api_key, settings), settings,
                                   RequestPacer(settings.rpm), threading.Event(), redact)
    GeminiRun(converter, night_dir, day_dir, writer, summary).run(plan.todo)
