"""Who is writing: this process's pid and host, and whether a pid on this host still runs.

Temporaries (:mod:`.atomic`) and lock records (:mod:`.locks`) carry this identity, so a job
can tell a file left by a writer that died from one a job running beside it is still writing.
A pid can be judged only on its own host; files from other hosts are judged by age.
"""

from __future__ import annotations

import os
import re
import socket

_UNSAFE = re.compile(r"[^A-Za-z0-9-]")


def host_token() -> str:
    """This host's name as it appears in file names: letters, digits, ``-`` and ``_`` only
    (dots and anything else become ``_``), at most 63 characters."""
    return _UNSAFE.sub("_", socket.gethostname())[:63] or "unknown-host"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (a zombie counts as alive)."""
    if pid <= 0:  # 0 and negatives address process groups, never one writer
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True
