"""GMN names and formats: the one place that knows how RMS and the GMN server spell things.

Pure parsing and formatting of station ids, timelapse and ``_detected`` folder names,
timelapse and frame-time file names, frame-time values and maps, RMS clear-sky interval
files, and the project's image names. No I/O except the two small ``load_*`` helpers at the
bottom. Every time handed out is timezone-aware UTC. Malformed input raises
:class:`GMNFormatError`, whose message names the file (when known) and the offending value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

UTC = timezone.utc

STATION_PATTERN = r"[A-Z]{2}[A-Z0-9]{4}"
_STATION_RE = re.compile(rf"^{STATION_PATTERN}$")

# Timelapse names join date and time by "_" (folders) or "-" (files); both are accepted.
_TIMELAPSE_RE = re.compile(
    rf"^(?P<station>{STATION_PATTERN})_(?:(?P<doy>\d{{3}})_)?"
    r"(?P<sdate>\d{8})(?P<ssep>[_-])(?P<stime>\d{6})_to_"
    r"(?P<edate>\d{8})(?P<esep>[_-])(?P<etime>\d{6})"
    r"(?P<rest>.*)$"
)
_DETECTED_BODY = (
    rf"(?P<station>{STATION_PATTERN})_(?P<date>\d{{8}})_(?P<time>\d{{6}})_(?P<usec>\d{{6}})_detected"
)
_DETECTED_RE = re.compile(rf"^{_DETECTED_BODY}$")
_DETECTED_ANYWHERE_RE = re.compile(_DETECTED_BODY)
_FRAME_TIME_RE = re.compile(r"^(?P<date>\d{8})_(?P<time>\d{6})_(?P<ms>\d{3})(?:_(?P<suffix>[nd]))?$")
_IMAGE_RE = re.compile(
    rf"^(?:(?P<station>{STATION_PATTERN})_)?(?P<date>\d{{8}})_(?P<time>\d{{6}})_(?P<ms>\d{{3}})\.png$"
)

VIDEO_SUFFIX = "_frames_timelapse.mp4"
FRAMETIMES_SUFFIX = "_frametimes.json"
LEGACY_TIMESTAMPS_SUFFIX = "_timestamps.json"
INTERVAL_FILE_NAME = "flux_time_intervals.json"
INTERVAL_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"

# Start hours that make a timelapse a night one (evening or early morning) or a day one.
NIGHT_START_HOURS = frozenset(list(range(18, 24)) + list(range(7)))
DAY_START_HOURS = frozenset(range(8, 18))


class GMNFormatError(ValueError):
    """A GMN name, value or file does not have the expected shape."""

    def __init__(self, what: str, value: Any, source: str | Path | None = None, hint: str = ""):
        where = f"{source}: " if source is not None else ""
        message = f"{where}malformed {what}: {value!r}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)
        self.what = what
        self.value = value
        self.source = None if source is None else str(source)


# --- small pieces -------------------------------------------------------------------------


def parse_station(value: str, source: str | Path | None = None) -> str:
    """Return a valid station id (two letters + four letters/digits), else raise."""
    if not isinstance(value, str) or not _STATION_RE.match(value):
        raise GMNFormatError(
            "station id", value, source, "expected two letters and four letters/digits, e.g. CAWEC2"
        )
    return value


def _parse_datetime(date_s: str, time_s: str, what: str, value: str, source) -> datetime:
    try:
        return datetime.strptime(date_s + time_s, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        raise GMNFormatError(what, value, source, "date or time out of range") from None


def as_utc(ts: datetime) -> datetime:
    """Naive datetimes are UTC by GMN convention; aware ones are converted to UTC."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def night_of(ts: datetime) -> date:
    """The night a timestamp belongs to: its UTC date, or the previous date before 12:00 UTC."""
    ts = as_utc(ts)
    return ts.date() - timedelta(days=1) if ts.hour < 12 else ts.date()


def format_night(night: date) -> str:
    return night.strftime("%Y%m%d")


def parse_night(value: str, source: str | Path | None = None) -> date:
    """Parse a night written as ``YYYYMMDD`` (or an int of that form)."""
    text = str(value)
    if not re.fullmatch(r"\d{8}", text):
        raise GMNFormatError("night (YYYYMMDD)", value, source)
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise GMNFormatError("night (YYYYMMDD)", value, source, "no such date") from None


# --- timelapse folders and files ----------------------------------------------------------


