"""What find, plan and download know of the archive: one connection, whatever it is.

A source (an SFTP server, :mod:`data_prep.remote.sftp`, or a local directory with the same
layout, :mod:`data_prep.remote.local`) implements :class:`RemoteSource`: list a folder, stat a
file, open a file for reading from an offset, read a batch of small files whole. A source object
is one connection: workers each open their own through the factory
:func:`data_prep.remote.connect.source_factory` gives. Names that come back from the server
are data: :func:`check_remote_name` rejects any that could step outside the folder they are
written to, and :func:`safe_entries` splits a listing into usable entries and rejections.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# One SFTP read asks for OpenSSH sftp-server's largest reply (SFTP_MAX_READ_LENGTH, 255 KiB):
# paramiko's per-request overhead is the bottleneck, and 8x fewer requests than its 32 KiB
# default cut its CPU per byte several-fold. A server that replies shorter stays correct:
# paramiko fills the gaps with plain reads.
READ_REQUEST_SIZE = 255 * 1024


class SourceError(RuntimeError):
    """A source cannot be used as configured; the message names the key or path at fault."""


class SourceUnreachable(ConnectionError):
    """No connection to the server could be opened (refused, unresolvable, timed out).

    Retried like a dropped connection; when a file's retries are used up this way the whole
    run stops, instead of every other file waiting through the same retries."""


class UnsafeNameError(ValueError):
    """A remote name that would step outside the folder it is written to."""


@dataclass(frozen=True)
class RemoteEntry:
    """One item of a remote folder listing (or a stat result)."""

    name: str
    size: int
    mtime: int
    is_dir: bool


@dataclass(frozen=True)
class WholeFile:
    """A small file read in one request, with the size and mtime its fstat gave alongside."""

    size: int
    mtime: int
    data: bytes


class RemoteFile(Protocol):
    size: int
    mtime: int

    def chunks(self, offset: int, chunk_size: int, pipelined: bool = True) -> Iterator[bytes]:
        """The file's bytes from ``offset`` on, in blocks of about ``chunk_size`` (a source
        that streams a file in blocks of its own, like SFTP read-ahead, yields those)."""
        ...

    def close(self) -> None: ...


class RemoteSource(Protocol):
    """One connection to the archive. Paths are POSIX strings as the server spells them."""

    description: str

    def listdir(self, path: str) -> list[RemoteEntry]: ...

    def stat(self, path: str) -> RemoteEntry: ...

    def open(self, path: str, read_ahead: bool = False) -> RemoteFile:
        """Open ``path`` for reading; ``read_ahead``: the caller will read it from offset 0, so
        its first block may be asked for together with its size and mtime."""
        ...

    def read_small(self, paths: list[str]) -> list[WholeFile | None]:
        """Each of ``paths`` read whole, or None for one to fetch through :meth:`open`
        (missing, unreadable, or larger than one read request)."""
        ...

    def close(self) -> None: ...


SourceFactory = Callable[[], RemoteSource]


# --- names ----------------------------------------------------------------------------------


def check_remote_name(name: str, where: str = "") -> str:
    """Return ``name`` if it is a plain file or folder name, else raise :class:`UnsafeNameError`.

    Rejects empty names, ``.``, ``..``, and names holding ``/``, ``\\`` or NUL: written to
    disk, they could land outside the folder they belong to.
    """
    bad = (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name)
    if bad:
        in_where = f" in {where}" if where else ""
        raise UnsafeNameError(
            f"rejected remote name {name!r}{in_where}: names with a path separator or '..' "
            f"could be written outside paths.data_dir")
    return name


def resolve_inside(base: Path, relative: str, where: str = "") -> Path:
    """Join a relative local path from a manifest onto ``base``, refusing to leave ``base``."""
    parts = relative.replace("\\", "/").split("/")
    if not relative or os.path.isabs(relative) or relative.startswith(("/", "\\")) or any(
            p in ("..", "") for p in parts):
        in_where = f" in {where}" if where else ""
        raise UnsafeNameError(f"rejected local path {relative!r}{in_where}: it must be relative to "
                              f"paths.data_dir without '..' or empty parts")
    return base.joinpath(*parts)


def safe_entries(entries: list[RemoteEntry], where: str) -> tuple[list[RemoteEntry], list[str]]:
    """Split a listing into usable entries and rejection messages for unsafe names."""
    good, rejected = [], []
    for entry in entries:
        try:
            check_remote_name(entry.name, where)
            good.append(entry)
        except UnsafeNameError as exc:
            rejected.append(str(exc))
    return good, rejected
