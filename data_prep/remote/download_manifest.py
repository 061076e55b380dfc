"""``download_manifest.csv``: the files ``plan`` chose and ``download`` fetches.

One row per file: station, night, kind (night or day), the remote path as the server spells
it, the local path relative to ``paths.data_dir``, and the size and mtime the listing gave.
``plan`` writes it (:func:`format_download_manifest`); ``download`` reads it back as
:class:`~data_prep.remote.fetch.DownloadJob` s (:func:`read_download_jobs`), refusing local
paths that would leave ``paths.data_dir``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from data_prep.remote.fetch import DownloadJob
from data_prep.remote.source import UnsafeNameError, check_remote_name, resolve_inside

MANIFEST_COLUMNS = ["station", "night", "kind", "remote_path", "local_path", "size", "mtime"]


@dataclass(frozen=True)
class DownloadRow:
    station: str
    night: str
    kind: str  # night | day
    remote_path: str
    local_path: str
    size: int
    mtime: int


def format_download_manifest(rows: list[DownloadRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for r in rows:
        writer.writerow([r.station, r.night, r.kind, r.remote_path, r.local_path, r.size, r.mtime])
    return out.getvalue()


def read_download_jobs(path: Path, data_dir: Path) -> tuple[list[DownloadJob], list[str]]:
    """Jobs from ``download_manifest.csv``; rows with unsafe local paths come back as errors."""
    if not path.is_file():
        raise FileNotFoundError(f"download manifest {path} not found: run `python -m data_prep.plan` "
                                f"first, or set download.manifest")
    jobs, errors = [], []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"remote_path", "local_path"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected {MANIFEST_COLUMNS}")
        for lineno, row in enumerate(reader, start=2):
            where = f"{path}:{lineno}"
            try:
                local = resolve_inside(data_dir, row["local_path"], where)
                check_remote_name(local.name, where)
                size = int(row["size"]) if row.get("size") else None
                mtime = int(row["mtime"]) if row.get("mtime") else None
            except (UnsafeNameError, ValueError) as exc:
                errors.append(str(exc))
                continue
            jobs.append(DownloadJob(row["remote_path"], local, size, mtime))
    return jobs, errors
