"""``python -m data_prep.plan``: decide which timelapses to download, write ``download_manifest.csv``.

Reads ``nights.csv`` (from ``data_prep.find``), lists each station's timelapse folders under
``source.video_root`` and pairs the night ones (start hour 18-06) with the station-nights
found. Targets: every station-night with both (all-cloudy nights too: they are the overcast
examples); with ``plan.only_good_nights`` only nights with a clear interval; with
``plan.target_lists`` the nights that reference-format image lists imply; with
``plan.kind=day`` daytime timelapses (start hour 08-17) on the date of a good night or the
day after, round-robin across stations up to ``plan.max_videos``. Each chosen folder's video
and frame-time map become manifest rows: station, night, kind, remote path, local path
(relative to ``paths.data_dir``), size and mtime. The library:
:mod:`data_prep.nights.timelapse_choice`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.nights.nights_table import NightRow, read_nights_csv
from data_prep.nights.target_lists import (
    nights_from_images,
    read_target_lists,
    unmatched_targets,
)
from data_prep.nights.timelapse_choice import (
    StationNight,
    choose_timelapses,
    download_rows,
    target_nights,
)
from data_prep.remote.connect import source_factory
from data_prep.remote.download_manifest import format_download_manifest
from data_prep.remote.host_keys import HostKeyError
from data_prep.remote.source import SourceError, SourceUnreachable
from data_prep.summary import StepSummary, run_step
from gmn_base.atomic import write_text
from gmn_base.command_line import guard_secrets

log = logging.getLogger(__name__)


def wanted_nights(pcfg: DictConfig, rows: list[NightRow], kind: str,
                  summary: StepSummary) -> set[StationNight]:
    """The station-nights to fetch timelapses for (``plan.only_good_nights``,
    ``plan.target_lists``; daytime test frames only beside good nights)."""
    targets = None
    if pcfg.get("target_lists"):
        images = read_target_lists(list(pcfg.target_lists), "plan.target_lists", summary)
        summary.count("target_images", len(images))
        targets = nights_from_images(images)
        for missing in unmatched_targets(targets, rows):
            summary.add_failure(f"plan.target_lists: {missing} is not in {pcfg.nights_csv} "
                                f"(widen find.since/until/last_n and rerun find)")
    return target_nights(rows, bool(pcfg.only_good_nights) if kind == "night" else True, targets)


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
    wanted = wanted_nights(pcfg, rows, kind, summary)
    max_videos = int(pcfg.max_videos) if pcfg.get("max_videos") is not None else None
    try:
        source = source_factory(scfg)()
    except (SourceError, HostKeyError, SourceUnreachable) as exc:
        summary.add_failure(str(exc))
        return summary
    try:
        selected = choose_timelapses(source, str(scfg.video_root), wanted, kind, max_videos,
                                     summary)
        manifest = download_rows(source, str(scfg.video_root), selected, kind,
                                 str(pcfg.raw_dir).strip("/"), summary)
    finally:
        source.close()
    manifest_path = Path(str(pcfg.manifest))
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
