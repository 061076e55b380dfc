"""Station ids, UTC instants and night ids: the small words every GMN name is built from.

Every time handed out is timezone-aware UTC; naive times are UTC by GMN convention. A night
id is written ``YYYYMMDD``; which date a capture's night id is belongs to
:mod:`gmn_base.sessions` (the UTC date of the session's first capture start).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path

from gmn_base.errors import GMNFormatError

UTC = timezone.utc

STATION_PATTERN = r"[A-Z]{2}[A-Z0-9]{4}"
_STATION_RE = re.compile(rf"^{STATION_PATTERN}$")


def parse_station(value: str, source: str | Path | None = None) -> str:
    """Return a valid station id (two letters + four letters/digits), else raise."""
    if not isinstance(value, str) or not _STATION_RE.match(value):
        raise GMNFormatError(
            "station id", value, source, "expected two letters and four letters/digits, e.g. CAWEC2"
        )
    return value


def parse_compact_time(date_s: str, time_s: str, what: str, value: str,
                       source: str | Path | None) -> datetime:
    """``YYYYMMDD`` + ``HHMMSS`` as UTC; a date or time out of range names ``what`` and ``value``."""
    try:
        return datetime.strptime(date_s + time_s, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        raise GMNFormatError(what, value, source, "date or time out of range") from None


def as_utc(ts: datetime) -> datetime:
    """Naive datetimes are UTC by GMN convention; aware ones are converted to UTC."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def frame_time_at(ts: datetime) -> datetime:
    """Truncate a time to the millisecond precision RMS frame and FF times carry."""
    ts = as_utc(ts)
    return ts.replace(microsecond=(ts.microsecond // 1000) * 1000)


def format_night(night: date) -> str:
    return night.strftime("%Y%m%d")


def parse_night(value: str, source: str | Path | None = None) -> date:
    """Parse a night id written as ``YYYYMMDD`` (or an int of that form)."""
    text = str(value)
    if not re.fullmatch(r"\d{8}", text):
        raise GMNFormatError("night (YYYYMMDD)", value, source)
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise GMNFormatError("night (YYYYMMDD)", value, source, "no such date") from None
