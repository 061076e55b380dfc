"""RMS night folder names: one capture's ``{ST}_{YYYYMMDD}_{HHMMSS}_{ffffff}`` plus a suffix.

RMS names a capture's folder by the UTC time capture started, to the microsecond
(``RMS/ArchiveDetections.py``: ``os.path.basename(captured_path) + '_detected'``). What a user
finds on the GMN server depends on the RMS version: ``_detected`` (the whole night archive),
or, since ``upload_split``, ``_metadata`` (everything but FF/FR files, the interval file
included) and ``_imgdata`` (the FF and FR files). All three name the same capture; its
:attr:`NightFolder.capture_id` is what they share. Which suffixes are accepted is a
parameter, defaulting to every known one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gmn_base.errors import GMNFormatError
from gmn_base.station_time import STATION_PATTERN, as_utc, parse_compact_time

DETECTED_SUFFIX = "_detected"
METADATA_SUFFIX = "_metadata"
IMGDATA_SUFFIX = "_imgdata"
KNOWN_NIGHT_FOLDER_SUFFIXES = (DETECTED_SUFFIX, METADATA_SUFFIX, IMGDATA_SUFFIX)

_CAPTURE_BODY = (
    rf"(?P<station>{STATION_PATTERN})_(?P<date>\d{{8}})_(?P<time>\d{{6}})_(?P<usec>\d{{6}})"
)


@dataclass(frozen=True)
class NightFolder:
    """One RMS capture's folder: station, capture start (UTC, microseconds) and suffix."""

    station: str
    start: datetime
    suffix: str = DETECTED_SUFFIX

    @property
    def capture_id(self) -> str:
        """``{ST}_{YYYYMMDD}_{HHMMSS}_{ffffff}``: the name every variant of this capture shares."""
        s = as_utc(self.start)
        return f"{self.station}_{s:%Y%m%d_%H%M%S}_{s.microsecond:06d}"

    @property
    def name(self) -> str:
        return self.capture_id + self.suffix


def _suffix_alternatives(suffixes: Sequence[str]) -> str:
    if isinstance(suffixes, str) or not suffixes:
        raise ValueError(f"night folder suffixes must be a non-empty list, got {suffixes!r}")
    # Longest first, so "_detected" is never cut short by a shorter prefix of it.
    return "|".join(re.escape(s) for s in sorted(suffixes, key=len, reverse=True))


def _folder_from_match(m: re.Match, base: str, source) -> NightFolder:
    start = parse_compact_time(m["date"], m["time"], "night folder name", base, source)
    return NightFolder(m["station"], start.replace(microsecond=int(m["usec"])), m["suffix"])


def parse_night_folder(name: str, source: str | Path | None = None,
                       suffixes: Sequence[str] = KNOWN_NIGHT_FOLDER_SUFFIXES) -> NightFolder:
    """Parse ``{ST}_{YYYYMMDD}_{HHMMSS}_{ffffff}{suffix}`` (the last part of ``name``)."""
    base = Path(name).name
    m = re.fullmatch(rf"{_CAPTURE_BODY}(?P<suffix>{_suffix_alternatives(suffixes)})", base)
    if not m:
        raise GMNFormatError(
            "night folder name", base, source,
            "expected {ST}_{YYYYMMDD}_{HHMMSS}_{ffffff} followed by one of " + ", ".join(
                repr(s) for s in suffixes))
    return _folder_from_match(m, base, source)


def find_night_folder(path: str | Path,
                      suffixes: Sequence[str] = KNOWN_NIGHT_FOLDER_SUFFIXES) -> NightFolder | None:
    """The night folder named anywhere in ``path`` (file name or a parent folder), the one
    nearest the file name when several appear; None when there is none."""
    pattern = re.compile(rf"{_CAPTURE_BODY}(?P<suffix>{_suffix_alternatives(suffixes)})")
    matches = list(pattern.finditer(str(path)))
    if not matches:
        return None
    return _folder_from_match(matches[-1], matches[-1].group(0), path)


def format_night_folder(station: str, start: datetime, suffix: str = DETECTED_SUFFIX) -> str:
    return NightFolder(station, as_utc(start), suffix).name


def parse_night_folders(names: Iterable[str], station: str | None = None,
                        suffixes: Sequence[str] = KNOWN_NIGHT_FOLDER_SUFFIXES,
                        ) -> tuple[list[NightFolder], list[str]]:
    """The night folders among ``names`` (of ``station`` when given), oldest first, and the
    names that are not night folders of an accepted suffix (so a caller can count them)."""
    folders, other = [], []
    for name in names:
        try:
            folder = parse_night_folder(name, suffixes=suffixes)
        except GMNFormatError:
            other.append(name)
            continue
        if station is None or folder.station == station:
            folders.append(folder)
    folders.sort(key=lambda f: (f.start, f.suffix))
    return folders, other
