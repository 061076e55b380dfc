"""Atomic file writes shared by every pipeline step and the training outputs.

A file is written to a hidden temporary name in the same folder, flushed, then moved over
its final name with ``os.replace``; a step killed at any moment leaves either the old file or
the new one, never half a file. The temporary is created with mode 0666 less the umask, as a
plain ``open()`` would, so outputs are as readable as any file the user writes (a group-shared
data dir stays shared).

Temporary names carry their writer's identity: ``.{name}.{pid}@{host}.{random}.tmp``. At
start-up a step calls :func:`remove_stale_temporaries`, which removes only temporaries whose
writer is gone, never one that a job running beside it is still writing:

- same host: removed when no process with that pid exists;
- another host (a shared file system): the pid cannot be checked there, so removed only when
  the file is older than :data:`STALE_AFTER_S` (24 h; no write of this project takes that long);
- any host: older than :data:`STALE_AFTER_S` (a pid reused since its writer died);
- a name without identity (written before names carried one): removed, as before.

Limits: a writer in another pid namespace that reports this host's name (a container sharing
the host's UTS namespace but not its pids) looks dead here; give such containers their own
host name.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gmn_base.process_identity import host_token, pid_alive

TEMP_SUFFIX = ".tmp"
STALE_AFTER_S = 24 * 3600.0

_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]+)\.[0-9a-f]+"
                        + re.escape(TEMP_SUFFIX) + r"$")


@dataclass(frozen=True)
class TemporaryWriter:
    """Who wrote a temporary, read back from its name."""

    target: str  # the final file's name
    pid: int
    host: str  # as :func:`gmn_base.process_identity.host_token` gives it


def temporary_name(target: str) -> str:
    """A fresh temporary name for ``target`` (a file name, not a path) written by this process."""
    return f".{target}.{os.getpid()}@{host_token()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


def temporary_writer(name: str) -> TemporaryWriter | None:
    """The writer recorded in a temporary's name; None for a name without one."""
    match = _TEMP_NAME.match(name)
    if match is None:
        return None
    return TemporaryWriter(match["target"], int(match["pid"]), match["host"])


def _create_temporary(path: Path) -> Path:
    while True:
        tmp = path.with_name(temporary_name(path.name))
        try:
            # 0o666: the kernel applies the umask (and a default ACL), as for a plain open().
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:  # 32 random bits collided: draw again
            continue
        os.close(fd)
        return tmp


@contextlib.contextmanager
def atomic_path(path: str | Path, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The caller writes the temporary file however it likes (PIL ``save``, pandas ``to_csv``,
    matplotlib ``savefig`` ...). On an exception the temporary file is removed and ``path``
    is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(path)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(path: str | Path, frame) -> None:
    """Write a pandas DataFrame as CSV (no index) atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def writer_is_gone(tmp: Path, now: float | None = None) -> bool:
    """Whether the process that wrote temporary ``tmp`` has stopped (the rules above)."""
    writer = temporary_writer(tmp.name)
    if writer is None:
        return True
    try:
        age = (time.time() if now is None else now) - tmp.stat().st_mtime
    except FileNotFoundError:  # its writer just finished or gave up
        return False
    if age > STALE_AFTER_S:
        return True
    return writer.host == host_token() and not pid_alive(writer.pid)


def remove_stale_temporaries(folder: str | Path, *, target: str | None = None) -> int:
    """Delete the temporaries in ``folder`` (not recursive) whose writer is gone; return how
    many. ``target``: only those of the file with this name (e.g. a manifest)."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    pattern = f".{glob.escape(target)}.*{TEMP_SUFFIX}" if target else f".*{TEMP_SUFFIX}"
    now = time.time()
    removed = 0
    for tmp in folder.glob(pattern):
        writer = temporary_writer(tmp.name)
        if target and writer is not None and writer.target != target:
            continue  # a temporary of another file whose name starts like target
        if writer_is_gone(tmp, now):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed += 1
    return removed
