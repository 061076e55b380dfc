"""Open the configured archive: ``source=local`` or ``source=sftp`` to a connection factory.

:func:`source_factory` turns the ``source`` config group into a callable that opens one new
connection per call, so each worker of a transfer holds its own.
"""

from __future__ import annotations

import threading
from pathlib import Path

from omegaconf import DictConfig

from data_prep.remote.local import LocalSource
from data_prep.remote.sftp import SftpSource, sftp_settings
from data_prep.remote.source import SourceError, SourceFactory


def source_factory(cfg: DictConfig) -> SourceFactory:
    """A callable that opens a new connection to the configured source (``cfg`` is ``cfg.source``)."""
    kind = cfg.get("kind")
    if kind == "local":
        root = Path(str(cfg.root))
        follow = bool(cfg.get("follow_symlinks", False))
        absolute = tuple(str(cfg[key]) for key in ("video_root", "flux_root")
                         if cfg.get(key) and Path(str(cfg[key])).is_absolute())
        return lambda: LocalSource(root, follow, absolute)
    if kind == "sftp":
        settings = sftp_settings(cfg)
        lock = threading.Lock()  # workers accepting a new host key at once append in turn
        return lambda: SftpSource(settings, lock)
    raise SourceError(f"source.kind {kind!r} is not one of: sftp, local (pick with source=sftp)")
