"""``python -m data_prep.find``: each station's nights, and which of them had clear sky.

Lists every station's ``_detected`` folders under ``source.flux_root`` (optionally only
``find.last_n`` per station, or nights between ``find.since`` and ``find.until``), fetches
each folder's ``flux_time_intervals.json`` with ``find.workers`` parallel connections into
``find.interval_dir`` as ``{_detected folder}_flux_time_intervals.json``, moves all-cloudy
ones into ``all_cloudy_time_intervals/``, and writes ``good_weather_dates.json`` (nights with
at least one clear interval) and ``nights.csv`` (one row per station-night). Files already
fetched are not fetched again; a folder without an interval file is counted, not failed.
The library: :mod:`data_prep.nights.detected_folders`, :mod:`data_prep.nights.nights_table`.
"""

from __future__ import annotations

import logging
import posixpath
import time
from dataclasses import replace
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.nights.detected_folders import (
    FoundNight,
    NightWindow,
    find_detected,
    interval_jobs,
    read_interval_files,
)
from data_prep.nights.interval_files import move_all_cloudy
from data_prep.nights.nights_table import good_weather_dates, night_rows, nights_csv_text
from data_prep.remote.connect import source_factory
from data_prep.remote.fetch import settings_from_config
from data_prep.remote.fetch_pool import fetch_all
from data_prep.remote.host_keys import HostKeyError
from data_prep.remote.source import SourceError, SourceUnreachable
from data_prep.summary import StepSummary, run_step
from gmn_base.atomic import write_json, write_text
from gmn_base.command_line import guard_secrets
from gmn_base.formats import INTERVAL_FILE_NAME, DetectedFolder, parse_night

log = logging.getLogger(__name__)
SOURCE_ERRORS = (SourceError, HostKeyError, SourceUnreachable)


def night_window(fcfg: DictConfig) -> NightWindow:
    """``find.since``, ``find.until`` (YYYYMMDD) and ``find.last_n``."""
    return NightWindow(
        since=parse_night(fcfg.since, "find.since") if fcfg.get("since") else None,
        until=parse_night(fcfg.until, "find.until") if fcfg.get("until") else None,
        last_n=int(fcfg.last_n) if fcfg.get("last_n") is not None else None)


def _fetch_interval_files(cfg: DictConfig, factory, selected: list[DetectedFolder],
                          summary: StepSummary) -> None:
    interval_dir = Path(str(cfg.find.interval_dir))
    jobs = interval_jobs(selected, str(cfg.source.flux_root), interval_dir, summary)
    interval_dir.mkdir(parents=True, exist_ok=True)
    settings = replace(settings_from_config(cfg.download), workers=int(cfg.find.workers))
    for result in fetch_all(jobs, factory, settings, description="interval files",
                            expect_small=True):
        if result.status == "downloaded":
            summary.count("fetched")
        elif result.status == "missing":
            log.info("no %s in %s", INTERVAL_FILE_NAME, posixpath.dirname(result.job.remote_path))
        elif result.status == "failed":
            summary.add_failure(result.error)


def _write_tables(fcfg: DictConfig, selected: list[DetectedFolder], found: list[FoundNight],
                  summary: StepSummary) -> None:
    rows = night_rows(found)
    good = good_weather_dates(rows, sorted({f.station for f in selected}))
    write_json(Path(str(fcfg.good_weather_dates)), good)
    write_text(Path(str(fcfg.nights_csv)), nights_csv_text(rows))
    summary.count("station_nights", len(rows))
    summary.count("good_nights", sum(not r.all_cloudy for r in rows))
    summary.count("all_cloudy_nights", sum(r.all_cloudy for r in rows))
    summary.outputs.update({"intervals": str(Path(str(fcfg.interval_dir))),
                            "nights": str(fcfg.nights_csv),
                            "good_weather_dates": str(fcfg.good_weather_dates)})


def run(cfg: DictConfig) -> StepSummary:
    started = time.monotonic()
    summary = StepSummary("find")
    window = night_window(cfg.find)
    factory = source_factory(cfg.source)
    try:
        source = factory()
    except SOURCE_ERRORS as exc:
        summary.add_failure(str(exc))
        return summary
    try:
        selected = find_detected(source, str(cfg.source.flux_root),
                                 list(cfg.source.get("stations") or []), window, summary)
    finally:
        source.close()
    try:
        _fetch_interval_files(cfg, factory, selected, summary)
    except SOURCE_ERRORS as exc:
        summary.add_failure(str(exc))
        return summary
    interval_dir = Path(str(cfg.find.interval_dir))
    summary.count("moved_all_cloudy", len(move_all_cloudy(interval_dir).moved))
    _write_tables(cfg.find, selected, read_interval_files(selected, interval_dir, summary),
                  summary)
    summary.seconds = time.monotonic() - started
    return summary


@guard_secrets
@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    run_step("find", run, cfg, log, user_errors=(SourceError, HostKeyError, ValueError))


if __name__ == "__main__":
    main()
