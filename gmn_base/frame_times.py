"""Frame times and frame-time maps (``..._frametimes.json``), read the way RMS writes them.

RMS (``Utils/GenerateTimelapse.py``, ``generateTimelapseFromFrames``) writes
``{"<frame index>": "YYYYMMDD_HHMMSS_mmm[_n|_d]"}``: the key is the frame's index in the
video, the value the source image's UTC time with its night/day flag. It records a frame's
key only after the image name parsed, but counts every frame it encodes: a name that failed
to parse leaves a frame without a key, and the frames after it keep their true indices. So a
map with a missing key is still good for the frames it names; :func:`parse_frame_time_map`
keeps those and reports the gap, and reports two frames given the same time (by file name),
instead of dropping either. Only a map that is not a ``{index: time}`` object is refused.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from gmn_base.errors import GMNFormatError, load_json
from gmn_base.station_time import as_utc, parse_compact_time

_FRAME_TIME_RE = re.compile(r"^(?P<date>\d{8})_(?P<time>\d{6})_(?P<ms>\d{3})(?:_(?P<suffix>[nd]))?$")
# ASCII digits without leading zeros: "01" would otherwise land on frame 1 beside "1".
_INDEX_RE = re.compile(r"0|[1-9][0-9]*")


def parse_frame_time(value: str, source: str | Path | None = None) -> tuple[datetime, str | None]:
    """Parse ``YYYYMMDD_HHMMSS_mmm`` with optional ``_n``/``_d``; return (UTC time, flag)."""
    if not isinstance(value, str):
        raise GMNFormatError("frame time", value, source, "expected a string")
    m = _FRAME_TIME_RE.match(value)
    if not m:
        raise GMNFormatError("frame time", value, source, "expected YYYYMMDD_HHMMSS_mmm[_n|_d]")
    ts = parse_compact_time(m["date"], m["time"], "frame time", value, source)
    return ts.replace(microsecond=int(m["ms"]) * 1000), m["suffix"]


def format_frame_time(ts: datetime, suffix: str | None = "n") -> str:
    ts = as_utc(ts)
    text = f"{ts:%Y%m%d_%H%M%S}_{ts.microsecond // 1000:03d}"
    return f"{text}_{suffix}" if suffix else text


def format_frame_times(times: Iterable[datetime], suffix: str | None = "n") -> dict[str, str]:
    return {str(i): format_frame_time(ts, suffix) for i, ts in enumerate(times)}


def _runs(indices: Iterable[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``: gaps read as ranges."""
    out: list[str] = []
    for i in sorted(indices):
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)


@dataclass(frozen=True)
class FrameTimeMap:
    """A parsed frame-time map: the known times by frame index, and what was wrong with it.

    ``missing``: indices below ``frame_count`` with no key (RMS could not parse the name);
    ``unreadable``: keys whose value is not a frame time; ``shared_times``: one time given to
    several frames (all kept); ``out_of_order``: frames earlier than the known frame before
    them (kept); ``beyond_video``: keys at or past the video's frame count (left out).
    """

    source: str | None
    frame_count: int
    times: Mapping[int, datetime]
    flags: Mapping[int, str | None]
    missing: tuple[int, ...] = ()
    unreadable: tuple[tuple[int, Any], ...] = ()
    shared_times: tuple[tuple[datetime, tuple[int, ...]], ...] = ()
    out_of_order: tuple[int, ...] = ()
    beyond_video: tuple[int, ...] = ()
    flag_counts: Counter = field(default_factory=Counter)

    def time_of(self, index: int) -> datetime | None:
        return self.times.get(index)

    @property
    def unknown(self) -> tuple[int, ...]:
        """Every frame of the video whose time is not known (missing or unreadable)."""
        return tuple(sorted(set(self.missing) | {i for i, _ in self.unreadable}))

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unreadable or self.shared_times or self.out_of_order
                    or self.beyond_video)

    def anomalies(self) -> list[str]:
        """One message per kind of problem, naming the file and the frames."""
        where = f"{self.source}: " if self.source else ""
        found = []
        if self.missing:
            found.append(f"{where}no time for frames {_runs(self.missing)} of {self.frame_count} "
                         "(RMS skips an image name it cannot parse); those frames are left out")
        if self.unreadable:
            shown = ", ".join(f"{i}={v!r}" for i, v in self.unreadable[:5])
            found.append(f"{where}{len(self.unreadable)} unreadable frame times ({shown}); "
                         "those frames are left out")
        for ts, indices in self.shared_times:
            found.append(f"{where}frames {', '.join(map(str, indices))} share the time "
                         f"{format_frame_time(ts, None)}; all are kept")
        if self.out_of_order:
            found.append(f"{where}frames {_runs(self.out_of_order)} are earlier than the frame "
                         "before them")
        if self.beyond_video:
            found.append(f"{where}keys {_runs(self.beyond_video)} are past the video's "
                         f"{self.frame_count} frames; left out")
        return found