@dataclass(frozen=True)
class Timelapse:
    """A timelapse folder or file name: station and the UTC span it covers."""

    station: str
    start: datetime
    end: datetime
    doy: int | None = None
    kind: str = "folder"  # folder | video | frametimes | timestamps

    @property
    def night(self) -> date:
        return night_of(self.start)

    @property
    def is_night(self) -> bool:
        """Starts 18-06 h UTC. By UTC hour only: right for the Americas, not for every station."""
        return self.start.hour in NIGHT_START_HOURS

    @property
    def is_day(self) -> bool:
        """Starts 08-17 h UTC. By UTC hour only: right for the Americas, not for every station."""
        return self.start.hour in DAY_START_HOURS

    @property
    def folder_name(self) -> str:
        return format_timelapse_folder(self.station, self.start, self.end, self.doy)

    @property
    def stem(self) -> str:
        """The file-name stem shared by the video and its frame-time map."""
        return _timelapse_file_stem(self.station, self.start, self.end, self.doy)


_KIND_BY_SUFFIX = {
    "": "folder",
    VIDEO_SUFFIX: "video",
    FRAMETIMES_SUFFIX: "frametimes",
    LEGACY_TIMESTAMPS_SUFFIX: "timestamps",
}


def parse_timelapse_name(name: str, source: str | Path | None = None) -> Timelapse:
    """Parse a night/day timelapse folder name or one of its file names.

    Accepts ``{ST}_{YYYYMMDD}_{HHMMSS}_to_{YYYYMMDD}_{HHMMSS}`` folders, the files inside
    (``-`` between date and time, ``_frames_timelapse.mp4``, ``_frametimes.json`` or the
    legacy ``_timestamps.json``), and the older day-of-year variant ``{ST}_{DOY}_...``.
    """
    base = Path(name).name
    m = _TIMELAPSE_RE.match(base)
    if not m or m["rest"] not in _KIND_BY_SUFFIX:
        raise GMNFormatError(
            "timelapse name",
            base,
            source,
            "expected {ST}_{YYYYMMDD}_{HHMMSS}_to_{YYYYMMDD}_{HHMMSS} or a "
            "{ST}_{YYYYMMDD-HHMMSS}_to_{YYYYMMDD-HHMMSS}_frames_timelapse.mp4/_frametimes.json file",
        )
    start = _parse_datetime(m["sdate"], m["stime"], "timelapse name", base, source)
    end = _parse_datetime(m["edate"], m["etime"], "timelapse name", base, source)
    if end < start:
        raise GMNFormatError("timelapse name", base, source, "end before start")
    doy = int(m["doy"]) if m["doy"] else None
    if doy is not None and not 1 <= doy <= 366:
        raise GMNFormatError("timelapse name", base, source, "day of year out of range")
    return Timelapse(m["station"], start, end, doy, _KIND_BY_SUFFIX[m["rest"]])


def format_timelapse_folder(
    station: str, start: datetime, end: datetime, doy: int | None = None
) -> str:
    s, e = as_utc(start), as_utc(end)
    doy_part = f"{doy:03d}_" if doy is not None else ""
    return f"{station}_{doy_part}{s:%Y%m%d_%H%M%S}_to_{e:%Y%m%d_%H%M%S}"


def _timelapse_file_stem(station: str, start: datetime, end: datetime, doy: int | None) -> str:
    s, e = as_utc(start), as_utc(end)
    doy_part = f"{doy:03d}_" if doy is not None else ""
    return f"{station}_{doy_part}{s:%Y%m%d-%H%M%S}_to_{e:%Y%m%d-%H%M%S}"


def timelapse_video_name(
    station: str, start: datetime, end: datetime, doy: int | None = None
) -> str:
    return _timelapse_file_stem(station, start, end, doy) + VIDEO_SUFFIX


def frame_times_name(
    station: str, start: datetime, end: datetime, doy: int | None = None, legacy: bool = False
) -> str:
    suffix = LEGACY_TIMESTAMPS_SUFFIX if legacy else FRAMETIMES_SUFFIX
    return _timelapse_file_stem(station, start, end, doy) + suffix


def frame_times_candidates(video_path: str | Path) -> list[Path]:
    """Where a video's frame-time map may lie: ``_frametimes.json``, then legacy ``_timestamps.json``."""
    video_path = Path(video_path)
    if not video_path.name.endswith(VIDEO_SUFFIX):
        raise GMNFormatError("timelapse video name", video_path.name, video_path)
    stem = video_path.name[: -len(VIDEO_SUFFIX)]
    return [video_path.with_name(stem + FRAMETIMES_SUFFIX),
            video_path.with_name(stem + LEGACY_TIMESTAMPS_SUFFIX)]


# --- _detected folders --------------------------------------------------------------------


