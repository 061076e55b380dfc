"""Which timelapses to download: night ones for the capture sessions wanted, or daytime ones.

A station's timelapses are its timelapse folders under ``source.video_root/{ST}/`` and any
timelapse file lying loose there (a package ``.tar``, or the older daily
``{ST}_{YYYYMMDD}-{DOY}_frames_timelapse.mp4``). Each is told night or day by the capture
sessions of ``nights.csv`` (:func:`gmn_base.day_night.classify_timelapse`; frame flags are not
known before download, and the UTC hour never decides): a night timelapse is filed under the
session it overlaps most (:func:`night_choice`); a daytime one under the session it follows or
precedes, and taken round-robin across stations up to a limit (:func:`day_choice`,
:func:`round_robin`). A ``mixed`` timelapse (both kinds of frames) serves both; extract sorts
its frames. Each chosen timelapse's video and frame-time map, or its package, become rows of
``download_manifest.csv`` (:func:`download_rows`). Pure choices first, then the listings.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import zip_longest

from data_prep.nights.archive_listing import list_folder, parse_each
from data_prep.nights.night_listing import station_dir
from data_prep.remote.download_manifest import DownloadRow
from data_prep.remote.source import RemoteEntry, RemoteSource
from data_prep.summary import StepSummary
from gmn_base.day_night import DAY, MIXED, NIGHT, classify_timelapse
from gmn_base.sessions import DEFAULT_RULE, CaptureSession, SessionRule
from gmn_base.timelapse_names import (
    FRAMETIMES_SUFFIX,
    LEGACY_TIMESTAMPS_SUFFIX,
    PACKAGE_SUFFIX,
    VIDEO_SUFFIX,
    Timelapse,
    parse_timelapse_name,
)

log = logging.getLogger(__name__)

TIMELAPSE_KINDS = ("folder", "video", "package")  # what a station folder's entries may be


@dataclass(frozen=True)
class ChosenTimelapse:
    """A timelapse to fetch and the session (night id) it is filed under."""

    lapse: Timelapse
    session: CaptureSession
    entry: str  # its name in the station folder (a folder, or a loose file)


# --- pure core ------------------------------------------------------------------------------


def station_timelapses(entries: Sequence[RemoteEntry], station: str) -> list[tuple[Timelapse, str]]:
    """The station's timelapses among a station folder's entries (folders, loose videos and
    packages), oldest first, with their entry names; other names are passed over."""
    found: dict[tuple[str, str], tuple[Timelapse, str]] = {}
    for lapse, name in parse_each([e.name for e in entries],
                                  lambda n: (parse_timelapse_name(n), n), "timelapse name"):
        if lapse.station != station or lapse.kind not in TIMELAPSE_KINDS:
            continue
        # A loose video and its package are one timelapse: keep the video (its package is
        # the fallback :func:`timelapse_files` finds).
        key = (lapse.kind == "folder" and name or "file", lapse.stem)
        if key not in found or lapse.kind == "video":
            found[key] = (lapse, name)
    return sorted(found.values(), key=lambda pair: (pair[0].start, pair[1]))


def _overlap_s(lapse: Timelapse, session: CaptureSession, rule: SessionRule) -> float:
    start = max(lapse.start, session.start - rule.tolerance)
    end = min(lapse.end, session.latest_end(rule) + rule.tolerance)
    return (end - start).total_seconds()


def night_session(lapse: Timelapse, sessions: Sequence[CaptureSession],
                  rule: SessionRule = DEFAULT_RULE) -> CaptureSession | None:
    """The session a night (or mixed) timelapse overlaps most, if any."""
    scored = [(_overlap_s(lapse, s, rule), s) for s in sessions if s.station == lapse.station]
    best = max(scored, key=lambda pair: pair[0], default=(0.0, None))
    return best[1] if best[0] > 0 else None


def day_session(lapse: Timelapse, sessions: Sequence[CaptureSession],
                rule: SessionRule = DEFAULT_RULE) -> CaptureSession | None:
    """The session a daytime timelapse follows (its start meets the end of capture), else the
    one it precedes (its end meets the start of capture)."""
    own = [s for s in sessions if s.station == lapse.station]
    after = [s for s in own if abs(lapse.start - s.latest_end(rule)) <= rule.tolerance]
    before = [s for s in own if abs(lapse.end - s.start) <= rule.tolerance]
    return (after or before or [None])[0]


def night_choice(lapses: Sequence[tuple[Timelapse, str]], sessions: Sequence[CaptureSession],
                 wanted: set[str]) -> list[ChosenTimelapse]:
    """Night and mixed timelapses filed under a wanted session (by session id)."""
    chosen = []
    for lapse, name in lapses:
        if classify_timelapse(lapse, None, sessions).kind not in (NIGHT, MIXED):
            continue
        session = night_session(lapse, sessions)
        if session is not None and session.session_id in wanted:
            chosen.append(ChosenTimelapse(lapse, session, name))
    return chosen


def day_choice(lapses: Sequence[tuple[Timelapse, str]], sessions: Sequence[CaptureSession],
               wanted: set[str]) -> list[ChosenTimelapse]:
    """Daytime (and mixed) timelapses next to a wanted session."""
    chosen = []
    for lapse, name in lapses:
        kind = classify_timelapse(lapse, None, sessions).kind
        session = day_session(lapse, sessions) if kind == DAY else \
            night_session(lapse, sessions) if kind == MIXED else None
        if session is not None and session.session_id in wanted:
            chosen.append(ChosenTimelapse(lapse, session, name))
    return chosen


def round_robin(by_station: dict[str, list[ChosenTimelapse]], limit: int | None
                ) -> list[ChosenTimelapse]:
    """Take one from each station in turn (stations sorted, each list oldest first)."""
    picked = []
    for layer in zip_longest(*(by_station[s] for s in sorted(by_station))):
        picked.extend(f for f in layer if f is not None)
    return picked if limit is None else picked[:limit]


def timelapse_files(entries: Sequence[RemoteEntry], lapse: Timelapse) -> list[RemoteEntry]:
    """The files to fetch for ``lapse`` among ``entries`` (its folder's, or the station
    folder's for a loose one): the video and its frame-time map (``_frametimes.json``, else
    the legacy ``_timestamps.json``), else its package; empty when neither is complete."""
    by_name = {e.name: e for e in entries}
    stem = lapse.stem if lapse.kind != "folder" else None

    def one(suffix: str) -> RemoteEntry | None:
        if stem is not None:
            return by_name.get(stem + suffix)
        return next((e for name, e in sorted(by_name.items()) if name.endswith(suffix)), None)

    video = one(VIDEO_SUFFIX)
    frame_map = one(FRAMETIMES_SUFFIX) or one(LEGACY_TIMESTAMPS_SUFFIX)
    if video is not None and frame_map is not None:
        return [video, frame_map]
    package = one(PACKAGE_SUFFIX)
    return [package] if package is not None else []


# --- listings of the source -----------------------------------------------------------------


def list_station_timelapses(source: RemoteSource, video_root: str, station: str,
                            summary: StepSummary) -> tuple[str, list[RemoteEntry]] | None:
    """The station's timelapse folder and its entries; None (a failure naming it) if absent."""
    path = station_dir(video_root, station)
    try:
        return path, list_folder(source, path, summary)
    except FileNotFoundError:
        summary.add_failure(f"{path} not found on {source.description}")
        return None


def download_rows(source: RemoteSource, chosen: Sequence[ChosenTimelapse], kind: str,
                  raw_dir: str, listings: dict[str, tuple[str, list[RemoteEntry]]],
                  summary: StepSummary) -> list[DownloadRow]:
    """Each chosen timelapse's files, to ``{raw_dir}/{name}``; one missing its video or map
    (and no package) is left out and counted."""
    rows: list[DownloadRow] = []
    for item in chosen:
        path, entries = listings[item.lapse.station]
        if item.lapse.kind == "folder":
            path = posixpath.join(path, item.entry)
            entries = list_folder(source, path, summary)
        files = timelapse_files(entries, item.lapse)
        if not files:
            log.warning("%s: no video with its frame-time map, and no %s; left out",
                        posixpath.join(path, item.entry) if item.lapse.kind != "folder" else path,
                        PACKAGE_SUFFIX)
            summary.count("incomplete_folders")
            continue
        for entry in files:
            rows.append(DownloadRow(item.lapse.station, item.session.night_id, kind,
                                    posixpath.join(path, entry.name), f"{raw_dir}/{entry.name}",
                                    entry.size, entry.mtime))
        summary.count("timelapses")
    return rows