def _indexed_values(mapping: Any, source) -> dict[int, Any]:
    if not isinstance(mapping, Mapping) or not mapping:
        raise GMNFormatError("frame-time map", type(mapping).__name__, source,
                             "expected a non-empty JSON object {frame index: time}")
    values = {}
    for key, value in mapping.items():
        if not (isinstance(key, str) and _INDEX_RE.fullmatch(key)):
            raise GMNFormatError("frame-time map key", key, source, "expected a frame index")
        values[int(key)] = value
    return dict(sorted(values.items()))


def _shared(times: Mapping[int, datetime]) -> tuple[tuple[datetime, tuple[int, ...]], ...]:
    by_time: dict[datetime, list[int]] = {}
    for index, ts in times.items():
        by_time.setdefault(ts, []).append(index)
    return tuple((ts, tuple(ix)) for ts, ix in sorted(by_time.items()) if len(ix) > 1)


def _out_of_order(times: Mapping[int, datetime]) -> tuple[int, ...]:
    found, previous = [], None
    for index, ts in times.items():
        if previous is not None and ts < previous:
            found.append(index)
        previous = ts if previous is None else max(previous, ts)
    return tuple(found)


def parse_frame_time_map(mapping: Any, source: str | Path | None = None,
                         frame_count: int | None = None) -> FrameTimeMap:
    """Parse a frame-time map, keeping every frame whose time is known (see the module doc).

    ``frame_count``, the video's own frame count when the caller knows it, also finds frames
    missing after the last key. Raises :class:`GMNFormatError` only for a map that is not a
    non-empty ``{frame index: time}`` object.
    """
    values = _indexed_values(mapping, source)
    count = max(values) + 1 if frame_count is None else frame_count
    beyond = tuple(i for i in values if i >= count)
    times: dict[int, datetime] = {}
    flags: dict[int, str | None] = {}
    unreadable = []
    for index, value in values.items():
        if index >= count:
            continue
        try:
            times[index], flags[index] = parse_frame_time(value, source)
        except GMNFormatError:
            unreadable.append((index, value))
    missing = tuple(i for i in range(count) if i not in values)
    return FrameTimeMap(
        source=None if source is None else str(source), frame_count=count, times=times,
        flags=flags, missing=missing, unreadable=tuple(unreadable), shared_times=_shared(times),
        out_of_order=_out_of_order(times), beyond_video=beyond, flag_counts=Counter(flags.values()))


def load_frame_time_map(path: str | Path, frame_count: int | None = None) -> FrameTimeMap:
    path = Path(path)
    return parse_frame_time_map(load_json(path), path, frame_count)


def parse_frame_times(mapping: Any, source: str | Path | None = None) -> list[datetime]:
    """Strict form kept for current callers: a list indexed by frame number, refusing any map
    with a gap, an unreadable time or a time going backwards. New code uses
    :func:`parse_frame_time_map`, which keeps the known frames and reports the rest."""
    parsed = parse_frame_time_map(mapping, source)
    if parsed.unreadable:
        _, value = parsed.unreadable[0]
        parse_frame_time(value, source)  # raises the precise message for that value
    if parsed.missing:
        raise GMNFormatError("frame-time map", f"frame index {parsed.missing[0]} missing", source,
                             f"keys must run 0..{parsed.frame_count - 1}")
    if parsed.out_of_order:
        i = parsed.out_of_order[0]
        raise GMNFormatError("frame-time map", mapping[str(i)], source,
                             f"frame {i} is earlier than frame {i - 1}")
    return [parsed.times[i] for i in range(parsed.frame_count)]


def load_frame_times(path: str | Path) -> list[datetime]:
    """Strict form kept for current callers (see :func:`parse_frame_times`)."""
    path = Path(path)
    return parse_frame_times(load_json(path), path)
