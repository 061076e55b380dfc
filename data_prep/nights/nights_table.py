"""``nights.csv`` and ``good_weather_dates.json``: every capture session found, and the clear ones.

One :class:`NightRow` per capture session: its station, night id (the UTC date of its first
capture start), session id, night folders (several when RMS restarted), start and end of
capture, the local interval files found, the captures whose interval file is missing, the
number of clear intervals and the clear minutes. Both files record the night rule
(:data:`gmn_base.sessions.NIGHT_RULE`): a ``night_rule`` column, a top-level ``"night_rule"``
key. ``find`` writes them (:func:`night_rows`, :func:`nights_csv_text`,
:func:`good_weather_dates`); ``plan``, ``extract`` and ``label`` read the sessions back
(:func:`read_nights_csv`), refusing a file written by the old clock rule. Pure except the reader.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gmn_base.errors import GMNFormatError
from gmn_base.night_folders import parse_night_folder
from gmn_base.session_intervals import SessionIntervals
from gmn_base.sessions import NIGHT_RULE, CaptureSession, is_current_night_rule
from gmn_base.station_time import as_utc, parse_night, parse_station

NIGHTS_COLUMNS = ["station", "night", "session", "night_folders", "start", "end",
                  "interval_files", "missing_interval_files", "interval_count", "clear_minutes",
                  "all_cloudy", "night_rule"]
RULE_KEY = "night_rule"


class NightRuleError(ValueError):
    """A data file written under another night rule; the message says what to rerun."""


def old_rule_message(path: Path, found: str | None, rerun: str) -> str:
    what = "no night_rule" if found is None else f"night_rule {found!r}"
    return (f"{path} was written by an older night rule ({what}; this version ties frames to "
            f"capture sessions, {NIGHT_RULE}): rerun {rerun} so nights and labels are not "
            "mixed from two rules")


@dataclass(frozen=True)
class NightRow:
    station: str
    night: str
    session: str
    night_folders: tuple[str, ...]
    start: datetime
    end: datetime | None
    interval_files: tuple[str, ...]
    missing_interval_files: tuple[str, ...]  # capture ids
    interval_count: int
    clear_minutes: float

    @property
    def has_intervals(self) -> bool:
        return bool(self.interval_files)

    @property
    def all_cloudy(self) -> bool:
        """Every capture's file found, and not one clear interval."""
        return self.has_intervals and not self.missing_interval_files and not self.interval_count

    @property
    def clear(self) -> bool:
        return self.interval_count > 0

    def capture_session(self, source: str | Path | None = None) -> CaptureSession:
        folders = tuple(parse_night_folder(name, source) for name in self.night_folders)
        return CaptureSession(self.station, folders, self.end)


def night_rows(tied: Mapping[str, SessionIntervals], local_files: Mapping[str, str]
               ) -> list[NightRow]:
    """One row per session (``tied``: session id -> its intervals; ``local_files``: capture id
    -> the local interval file, relative to the interval folder), sorted by station and start."""
    rows = []
    for found in sorted(tied.values(), key=lambda f: (f.session.station, f.session.start)):
        session = found.session
        rows.append(NightRow(
            session.station, session.night_id, session.session_id,
            tuple(f.name for f in session.folders), session.start, session.end,
            tuple(local_files[c] for c in session.capture_ids if c in found.files),
            found.missing, len(found.intervals), round(found.clear_minutes(), 1)))
    return rows


def good_weather_dates(rows: list[NightRow], stations: list[str]) -> dict:
    """``{"night_rule": ..., station: [YYYYMMDD, ...]}``: each station's night ids with a clear
    interval (every station listed, an empty list for one without)."""
    dates: dict[str, list[str]] = {station: [] for station in stations}
    for row in rows:
        if row.clear:
            dates.setdefault(row.station, []).append(row.night)
    return {RULE_KEY: NIGHT_RULE,
            **{station: sorted(set(nights)) for station, nights in sorted(dates.items())}}


def _time(ts: datetime | None) -> str:
    return "" if ts is None else as_utc(ts).isoformat(timespec="microseconds")


def nights_csv_text(rows: list[NightRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(NIGHTS_COLUMNS)
    for r in rows:
        writer.writerow([r.station, r.night, r.session, ";".join(r.night_folders), _time(r.start),
                         _time(r.end), ";".join(r.interval_files),
                         ";".join(r.missing_interval_files), r.interval_count, r.clear_minutes,
                         str(r.all_cloudy).lower(), NIGHT_RULE])
    return out.getvalue()


def _parse_time(value: str, where: str) -> datetime | None:
    if not value:
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise GMNFormatError("time", value, where, "expected ISO 8601 UTC") from None


def _row(r: dict, path: Path, lineno: int) -> NightRow:
    where = f"{path}:{lineno}"
    if not is_current_night_rule(r[RULE_KEY] or None):
        raise NightRuleError(old_rule_message(path, r[RULE_KEY], "`python -m data_prep.find`"))
    row = NightRow(
        parse_station(r["station"], where), r["night"], r["session"],
        tuple(filter(None, r["night_folders"].split(";"))), _parse_time(r["start"], where),
        _parse_time(r["end"], where), tuple(filter(None, r["interval_files"].split(";"))),
        tuple(filter(None, r["missing_interval_files"].split(";"))), int(r["interval_count"]),
        float(r["clear_minutes"]))
    parse_night(row.night, where)
    if not row.night_folders or row.start is None:
        raise GMNFormatError("nights.csv row", r["session"], where, "no night folder or start")
    return row


def read_nights_csv(path: Path) -> list[NightRow]:
    """Rows of a ``nights.csv`` written by ``find``. A missing file raises FileNotFoundError, a
    file of the old clock rule :class:`NightRuleError`, both saying what to run."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m data_prep.find` first")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = set(reader.fieldnames or [])
        if RULE_KEY not in columns:
            raise NightRuleError(old_rule_message(path, None, "`python -m data_prep.find`"))
        missing = set(NIGHTS_COLUMNS) - columns
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; rerun "
                             "`python -m data_prep.find`")
        return [_row(r, path, lineno) for lineno, r in enumerate(reader, start=2)]


def sessions_of(rows: list[NightRow], source: str | Path | None = None) -> list[CaptureSession]:
    return [row.capture_session(source) for row in rows]