@dataclass(frozen=True)
class DetectedFolder:
    """An RMS ``{ST}_{YYYYMMDD}_{HHMMSS}_{ffffff}_detected`` night folder."""

    station: str
    start: datetime

    @property
    def night(self) -> date:
        return night_of(self.start)

    @property
    def name(self) -> str:
        return format_detected_folder(self.station, self.start)


def parse_detected_folder(name: str, source: str | Path | None = None) -> DetectedFolder:
    base = Path(name).name
    m = _DETECTED_RE.match(base)
    if not m:
        raise GMNFormatError(
            "_detected folder name", base, source, "expected {ST}_{YYYYMMDD}_{HHMMSS}_{ffffff}_detected"
        )
    start = _parse_datetime(m["date"], m["time"], "_detected folder name", base, source)
    return DetectedFolder(m["station"], start.replace(microsecond=int(m["usec"])))


def find_detected_folder(path: str | Path) -> DetectedFolder | None:
    """The ``_detected`` folder named anywhere in ``path`` (file name or a parent folder),
    the one nearest the file name when several appear; None when there is none."""
    matches = [m.group(0) for m in _DETECTED_ANYWHERE_RE.finditer(str(path))]
    return parse_detected_folder(matches[-1], path) if matches else None


def format_detected_folder(station: str, start: datetime) -> str:
    s = as_utc(start)
    return f"{station}_{s:%Y%m%d_%H%M%S}_{s.microsecond:06d}_detected"


# --- frame times --------------------------------------------------------------------------


def parse_frame_time(value: str, source: str | Path | None = None) -> tuple[datetime, str | None]:
    """Parse ``YYYYMMDD_HHMMSS_mmm`` with optional ``_n``/``_d``; return (UTC time, suffix)."""
    if not isinstance(value, str):
        raise GMNFormatError("frame time", value, source, "expected a string")
    m = _FRAME_TIME_RE.match(value)
    if not m:
        raise GMNFormatError("frame time", value, source, "expected YYYYMMDD_HHMMSS_mmm[_n|_d]")
    ts = _parse_datetime(m["date"], m["time"], "frame time", value, source)
    return ts.replace(microsecond=int(m["ms"]) * 1000), m["suffix"]


def format_frame_time(ts: datetime, suffix: str | None = "n") -> str:
    ts = as_utc(ts)
    text = f"{ts:%Y%m%d_%H%M%S}_{ts.microsecond // 1000:03d}"
    return f"{text}_{suffix}" if suffix else text


def parse_frame_times(mapping: Any, source: str | Path | None = None) -> list[datetime]:
    """Parse a frame-time map into a list indexed by frame number.

    Keys must be the frame indices ``"0"`` .. ``"n-1"`` with none missing, and times must not
    go backwards: both are what extraction relies on to pick the right frame.
    """
    if not isinstance(mapping, Mapping) or not mapping:
        raise GMNFormatError("frame-time map", type(mapping).__name__, source,
                             "expected a non-empty JSON object {frame index: time}")
    times: dict[int, datetime] = {}
    for key, value in mapping.items():
        # ASCII digits without leading zeros: "01" would silently overwrite frame "1".
        if not (isinstance(key, str) and re.fullmatch(r"0|[1-9][0-9]*", key)):
            raise GMNFormatError("frame-time map key", key, source, "expected a frame index")
        times[int(key)] = parse_frame_time(value, source)[0]
    missing = sorted(set(range(len(times))) - set(times))
    if missing:
        raise GMNFormatError("frame-time map", f"frame index {missing[0]} missing", source,
                             f"keys must run 0..{len(times) - 1}")
    ordered = [times[i] for i in range(len(times))]
    for i in range(1, len(ordered)):
        if ordered[i] < ordered[i - 1]:
            raise GMNFormatError("frame-time map", mapping[str(i)], source,
                                 f"frame {i} is earlier than frame {i - 1}")
    return ordered


def format_frame_times(times: Iterable[datetime], suffix: str | None = "n") -> dict[str, str]:
    return {str(i): format_frame_time(ts, suffix) for i, ts in enumerate(times)}


# --- interval files -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClearIntervals:
    """One station-night's RMS clear-sky intervals (empty: the whole night was cloudy)."""

    station: str
    intervals: tuple[tuple[datetime, datetime], ...]

    @property
    def all_cloudy(self) -> bool:
        return not self.intervals

    def clear_minutes(self) -> float:
        return sum((e - s).total_seconds() for s, e in self.intervals) / 60.0


def parse_interval_time(value: Any, source: str | Path | None = None) -> datetime:
    if isinstance(value, str):
        for fmt in (INTERVAL_TIME_FORMAT, "%Y-%m-%dT%H:%M:%S"):
            try:
                return datetime.strptime(value, fmt).replace(tzinfo=UTC)
            except ValueError:
                continue
    raise GMNFormatError("interval time", value, source, "expected %Y-%m-%dT%H:%M:%S.%f (UTC)")


