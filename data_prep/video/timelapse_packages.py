"""Timelapse packages: RMS's ``..._frames_timelapse.tar``, a video and its frame-time map inside.

RMS (``RMS/ArchiveDetections.py``: ``archiveFrameTimelapse``) may pack a timelapse's
``_frames_timelapse.mp4`` and ``_frametimes.json`` into one uncompressed ``.tar``, members by
base name. :func:`unpack_packages` writes those two files beside each package under a folder
(atomically; skipped when already there with the member's size), so extraction reads them
like loose files. Nothing is ever written outside the package's folder: only the expected
members are read, each written under its base name; a member whose path is absolute or
climbs with ``..``, a link or a device, or a package without its video or map, is refused by
name.
"""

from __future__ import annotations

import logging
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from data_prep.summary import StepSummary
from gmn_base.atomic import atomic_path
from gmn_base.errors import GMNFormatError
from gmn_base.timelapse_names import PACKAGE_SUFFIX, parse_timelapse_name

log = logging.getLogger(__name__)


def _member_base(member: tarfile.TarInfo, package: Path) -> str:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        raise GMNFormatError("timelapse package member", member.name, package,
                             "its path leaves the package's folder")
    if not member.isfile():
        raise GMNFormatError("timelapse package member", member.name, package,
                             "not a regular file (a link or device)")
    return path.name


def unpack_package(package: Path) -> list[Path]:
    """Write the video and frame-time map inside ``package`` beside it; return the files
    written (empty when both were already there)."""
    lapse = parse_timelapse_name(package.name, package)
    wanted = set(lapse.package_members()) | {lapse.file_name("timestamps")}
    written, found = [], set()
    with tarfile.open(package, "r:") as tar:  # uncompressed, as RMS writes it
        for member in tar.getmembers():
            if PurePosixPath(member.name).name not in wanted:
                log.debug("%s: member %s is not the timelapse; left in the package", package,
                          member.name)
                continue
            base = _member_base(member, package)
            found.add(base)
            target = package.parent / base
            if target.is_file() and target.stat().st_size == member.size:
                continue
            source = tar.extractfile(member)
            with atomic_path(target) as tmp, tmp.open("wb") as out:
                shutil.copyfileobj(source, out)
            written.append(target)
    video, frame_map = lapse.package_members()
    if video not in found or not found & (wanted - {video}):
        missing = video if video not in found else frame_map
        raise GMNFormatError("timelapse package", package.name, package, f"no member {missing}")
    return written


def unpack_packages(folder: Path, summary: StepSummary) -> None:
    """Unpack every package under ``folder`` (any depth); a bad one is a failure naming it."""
    for package in sorted(folder.rglob(f"*{PACKAGE_SUFFIX}")):
        if package.name.startswith("."):
            continue
        try:
            if unpack_package(package):
                summary.count("packages_unpacked")
        except (GMNFormatError, tarfile.TarError, OSError) as exc:
            summary.add_failure(str(exc) if str(package) in str(exc) else f"{package}: {exc}")
            summary.count("packages_failed")
