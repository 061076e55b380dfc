"""The project's frame image names: ``{ST}_{YYYYMMDD}_{HHMMSS}_{mmm}.png``.

Also the reference pipeline's station-less ``{YYYYMMDD}_{HHMMSS}_{mmm}.png`` and its image
lists (one ``name.png[,label]`` per line). Times are truncated to milliseconds, like RMS
frame times, so names round-trip exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gmn_base.errors import GMNFormatError
from gmn_base.station_time import STATION_PATTERN, as_utc, parse_compact_time

_IMAGE_RE = re.compile(
    rf"^(?:(?P<station>{STATION_PATTERN})_)?(?P<date>\d{{8}})_(?P<time>\d{{6}})_(?P<ms>\d{{3}})\.png$"
)


@dataclass(frozen=True)
class ImageName:
    """A frame image name; ``station`` is None for the reference pipeline's station-less form."""

    station: str | None
    timestamp: datetime

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
    ts = parse_compact_time(m["date"], m["time"], "image name", base, source)
    return ImageName(m["station"], ts.replace(microsecond=int(m["ms"]) * 1000))


def format_image_name(station: str | None, ts: datetime) -> str:
    ts = as_utc(ts)
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
