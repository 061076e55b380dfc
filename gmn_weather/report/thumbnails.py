"""Small JPEG thumbnails of the gallery's images, beside the report page.

One file per image under ``report_files/thumbs/``, named by the image's stem and a key of
its size, modification time and the thumbnail size: a thumbnail is made once and reused
while its source is unchanged; a changed source gets a new key and a new file. Files no
page entry uses any more are removed, so the folder stays as large as one page. Each file
is written atomically; an unreadable or missing image gets no thumbnail and is counted.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from gmn_base.atomic import atomic_path

log = logging.getLogger(__name__)

THUMB_WIDTH = 240  # px; two columns of tiles fit a laptop screen at this width
JPEG_QUALITY = 80
_WORKERS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class Thumbnail:
    path: Path
    width: int
    height: int


@dataclass
class ThumbnailReport:
    thumbnails: dict[str, Thumbnail] = field(default_factory=dict)  # image_filename -> file
    made: int = 0
    reused: int = 0
    missing: list[str] = field(default_factory=list)  # image not in the folder
    unreadable: list[str] = field(default_factory=list)
    removed: int = 0  # stale thumbnails deleted


def thumbnail_name(image: Path, width: int = THUMB_WIDTH) -> str:
    """``{stem}-{key}.jpg``; the key changes whenever the source file does."""
    stat = image.stat()
    key = hashlib.sha1(f"{image.name}|{stat.st_size}|{stat.st_mtime_ns}|{width}".encode())
    return f"{image.stem}-{key.hexdigest()[:10]}.jpg"


def _size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def _make(image: Path, target: Path, width: int) -> tuple[int, int]:
    with Image.open(image) as source:
        source.draft("RGB", (width, width))  # JPEG sources decode at a reduced scale
        picture = source.convert("RGB")
    height = max(1, round(picture.height * width / picture.width))
    if picture.width > width:
        picture = picture.resize((width, height), Image.Resampling.LANCZOS)
    with atomic_path(target, fsync=False) as tmp:
        picture.save(tmp, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return picture.size


def _one(image_dir: Path, name: str, out_dir: Path, width: int):
    """(name, Thumbnail or None, outcome) for one image."""
    image = image_dir / name
    if not image.is_file():
        return name, None, "missing"
    target = out_dir / thumbnail_name(image, width)
    try:
        if target.is_file():
            return name, Thumbnail(target, *_size_of(target)), "reused"
        return name, Thumbnail(target, *_make(image, target, width)), "made"
    except (UnidentifiedImageError, OSError) as exc:
        log.warning("report: no thumbnail for %s (%s)", image, exc)
        return name, None, "unreadable"


def ensure_thumbnails(image_dir: Path | None, names: list[str], out_dir: Path,
                      width: int = THUMB_WIDTH) -> ThumbnailReport:
    """Thumbnails of ``names`` (files in ``image_dir``) in ``out_dir``, made or reused."""
    report = ThumbnailReport()
    if image_dir is None:
        report.missing = list(names)
        return report
    out_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(_WORKERS) as pool:
        results = list(pool.map(lambda n: _one(image_dir, n, out_dir, width), names))
    for name, thumb, outcome in results:
        if thumb is not None:
            report.thumbnails[name] = thumb
        if outcome == "made":
            report.made += 1
        elif outcome == "reused":
            report.reused += 1
        else:
            getattr(report, outcome).append(name)
    in_use = {thumb.path.name for thumb in report.thumbnails.values()}
    for stale in out_dir.glob("*.jpg"):
        if stale.name not in in_use:
            stale.unlink(missing_ok=True)
            report.removed += 1
    return report
