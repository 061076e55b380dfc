"""The RMS interval files on disk: their names, the all-cloudy subfolder, reading them back.

RMS writes one ``flux_time_intervals.json`` per capture, in its ``_detected`` (or, with
``upload_split``, ``_metadata``) night folder. ``find`` fetches one per capture
(:func:`interval_jobs`) into ``find.interval_dir`` as ``{night folder}_flux_time_intervals.json``
(:func:`interval_file_name`), fetches a copy again when the server's file changed (size or
mtime), and keeps the all-cloudy ones (an empty ``time_intervals`` list) in its
``all_cloudy_time_intervals/`` (:func:`sort_all_cloudy`), the layout the reference pipeline
kept so a folder listing shows the good nights at a glance. ``extract`` and ``label`` read
every file back, at any depth (:func:`read_interval_dir`). Malformed files are reported by
name, never guessed.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from data_prep.nights.night_listing import station_dir
from data_prep.remote.fetch import DownloadJob
from gmn_base.errors import GMNFormatError
from gmn_base.interval_files import INTERVAL_FILE_NAME, ClearIntervals, load_interval_file
from gmn_base.night_folders import (
    DETECTED_SUFFIX,
    IMGDATA_SUFFIX,
    KNOWN_NIGHT_FOLDER_SUFFIXES,
    METADATA_SUFFIX,
    NightFolder,
    find_night_folder,
)
from gmn_base.sessions import CaptureSession

log = logging.getLogger(__name__)

ALL_CLOUDY_DIR = "all_cloudy_time_intervals"
# Where RMS keeps a capture's interval file: the whole archive (_detected), else the split
# upload's metadata half; the image half (_imgdata) holds FF/FR files only, asked last.
_INTERVAL_SUFFIX_ORDER = (DETECTED_SUFFIX, METADATA_SUFFIX, IMGDATA_SUFFIX)


def interval_file_name(night_folder: str) -> str:
    """Local name of a capture's interval file: its night folder's name kept in front."""
    return f"{night_folder}_{INTERVAL_FILE_NAME}"


def interval_folders(sessions: Iterable[CaptureSession]) -> list[NightFolder]:
    """One night folder per capture of ``sessions``: the one RMS keeps the interval file in."""
    chosen = []
    for session in sessions:
        for capture in session.capture_ids:
            names = [f for f in session.folders if f.capture_id == capture]
            chosen.append(min(names, key=lambda f: _INTERVAL_SUFFIX_ORDER.index(f.suffix)
                              if f.suffix in _INTERVAL_SUFFIX_ORDER else len(_INTERVAL_SUFFIX_ORDER)))
    return chosen


def local_interval_file(interval_dir: Path, folder: NightFolder) -> Path | None:
    """The local copy of ``folder``'s interval file (kept or moved to all-cloudy), if any."""
    name = interval_file_name(folder.name)
    return next((p for p in (interval_dir / name, interval_dir / ALL_CLOUDY_DIR / name)
                 if p.exists()), None)


def interval_jobs(folders: Sequence[NightFolder], flux_root: str, interval_dir: Path
                  ) -> list[DownloadJob]:
    """A fetch of each folder's interval file onto its local copy (or a new one): a copy whose
    size and mtime still match the server's is skipped, a changed one fetched again."""
    jobs = []
    for folder in folders:
        local = local_interval_file(interval_dir, folder) or \
            interval_dir / interval_file_name(folder.name)
        remote = posixpath.join(station_dir(flux_root, folder.station), folder.name,
                                INTERVAL_FILE_NAME)
        jobs.append(DownloadJob(remote, local))
    return jobs


@dataclass
class CloudyMove:
    moved: list[Path] = field(default_factory=list)        # all-cloudy, into the subfolder
    moved_back: list[Path] = field(default_factory=list)   # with intervals, out of it
    kept: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _json_files(folder: Path) -> list[Path]:
    """``folder``'s ``*.json`` (not recursive), without temporaries of interrupted writes."""
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")) \
        if folder.is_dir() else []


def _load(path: Path, result: CloudyMove) -> ClearIntervals | None:
    try:
        return load_interval_file(path)
    except GMNFormatError as exc:
        result.errors.append(str(exc))
        return None


def sort_all_cloudy(folder: Path) -> CloudyMove:
    """Move every all-cloudy ``*.json`` interval file of ``folder`` (not recursive) into
    ``folder/all_cloudy_time_intervals/``, and any file there that now has intervals (fixed
    on the server, fetched again) back; a same-named file at the target is replaced."""
    result = CloudyMove()
    if not folder.is_dir():
        result.errors.append(f"{folder}: interval folder not found (set filter_cloudy.folder)")
        return result
    cloudy_dir = folder / ALL_CLOUDY_DIR
    for path in _json_files(folder):
        intervals = _load(path, result)
        if intervals is None:
            continue
        if intervals.all_cloudy:
            cloudy_dir.mkdir(exist_ok=True)
            os.replace(path, cloudy_dir / path.name)
            result.moved.append(cloudy_dir / path.name)
        else:
            result.kept.append(path)
    for path in _json_files(cloudy_dir):
        intervals = _load(path, result)
        if intervals is not None and not intervals.all_cloudy:
            os.replace(path, folder / path.name)
            result.moved_back.append(folder / path.name)
    return result


@dataclass
class IntervalDir:
    """What :func:`read_interval_dir` found: the parsed files, the unreadable ones by the
    capture their name gives, and the files whose name holds no night folder (with why)."""

    files: list[tuple[Path, ClearIntervals]] = field(default_factory=list)
    unreadable: dict[str, list[str]] = field(default_factory=dict)
    unnamed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [message for messages in self.unreadable.values() for message in messages]


def read_interval_dir(folder: Path, suffixes: Sequence[str] = KNOWN_NIGHT_FOLDER_SUFFIXES
                      ) -> IntervalDir:
    """Every interval file under ``folder`` (any depth, ``all_cloudy_time_intervals/`` too),
    parsed; a file that cannot be read or parsed is kept by its capture, its message naming it.
    FileNotFoundError when ``folder`` does not exist."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: interval folder not found "
                                "(run `python -m data_prep.find` first)")
    found = IntervalDir()
    for path in sorted(folder.rglob("*.json")):
        if path.name.startswith("."):
            continue  # a temporary of an interrupted write
        night_folder = find_night_folder(path.relative_to(folder), suffixes)
        if night_folder is None:
            reason = ("no night folder {ST}_{YYYYMMDD}_{HHMMSS}_{ffffff} with a suffix among "
                      f"{', '.join(suffixes)} in its name")
            found.unnamed.append((str(path), reason))
            continue
        try:
            found.files.append((path, load_interval_file(path)))
        except (GMNFormatError, OSError) as exc:
            message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            found.unreadable.setdefault(night_folder.capture_id, []).append(message)
    return found
