"""The night-to-day manifest: one row per image, what became of it and what it cost.

``night_to_day_manifest.csv`` has the columns :data:`MANIFEST_COLUMNS`. It is rewritten
whole, atomically (:class:`ManifestWriter`), after every finished image, so a reader (or a
killed run) only ever sees a complete, valid CSV; a restart trusts it to decide what not to
send again (:func:`plan_work`).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from data_prep.converters.local_day_style import LOCAL_MODEL
from gmn_base.atomic import write_text

MANIFEST_NAME = "night_to_day_manifest.csv"  # in paths.data_dir
MANIFEST_COLUMNS = ("image_filename", "status", "attempts", "verified", "corrected", "model",
                    "prompt_hash", "error")
STATUSES = ("done", "blocked", "failed")


class ManifestError(ValueError):
    """A manifest that cannot be trusted; names the file, line and value."""


@dataclass(frozen=True)
class ManifestRow:
    image_filename: str
    status: str  # done | blocked | failed
    attempts: int  # requests sent for this image, over all runs
    verified: bool  # the check model answered clearly (HAS_STARS or NO_STARS)
    corrected: bool  # stars were found and the saved image is the corrected one
    model: str
    prompt_hash: str
    error: str = ""  # why it failed or was blocked; for done rows a note (e.g. resized)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"manifest status {self.status!r} is not one of {STATUSES}")


def _parse_bool(value: str, path: Path, line: int) -> bool:
    if value in ("true", "True", "1"):
        return True
    if value in ("false", "False", "0", ""):
        return False
    raise ManifestError(f"{path} line {line}: expected true/false, got {value!r}")


def parse_manifest(text: str, path: Path) -> dict[str, ManifestRow]:
    """Rows by image file name (a later row for the same image wins)."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        return {}
    if tuple(reader.fieldnames) != MANIFEST_COLUMNS:
        raise ManifestError(f"{path}: header {reader.fieldnames} is not {list(MANIFEST_COLUMNS)}; "
                            "move the file away to start a new manifest")
    rows: dict[str, ManifestRow] = {}
    for line, record in enumerate(reader, start=2):
        if None in record or any(v is None for v in record.values()):
            raise ManifestError(f"{path} line {line}: expected {len(MANIFEST_COLUMNS)} fields")
        try:
            row = ManifestRow(
                image_filename=record["image_filename"],
                status=record["status"],
                attempts=int(record["attempts"] or 0),
                verified=_parse_bool(record["verified"], path, line),
                corrected=_parse_bool(record["corrected"], path, line),
                model=record["model"],
                prompt_hash=record["prompt_hash"],
                error=record["error"],
            )
        except ValueError as exc:
            raise ManifestError(f"{path} line {line}: {exc}") from exc
        rows[row.image_filename] = row
    return rows


def read_manifest(path: str | Path) -> dict[str, ManifestRow]:
    path = Path(path)
    if not path.exists():
        return {}
    return parse_manifest(path.read_text(), path)


def format_manifest(rows: Mapping[str, ManifestRow]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for name in sorted(rows):
        record = asdict(rows[name])
        record["verified"] = "true" if record["verified"] else "false"
        record["corrected"] = "true" if record["corrected"] else "false"
        writer.writerow(record)
    return buf.getvalue()


def write_manifest(path: str | Path, rows: Mapping[str, ManifestRow]) -> None:
    write_text(path, format_manifest(rows))


class ManifestWriter:
    """Holds the manifest rows and rewrites the file atomically, at most every
    ``min_interval_s`` (0: after every row) and on :meth:`flush`."""

    def __init__(self, path: Path, rows: dict[str, ManifestRow], min_interval_s: float = 0.0):
        self.path = path
        self.rows = rows
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self._dirty = False

    def record(self, row: ManifestRow) -> None:
        self.rows[row.image_filename] = row
        self._dirty = True
        if time.monotonic() - self._last >= self.min_interval_s:
            self.flush()

    def flush(self) -> None:
        if self._dirty:
            write_manifest(self.path, self.rows)
            self._dirty = False
            self._last = time.monotonic()


# --- what to convert now ----------------------------------------------------------------------


@dataclass(frozen=True)
class WorkPlan:
    todo: list[str]
    skipped_done: int
    skipped_blocked: int
    capped: int  # pending images left for a later run by converter.max_images


def is_local_row(row: ManifestRow) -> bool:
    return row.model == LOCAL_MODEL


def plan_work(names: Iterable[str], manifest: Mapping[str, ManifestRow], local: bool,
              retry_blocked: bool, outputs: set[str], max_images: int | None) -> WorkPlan:
    """Which images to convert now. A ``done`` row counts while its PNG exists, except a local
    one in a Gemini run (the offline stand-in does not stop the real conversion); a Gemini
    image is never replaced by a local one (it was paid for). A ``blocked`` row of the same
    converter is final unless ``retry_blocked``; ``failed`` and unseen images are todo."""
    todo, done, blocked = [], 0, 0
    for name in sorted(names):
        row = manifest.get(name)
        if row is not None:
            same_converter = is_local_row(row) == local
            if row.status == "done" and name in outputs and (same_converter or local):
                done += 1
                continue
            if row.status == "blocked" and same_converter and not retry_blocked:
                blocked += 1
                continue
        todo.append(name)
    capped = 0
    if max_images is not None and len(todo) > max_images:
        capped = len(todo) - max_images
        todo = todo[:max_images]
    return WorkPlan(todo, done, blocked, capped)