def format_interval_time(ts: datetime) -> str:
    return as_utc(ts).replace(tzinfo=None).strftime(INTERVAL_TIME_FORMAT)


def parse_interval_file(data: Any, source: str | Path | None = None) -> ClearIntervals:
    """Parse the JSON content of an RMS ``flux_time_intervals.json``."""
    if not isinstance(data, Mapping):
        raise GMNFormatError("interval file", type(data).__name__, source, "expected a JSON object")
    for key in ("stationID", "time_intervals"):
        if key not in data:
            raise GMNFormatError("interval file", f"missing key {key!r}", source)
    station = parse_station(data["stationID"], source)
    raw = data["time_intervals"]
    if not isinstance(raw, list):
        raise GMNFormatError("time_intervals", raw, source, "expected a list of [start, end] pairs")
    intervals = []
    for pair in raw:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise GMNFormatError("time interval", pair, source, "expected [start, end]")
        start, end = parse_interval_time(pair[0], source), parse_interval_time(pair[1], source)
        if end < start:
            raise GMNFormatError("time interval", pair, source, "end before start")
        intervals.append((start, end))
    return ClearIntervals(station, tuple(sorted(intervals)))


def format_interval_file(station: str, intervals: Iterable[tuple[datetime, datetime]]) -> dict:
    return {
        "stationID": station,
        "time_intervals": [[format_interval_time(s), format_interval_time(e)] for s, e in intervals],
    }


# --- image names --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageName:
    """A frame image name: ``{ST}_{YYYYMMDD}_{HHMMSS}_{mmm}.png``, or the reference
    pipeline's station-less ``{YYYYMMDD}_{HHMMSS}_{mmm}.png`` (``station`` is then None)."""

    station: str | None
    timestamp: datetime

    @property
    def night(self) -> date:
        return night_of(self.timestamp)

    @property
    def name(self) -> str:
        return format_image_name(self.station, self.timestamp)


def parse_image_name(name: str, source: str | Path | None = None) -> ImageName:
    base = Path(name).name
    m = _IMAGE_RE.match(base)
    if not m:
        raise GMNFormatError(
            "image name", base, source, "expected {ST}_{YYYYMMDD}_{HHMMSS}_{mmm}.png"
        )
    ts = _parse_datetime(m["date"], m["time"], "image name", base, source)
    return ImageName(m["station"], ts.replace(microsecond=int(m["ms"]) * 1000))


def format_image_name(station: str | None, ts: datetime) -> str:
    ts = as_utc(ts)
    # Millisecond precision, truncated like RMS frame times, so names round-trip exactly.
    text = f"{ts:%Y%m%d_%H%M%S}_{ts.microsecond // 1000:03d}.png"
    return f"{station}_{text}" if station else text


def parse_target_list(text: str, source: str | Path | None = None) -> list[tuple[ImageName, str | None]]:
    """Parse a reference-format image list: one ``name.png[,label]`` per line.

    Blank lines and ``#`` comments are skipped; a header line ``image_filename,...`` is allowed.
    """
    targets = []
    first_content_line = True
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        # The header may follow leading comments or blank lines.
        if first_content_line and fields[0] in ("image_filename", "filename"):
            first_content_line = False
            continue
        first_content_line = False
        where = f"{source}:{lineno}" if source is not None else f"line {lineno}"
        image = parse_image_name(fields[0], where)
        label = fields[1] if len(fields) > 1 and fields[1] else None
        targets.append((image, label))
    return targets


# --- file loaders (the only I/O here) -----------------------------------------------------


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GMNFormatError("JSON", f"{exc.msg} at line {exc.lineno} column {exc.colno}", path) from None
    except UnicodeDecodeError:
        raise GMNFormatError("JSON", "not UTF-8 text", path) from None


def load_frame_times(path: str | Path) -> list[datetime]:
    path = Path(path)
    return parse_frame_times(_load_json(path), path)


def load_interval_file(path: str | Path) -> ClearIntervals:
    path = Path(path)
    return parse_interval_file(_load_json(path), path)


def frame_time_at(ts: datetime) -> datetime:
    """Truncate a time to the millisecond precision frame times and image names carry."""
    ts = as_utc(ts)
    return ts.replace(microsecond=(ts.microsecond // 1000) * 1000)


def night_start(night: date) -> datetime:
    """Noon UTC of the night's date: the earliest instant that belongs to that night."""
    return datetime.combine(night, time(12, 0), tzinfo=UTC)
