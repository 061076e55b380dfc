"""Open the configured archive: ``source=local`` or ``source=sftp`` to a connection factory.

:func:`source_factory` turns the ``source`` config group into a callable that opens one new
connection per call, so each worker of a transfer holds its own. :func:`night_folder_suffixes`
reads ``source.night_folder_suffixes``, the night folder names the archive is read with.
"""

from __future__ import annotations

import threading
from pathlib import Path

from omegaconf import DictConfig, ListConfig

from data_prep.remote.local import LocalSource
from data_prep.remote.sftp import SftpSource, sftp_settings
from data_prep.remote.source import SourceError, SourceFactory
from gmn_base.night_folders import KNOWN_NIGHT_FOLDER_SUFFIXES


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


def night_folder_suffixes(cfg: DictConfig) -> tuple[str, ...]:
    """``source.night_folder_suffixes`` (``cfg`` is ``cfg.source``): a non-empty list of
    suffixes such as ``_detected``; absent or null: every known one."""
    value = cfg.get("night_folder_suffixes")
    if value is None:
        return KNOWN_NIGHT_FOLDER_SUFFIXES
    if not isinstance(value, (ListConfig, list, tuple)) or not value or not all(
            isinstance(v, str) and v.startswith("_") and len(v) > 1 for v in value):
        raise ValueError(f"source.night_folder_suffixes={value!r}: expected a non-empty list of "
                          f"suffixes starting with '_', e.g. {list(KNOWN_NIGHT_FOLDER_SUFFIXES)}")
    return tuple(str(v) for v in value)
