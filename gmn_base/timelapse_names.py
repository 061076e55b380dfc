"""Timelapse folder and file names, as RMS builds them and as the GMN server keeps them.

RMS (``Utils/GenerateTimelapse.py``, ``_buildName``) names a frame timelapse after the times
of its first and last frame, cut to whole seconds:
``{ST}_{YYYYMMDD-HHMMSS}_to_{YYYYMMDD-HHMMSS}_frames_timelapse.mp4`` beside
``..._frametimes.json``; ``RMS/ArchiveDetections.py`` (``archiveFrameTimelapse``) may pack the
pair, uncompressed, into ``..._frames_timelapse.tar``. On the server a timelapse sits in a
folder ``{ST}_{YYYYMMDD}_{HHMMSS}_to_{YYYYMMDD}_{HHMMSS}``. Older variants: a day-of-year field
after the station, ``_timestamps.json`` instead of ``_frametimes.json``, and the daily
``{ST}_{YYYYMMDD}-{DOY}_frames_timelapse.mp4`` of one UTC day. ``..._frames_timelapse.tar.bz2``
and ``.tar.gz`` hold RMS's source frames, not a timelapse, and are refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from gmn_base.errors import GMNFormatError
from gmn_base.station_time import STATION_PATTERN, as_utc, parse_compact_time

VIDEO_SUFFIX = "_frames_timelapse.mp4"
FRAMETIMES_SUFFIX = "_frametimes.json"
LEGACY_TIMESTAMPS_SUFFIX = "_timestamps.json"
PACKAGE_SUFFIX = "_frames_timelapse.tar"
FRAME_ARCHIVE_SUFFIXES = ("_frames_timelapse.tar.bz2", "_frames_timelapse.tar.gz")

# Timelapse names join date and time by "_" (folders) or "-" (files); both are accepted.
_TIMELAPSE_RE = re.compile(
    rf"^(?P<station>{STATION_PATTERN})_(?:(?P<doy>\d{{3}})_)?"
    r"(?P<sdate>\d{8})(?P<ssep>[_-])(?P<stime>\d{6})_to_"
    r"(?P<edate>\d{8})(?P<esep>[_-])(?P<etime>\d{6})"
    r"(?P<rest>.*)$"
)
_DAILY_RE = re.compile(
    rf"^(?P<station>{STATION_PATTERN})_(?P<date>\d{{8}})-(?P<doy>\d{{3}})"
    rf"(?P<rest>{re.escape(VIDEO_SUFFIX)}|{re.escape(FRAMETIMES_SUFFIX)}|{re.escape(LEGACY_TIMESTAMPS_SUFFIX)})$"
)

_KIND_BY_SUFFIX = {
    "": "folder",
    VIDEO_SUFFIX: "video",
    FRAMETIMES_SUFFIX: "frametimes",
    LEGACY_TIMESTAMPS_SUFFIX: "timestamps",
    PACKAGE_SUFFIX: "package",
}
_SUFFIX_BY_KIND = {kind: suffix for suffix, kind in _KIND_BY_SUFFIX.items()}


@dataclass(frozen=True)
class Timelapse:
    """A timelapse folder or file name: station and the UTC span of its first to last frame.

    ``kind`` is folder | video | frametimes | timestamps | package (the ``.tar``). ``daily``
    marks the older one-UTC-day name, whose span is that whole day.
    """

    station: str
    start: datetime
    end: datetime
    doy: int | None = None
    kind: str = "folder"
    daily: bool = False

    @property
    def stem(self) -> str:
        """The file-name stem shared by the video, its frame-time map and its package."""
        if self.daily:
            return f"{self.station}_{self.start:%Y%m%d}-{self.doy:03d}"
        return _file_stem(self.station, self.start, self.end, self.doy)

    @property
    def folder_name(self) -> str:
        """The server folder; for the daily variant no folder form is known, so its stem."""
        if self.daily:
            return self.stem
        return format_timelapse_folder(self.station, self.start, self.end, self.doy)

    def file_name(self, kind: str) -> str:
        """This timelapse's ``video``, ``frametimes``, ``timestamps`` or ``package`` file name."""
        if kind not in _SUFFIX_BY_KIND or kind == "folder":
            raise ValueError(f"timelapse file kind {kind!r}: expected video, frametimes, "
                             "timestamps or package")
        return self.stem + _SUFFIX_BY_KIND[kind]

    def package_members(self) -> tuple[str, str]:
        """The (video, frame-time map) names inside the ``..._frames_timelapse.tar``."""
        return self.file_name("video"), self.file_name("frametimes")


