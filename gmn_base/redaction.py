"""Secret redaction for anything that leaves the process: logs, saved configs, W&B.

Values under keys that look like secrets (``api_key``, ``token``, ``password`` ...) are
replaced before a nested config is written or logged. Secrets themselves come from the
environment, ssh-agent or key files and never belong in a config; this is the net for the
case where one was typed on a command line anyway.
"""

from __future__ import annotations

import re
from typing import Any

SECRET_KEY_RE = re.compile(r"(api_?key|token|secret|password|passwd|credential)", re.IGNORECASE)
REDACTED = "<redacted>"


def redact_secrets(value: Any) -> Any:
    """Copy of a nested dict/list with values under secret-looking keys replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if SECRET_KEY_RE.search(str(k)) and v not in (None, "")
                    else redact_secrets(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    return value
