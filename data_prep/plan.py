"""``python -m data_prep.plan``: decide which timelapses to download, write ``download_manifest.csv``.

Reads ``nights.csv`` (the capture sessions ``data_prep.find`` found), lists each station's
timelapses under ``source.video_root`` and files the night ones under the sessions they
overlap (never by the UTC hour). Targets: every session with an interval file (all-cloudy ones
too: they are the overcast examples); with ``plan.only_good_nights`` only sessions with a clear
interval; with ``plan.target_lists`` the sessions that hold the frames reference-format image
lists name; with ``plan.kind=day`` daytime timelapses next to a session with a clear interval,
round-robin across stations up to ``plan.max_videos``. A timelapse's video and frame-time map
(or its ``.tar`` package) become manifest rows: station, night id, kind, remote path, local path
(relative to ``paths.data_dir``), size and mtime. The library:
:mod:`data_prep.nights.timelapse_choice`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.nights.nights_table import NightRow, read_nights_csv, sessions_of
from data_prep.nights.target_lists import read_target_lists, sessions_for_images
from data_prep.nights.timelapse_choice import (
    ChosenTimelapse,
    day_choice,
    download_rows,
    list_station_timelapses,
    night_choice,
    round_robin,
    station_timelapses,
)
from data_prep.remote.connect import source_factory
from data_prep.remote.download_manifest import format_download_manifest
from data_prep.remote.host_keys import HostKeyError
from data_prep.remote.source import RemoteSource, SourceError, SourceUnreachable
from data_prep.summary import StepSummary, format_names, run_step
from gmn_base.atomic import remove_stale_temporaries, write_text
from gmn_base.command_line import guard_secrets
from gmn_base.image_names import format_image_name
from gmn_base.sessions import CaptureSession, SessionLookup

log = logging.getLogger(__name__)


def wanted_sessions(pcfg: DictConfig, rows: list[NightRow], sessions: list[CaptureSession],
                    kind: str, summary: StepSummary) -> set[str]:
    """The ids of the sessions to fetch timelapses for: those with an interval file
    (``plan.only_good_nights``: a clear one; daytime test frames only beside clear sessions),
    narrowed to the sessions holding the frames of ``plan.target_lists``."""
    good_only = bool(pcfg.only_good_nights) if kind == "night" else True
    without = [r for r in rows if not r.has_intervals]
    if without:
        summary.count("sessions_without_intervals", len(without))
    wanted = {r.session for r in rows if r.has_intervals and (r.clear or not good_only)}
    if pcfg.get("target_lists"):
        images = read_target_lists(list(pcfg.target_lists), "plan.target_lists", summary)
        summary.count("target_images", len(images))
        held, unmatched = sessions_for_images(images, SessionLookup(sessions),
                                              {r.station for r in rows})
        if unmatched:
            names = [format_image_name(i.station, i.timestamp) for i in unmatched]
            summary.add_failure(f"plan.target_lists: {len(names)} listed image(s) lie in no "
                                f"capture session of {pcfg.nights_csv}: {format_names(names)} "
                                "(widen find.since/until/last_n and rerun find)")
        wanted &= held
    return wanted


def choose(source: RemoteSource, scfg: DictConfig, pcfg: DictConfig, kind: str,
           sessions: list[CaptureSession], wanted: set[str], summary: StepSummary
           ) -> tuple[list[ChosenTimelapse], dict]:
    """The timelapses to fetch, and each station's listing (for their files)."""
    by_station: dict[str, list[ChosenTimelapse]] = {}
    listings = {}
    for station in sorted({s.station for s in sessions if s.session_id in wanted}):
        listing = list_station_timelapses(source, str(scfg.video_root), station, summary)
        if listing is None:
            continue
        listings[station] = listing
        lapses = station_timelapses(listing[1], station)
        own = [s for s in sessions if s.station == station]
        pick = night_choice if kind == "night" else day_choice
        by_station[station] = pick(lapses, own, wanted)
    if kind == "day":
        max_videos = int(pcfg.max_videos) if pcfg.get("max_videos") is not None else None
        return round_robin(by_station, max_videos), listings
    chosen = [c for s in sorted(by_station) for c in by_station[s]]
    summary.count("nights_without_timelapse",
                  len(wanted - {c.session.session_id for c in chosen}))
    return chosen, listings


def run(cfg: DictConfig) -> StepSummary:
    started = time.monotonic()
    summary = StepSummary("plan")
    pcfg, scfg = cfg.plan, cfg.source
    kind = str(pcfg.kind)
    if kind not in ("night", "day"):
        summary.add_failure(f"plan.kind={kind!r}: expected night or day")
        return summary
    rows = read_nights_csv(Path(str(pcfg.nights_csv)))
    configured = {str(s) for s in (scfg.get("stations") or [])}
    if configured:
        rows = [r for r in rows if r.station in configured]
    sessions = sessions_of(rows, pcfg.nights_csv)
    wanted = wanted_sessions(pcfg, rows, sessions, kind, summary)
    try:
        source = source_factory(scfg)()
    except (SourceError, HostKeyError, SourceUnreachable) as exc:
        summary.add_failure(str(exc))
        return summary
    try:
        chosen, listings = choose(source, scfg, pcfg, kind, sessions, wanted, summary)
        manifest = download_rows(source, chosen, kind, str(pcfg.raw_dir).strip("/"), listings,
                                 summary)
    finally:
        source.close()
    manifest_path = Path(str(pcfg.manifest))
    remove_stale_temporaries(manifest_path.parent, target=manifest_path.name)  # a killed run's
    write_text(manifest_path, format_download_manifest(manifest))
    summary.count("files", len(manifest))
    summary.count("bytes", sum(r.size for r in manifest))
    summary.outputs["manifest"] = str(manifest_path)
    summary.seconds = time.monotonic() - started
    return summary


@guard_secrets
@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    run_step("plan", run, cfg, log, user_errors=(SourceError, HostKeyError,
                                                 FileNotFoundError, ValueError))


if __name__ == "__main__":
    main()
