"""``python -m data_prep.find``: each station's capture sessions, and which of them had clear sky.

Lists every station's night folders under ``source.flux_root`` (every suffix in
``source.night_folder_suffixes``) and the timelapse names under ``source.video_root``, groups
them into capture sessions and keeps ``find.last_n`` sessions per station, or the night ids
between ``find.since`` and ``find.until`` (:mod:`data_prep.nights.night_listing`). Then it
fetches each capture's ``flux_time_intervals.json`` with ``find.workers`` parallel connections
into ``find.interval_dir`` as ``{night folder}_flux_time_intervals.json`` (a local copy is
fetched again when the server's file changed size or mtime), keeps all-cloudy ones in
``all_cloudy_time_intervals/``, ties every file to its session, and writes
``good_weather_dates.json`` (night ids with at least one clear interval) and ``nights.csv``
(one row per session), both tagged with the night rule. A capture without an interval file is
reported and counted (its frames are never labelled cloudy); a file that cannot be tied to a
session is a warning naming it, counted. The library: :mod:`data_prep.nights.night_listing`,
:mod:`data_prep.nights.interval_files`, :mod:`data_prep.nights.nights_table`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.nights.interval_files import (
    interval_folders,
    interval_jobs,
    local_interval_file,
    sort_all_cloudy,
)
from data_prep.nights.night_listing import NightWindow, find_sessions
from data_prep.nights.nights_table import good_weather_dates, night_rows, nights_csv_text
from data_prep.nights.session_index import report_untied
from data_prep.remote.connect import night_folder_suffixes, source_factory
from data_prep.remote.fetch import settings_from_config
from data_prep.remote.fetch_pool import fetch_all
from data_prep.remote.host_keys import HostKeyError
from data_prep.remote.source import SourceError, SourceUnreachable
from data_prep.step_lock import step_lock
from data_prep.summary import StepSummary, run_step
from gmn_base.atomic import remove_stale_temporaries, write_json, write_text
from gmn_base.command_line import guard_secrets
from gmn_base.errors import GMNFormatError
from gmn_base.interval_files import ClearIntervals, load_interval_file
from gmn_base.night_folders import NightFolder
from gmn_base.session_intervals import SessionIntervals, tie_interval_files
from gmn_base.sessions import CaptureSession
from gmn_base.station_time import parse_night

log = logging.getLogger(__name__)
SOURCE_ERRORS = (SourceError, HostKeyError, SourceUnreachable)


def night_window(fcfg: DictConfig) -> NightWindow:
    """``find.since``, ``find.until`` (YYYYMMDD night ids) and ``find.last_n`` (sessions)."""
    return NightWindow(
        since=parse_night(fcfg.since, "find.since") if fcfg.get("since") else None,
        until=parse_night(fcfg.until, "find.until") if fcfg.get("until") else None,
        last_n=int(fcfg.last_n) if fcfg.get("last_n") is not None else None)


def _fetch_interval_files(cfg: DictConfig, factory, folders: list[NightFolder],
                          summary: StepSummary) -> None:
    interval_dir = Path(str(cfg.find.interval_dir))
    jobs = interval_jobs(folders, str(cfg.source.flux_root), interval_dir)
    had_copy = {job.local_path for job in jobs if job.local_path.exists()}
    interval_dir.mkdir(parents=True, exist_ok=True)
    settings = replace(settings_from_config(cfg.download), workers=int(cfg.find.workers))
    for result in fetch_all(jobs, factory, settings, description="interval files",
                            expect_small=True):
        if result.status == "downloaded" and result.job.local_path in had_copy:
            log.info("%s: the server's copy changed (size or mtime); fetched again",
                     result.job.local_path)
            summary.count("fetched_again")
        elif result.status == "downloaded":
            summary.count("fetched")
        elif result.status == "skipped":
            summary.count("already_fetched")
        elif result.status == "failed":
            summary.add_failure(result.error)


def read_fetched(folders: list[NightFolder], interval_dir: Path, summary: StepSummary
                 ) -> tuple[list[tuple[Path, ClearIntervals]], dict[str, str]]:
    """The local interval file of each capture, parsed, and their names relative to
    ``interval_dir`` by capture id; a malformed file is a failure naming it."""
    files, names = [], {}
    for folder in folders:
        path = local_interval_file(interval_dir, folder)
        if path is None:
            continue
        try:
            files.append((path, load_interval_file(path)))
        except GMNFormatError as exc:
            summary.add_failure(str(exc))
            continue
        names[folder.capture_id] = str(path.relative_to(interval_dir))
    return files, names


def report_missing(tied: dict[str, SessionIntervals], summary: StepSummary) -> None:
    """Captures without an interval file: a warning each, naming the capture; counted."""
    for found in tied.values():
        for capture in found.missing:
            log.warning("no interval file for capture %s (station %s, night %s): its frames "
                        "will not be labelled, never guessed cloudy", capture,
                        found.session.station, found.session.night_id)
            summary.count("captures_without_interval_file")


def _write_tables(fcfg: DictConfig, sessions: list[CaptureSession],
                  tied: dict[str, SessionIntervals], names: dict[str, str],
                  summary: StepSummary) -> None:
    rows = night_rows(tied, names)
    good = good_weather_dates(rows, sorted({s.station for s in sessions}))
    for table in (Path(str(fcfg.good_weather_dates)), Path(str(fcfg.nights_csv))):
        remove_stale_temporaries(table.parent, target=table.name)  # left by a killed run
    write_json(Path(str(fcfg.good_weather_dates)), good)
    write_text(Path(str(fcfg.nights_csv)), nights_csv_text(rows))
    summary.count("good_nights", sum(r.clear for r in rows))
    summary.count("all_cloudy_nights", sum(r.all_cloudy for r in rows))
    summary.outputs.update({"intervals": str(Path(str(fcfg.interval_dir))),
                            "nights": str(fcfg.nights_csv),
                            "good_weather_dates": str(fcfg.good_weather_dates)})


def run(cfg: DictConfig) -> StepSummary:
    """One find run per data folder at a time (:mod:`data_prep.step_lock`)."""
    with step_lock("find", Path(str(cfg.paths.data_dir))):
        return find_nights(cfg)


def find_nights(cfg: DictConfig) -> StepSummary:
    started = time.monotonic()
    summary = StepSummary("find")
    window = night_window(cfg.find)
    suffixes = night_folder_suffixes(cfg.source)
    factory = source_factory(cfg.source)
    try:
        source = factory()
    except SOURCE_ERRORS as exc:
        summary.add_failure(str(exc))
        return summary
    try:
        sessions = find_sessions(source, str(cfg.source.flux_root), str(cfg.source.video_root),
                                 list(cfg.source.get("stations") or []), suffixes, window,
                                 summary)
    finally:
        source.close()
    folders = interval_folders(sessions)
    try:
        _fetch_interval_files(cfg, factory, folders, summary)
    except SOURCE_ERRORS as exc:
        summary.add_failure(str(exc))
        return summary
    interval_dir = Path(str(cfg.find.interval_dir))
    sorted_files = sort_all_cloudy(interval_dir)
    summary.count("moved_all_cloudy", len(sorted_files.moved))
    if sorted_files.moved_back:
        summary.count("moved_back_with_intervals", len(sorted_files.moved_back))
    files, names = read_fetched(folders, interval_dir, summary)
    tied, untied = tie_interval_files(sessions, files, suffixes)
    report_untied(untied, summary)
    report_missing(tied, summary)
    _write_tables(cfg.find, sessions, tied, names, summary)
    summary.seconds = time.monotonic() - started
    return summary


@guard_secrets
@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    run_step("find", run, cfg, log, user_errors=(SourceError, HostKeyError, ValueError))


if __name__ == "__main__":
    main()
