"""The archive layout in a local directory (a mounted archive, or the synthetic demo).

:class:`LocalSource` is a :class:`~data_prep.remote.source.RemoteSource` over a folder: paths
relative to ``source.root`` (absolute ones as they are), files read with plain ``open``.
A path that a symbolic link leads out of ``source.root`` (and out of an absolute
``source.video_root`` / ``source.flux_root``) is refused by name: an archive copied from
elsewhere must not pull ``~/.ssh`` or any other file into ``paths.data_dir``.
``source.follow_symlinks=true`` follows such links.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Iterator
from pathlib import Path

from data_prep.remote.source import RemoteEntry, SourceError, UnsafeNameError, WholeFile


class LinkOutsideRootError(UnsafeNameError):
    """A path of a local archive that a symbolic link leads out of ``source.root``."""


class LocalFile:
    def __init__(self, path: Path):
        self._fh = open(path, "rb")  # noqa: SIM115 - held open until close(), like an SFTP handle
        st = os.fstat(self._fh.fileno())
        self.size, self.mtime = st.st_size, int(st.st_mtime)

    def chunks(self, offset: int, chunk_size: int, pipelined: bool = True) -> Iterator[bytes]:
        self._fh.seek(offset)
        while data := self._fh.read(chunk_size):
            yield data

    def close(self) -> None:
        self._fh.close()


class LocalSource:
    """The server layout in a local directory; relative paths are relative to ``root``."""

    def __init__(self, root: str | Path, follow_symlinks: bool = False,
                 other_roots: tuple[str | Path, ...] = ()):
        """``other_roots``: absolute folders configured beside ``root`` (an absolute
        ``source.video_root``), inside which links may lead too."""
        self.root = Path(root)
        if not self.root.is_dir():
            raise SourceError(f"source.root {str(self.root)!r} is not a directory: point it at "
                              f"the folder that holds the archive layout (e.g. contrails/CA/...)")
        self.description = f"local:{self.root}"
        self.follow_symlinks = follow_symlinks
        self._inside = [Path(os.path.realpath(r)) for r in (self.root, *other_roots)]

    def _path(self, path: str) -> Path:
        full = self.root / path if not os.path.isabs(path) else Path(path)
        if not self.follow_symlinks:
            real = Path(os.path.realpath(full))
            if not any(real.is_relative_to(inside) for inside in self._inside):
                raise LinkOutsideRootError(
                    f"{full} leads through a symbolic link to {real}, outside source.root "
                    f"{self.root}: refused, so the archive pulls in no file from elsewhere; "
                    "set source.follow_symlinks=true to follow such links")
        return full

    def listdir(self, path: str) -> list[RemoteEntry]:
        entries = []
        with os.scandir(self._path(path)) as it:
            for item in it:
                st = item.stat()
                entries.append(RemoteEntry(item.name, st.st_size, int(st.st_mtime), item.is_dir()))
        return sorted(entries, key=lambda e: e.name)

    def stat(self, path: str) -> RemoteEntry:
        p = self._path(path)
        st = p.stat()
        return RemoteEntry(p.name, st.st_size, int(st.st_mtime), stat_mod.S_ISDIR(st.st_mode))

    def open(self, path: str, read_ahead: bool = False) -> LocalFile:
        return LocalFile(self._path(path))

    def read_small(self, paths: list[str]) -> list[WholeFile | None]:
        return [None] * len(paths)  # no round trips to save: every file goes through open()

    def close(self) -> None:
        pass