def _bad_name(base: str, source, hint: str | None = None) -> GMNFormatError:
    return GMNFormatError(
        "timelapse name", base, source,
        hint or "expected {ST}_{YYYYMMDD}_{HHMMSS}_to_{YYYYMMDD}_{HHMMSS} or a "
        "{ST}_{YYYYMMDD-HHMMSS}_to_{YYYYMMDD-HHMMSS}_frames_timelapse.mp4/.tar/_frametimes.json file")


def _parse_doy(text: str | None, base: str, source) -> int | None:
    doy = int(text) if text else None
    if doy is not None and not 1 <= doy <= 366:
        raise GMNFormatError("timelapse name", base, source, "day of year out of range")
    return doy


def _parse_daily(m: re.Match, base: str, source) -> Timelapse:
    start = parse_compact_time(m["date"], "000000", "timelapse name", base, source)
    doy = _parse_doy(m["doy"], base, source)
    if doy != start.timetuple().tm_yday:
        raise GMNFormatError("timelapse name", base, source,
                             f"day of year {doy} is not that of {m['date']}")
    end = start + timedelta(days=1) - timedelta(microseconds=1)
    return Timelapse(m["station"], start, end, doy, _KIND_BY_SUFFIX[m["rest"]], daily=True)


def parse_timelapse_name(name: str, source: str | Path | None = None) -> Timelapse:
    """Parse a timelapse folder name or one of its file names (any variant in the module doc)."""
    base = Path(name).name
    if base.endswith(FRAME_ARCHIVE_SUFFIXES):
        raise _bad_name(base, source, "an archive of RMS's source frames, not a timelapse")
    daily = _DAILY_RE.match(base)
    if daily:
        return _parse_daily(daily, base, source)
    m = _TIMELAPSE_RE.match(base)
    if not m or m["rest"] not in _KIND_BY_SUFFIX:
        raise _bad_name(base, source)
    start = parse_compact_time(m["sdate"], m["stime"], "timelapse name", base, source)
    end = parse_compact_time(m["edate"], m["etime"], "timelapse name", base, source)
    if end < start:
        raise GMNFormatError("timelapse name", base, source, "end before start")
    doy = _parse_doy(m["doy"], base, source)
    return Timelapse(m["station"], start, end, doy, _KIND_BY_SUFFIX[m["rest"]])


def format_timelapse_folder(
    station: str, start: datetime, end: datetime, doy: int | None = None
) -> str:
    s, e = as_utc(start), as_utc(end)
    doy_part = f"{doy:03d}_" if doy is not None else ""
    return f"{station}_{doy_part}{s:%Y%m%d_%H%M%S}_to_{e:%Y%m%d_%H%M%S}"


def _file_stem(station: str, start: datetime, end: datetime, doy: int | None) -> str:
    # strftime has no sub-second field here: the times are cut to whole seconds, as RMS does.
    s, e = as_utc(start), as_utc(end)
    doy_part = f"{doy:03d}_" if doy is not None else ""
    return f"{station}_{doy_part}{s:%Y%m%d-%H%M%S}_to_{e:%Y%m%d-%H%M%S}"


def timelapse_video_name(
    station: str, start: datetime, end: datetime, doy: int | None = None
) -> str:
    return _file_stem(station, start, end, doy) + VIDEO_SUFFIX


def frame_times_name(
    station: str, start: datetime, end: datetime, doy: int | None = None, legacy: bool = False
) -> str:
    suffix = LEGACY_TIMESTAMPS_SUFFIX if legacy else FRAMETIMES_SUFFIX
    return _file_stem(station, start, end, doy) + suffix


def timelapse_for_frames(station: str, frame_times: Sequence[datetime]) -> Timelapse:
    """The timelapse RMS names for these frames: first to last frame time, cut to seconds
    (``_buildName`` in ``Utils/GenerateTimelapse.py``). Frame times must be in order."""
    if not frame_times:
        raise ValueError(f"{station}: a timelapse needs at least one frame time")
    first, last = as_utc(frame_times[0]), as_utc(frame_times[-1])
    if last < first:
        raise ValueError(f"{station}: frame times out of order ({first} after {last})")
    return Timelapse(station, first.replace(microsecond=0), last.replace(microsecond=0))


def frame_times_candidates(video_path: str | Path) -> list[Path]:
    """Where a video's frame-time map may lie: ``_frametimes.json``, then legacy ``_timestamps.json``."""
    video_path = Path(video_path)
    if not video_path.name.endswith(VIDEO_SUFFIX):
        raise GMNFormatError("timelapse video name", video_path.name, video_path)
    stem = video_path.name[: -len(VIDEO_SUFFIX)]
    return [video_path.with_name(stem + FRAMETIMES_SUFFIX),
            video_path.with_name(stem + LEGACY_TIMESTAMPS_SUFFIX)]
