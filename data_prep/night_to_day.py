"""``python -m data_prep.night_to_day``: restyle each extracted night frame as a daytime frame.

``extracted_night/`` -> ``converted_day/`` (same file names, same size, PNG), with
``night_to_day_manifest.csv`` recording per image its status (done, blocked, failed), the
requests it cost and how it was checked. ``converter=gemini`` asks the Gemini API
(concurrent, rate-limited, retried, star check plus one correction:
:mod:`data_prep.converters.gemini_run`), ``converter=local`` does an offline approximation
(:mod:`data_prep.converters.local_run`), and ``converter=none`` converts nothing (train on
``extracted_night/`` instead). Kill-safe: each PNG and the manifest are written atomically
(PNG first), stale temporaries are removed at start, and a rerun sends nothing for images the
manifest lists as done or blocked (:func:`data_prep.converters.night_to_day_manifest.plan_work`).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.converters.gemini_settings import (
    API_KEY_VARIABLES_TEXT,
    MissingAPIKeyError,
    api_key_from_env,
)
from data_prep.converters.local_run import run_local
from data_prep.converters.night_images import DAY_DIR, NIGHT_DIR, list_night_images, remove_stale
from data_prep.converters.night_to_day_manifest import (
    MANIFEST_NAME,
    ManifestError,
    ManifestWriter,
    WorkPlan,
    plan_work,
    read_manifest,
)
from data_prep.step_lock import step_lock
from data_prep.summary import StepSummary, run_step
from gmn_base.command_line import guard_secrets

log = logging.getLogger(__name__)

CONVERTERS = ("gemini", "local", "none")


def check_converter(cfg: DictConfig) -> str:
    """``converter.name``, refusing an unknown one and an API key in the config."""
    converter = str(cfg.converter.name)
    if converter not in CONVERTERS:
        raise ValueError(f"converter.name={converter!r}: expected gemini, local or none")
    for secret_key in ("api_key", "key"):
        if secret_key in cfg.converter:
            raise ValueError(f"converter.{secret_key} is set: the API key is read only from "
                             f"{API_KEY_VARIABLES_TEXT}; remove it from the command "
                             "line or config (Hydra has saved it in the run folder)")
    return converter


def work_plan(cfg: DictConfig, names: list[str], manifest: dict, day_dir: Path, local: bool,
              summary: StepSummary) -> WorkPlan:
    """What to convert in this run (``converter.retry_blocked``, ``converter.max_images``)."""
    outputs = {p.name for p in day_dir.glob("*.png")} if day_dir.is_dir() else set()
    max_images = cfg.converter.get("max_images")
    plan = plan_work(names, manifest, local=local,
                     retry_blocked=bool(cfg.converter.get("retry_blocked", False)),
                     outputs=outputs, max_images=None if max_images is None else int(max_images))
    summary.count("skipped_done", plan.skipped_done)
    summary.count("skipped_blocked", plan.skipped_blocked)
    if plan.capped:
        summary.count("left_by_max_images", plan.capped)
        log.info("converter.max_images=%s: %d image(s) left for a later run", max_images,
                 plan.capped)
    return plan


def run(cfg: DictConfig) -> StepSummary:
    """One night_to_day run per data folder at a time (:mod:`data_prep.step_lock`)."""
    with step_lock("night_to_day", Path(cfg.paths.data_dir)):
        return convert(cfg)


def convert(cfg: DictConfig) -> StepSummary:
    started = time.monotonic()
    summary = StepSummary(step="night_to_day")
    data_dir = Path(cfg.paths.data_dir)
    night_dir, day_dir = data_dir / NIGHT_DIR, data_dir / DAY_DIR
    manifest_path = data_dir / MANIFEST_NAME
    if str(cfg.converter.name) == "none":
        log.info("converter=none: nothing converted; train on the night frames with "
                 "data.image_dir=%s", night_dir)
        summary.outputs["image_dir"] = str(night_dir)
        return summary
    converter = check_converter(cfg)
    dry_run = bool(cfg.converter.get("dry_run", False))
    # The key is read before anything is touched: a missing one changes nothing on disk.
    api_key = api_key_from_env(os.environ) if converter == "gemini" and not dry_run else None
    names = list_night_images(night_dir, summary)
    if not dry_run and (removed := remove_stale(day_dir, data_dir)):
        log.info("removed %d temporary file(s) left by a killed run", removed)
    manifest = read_manifest(manifest_path)
    plan = work_plan(cfg, names, manifest, day_dir, converter == "local", summary)
    if not dry_run:
        for status in ("done", "blocked", "failed"):
            summary.count(status, 0)  # the closing line always shows all three
        day_dir.mkdir(parents=True, exist_ok=True)
    writer = ManifestWriter(manifest_path, dict(manifest),
                            min_interval_s=0.0 if converter == "gemini" else 2.0)
    if converter == "local" and dry_run:
        log.info("dry run: would day-style %d image(s) locally", len(plan.todo))
        summary.count("would_convert", len(plan.todo))
    elif converter == "local":
        try:
            run_local(cfg, plan, night_dir, day_dir, writer, summary)
        finally:
            writer.flush()
    else:
        from data_prep.converters.gemini_run import run_gemini  # loads google-genai

        run_gemini(cfg, api_key, plan, night_dir, day_dir, writer, summary)
    if not dry_run:
        summary.outputs["converted_day"] = str(day_dir)
        summary.outputs["manifest"] = str(manifest_path)
    summary.seconds = time.monotonic() - started
    return summary


@guard_secrets
@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    run_step("night_to_day", run, cfg, log,
             user_errors=(MissingAPIKeyError, FileNotFoundError, ManifestError, ValueError))


if __name__ == "__main__":
    main()
