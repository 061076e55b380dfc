"""What counts as a secret, and secret redaction for anything that leaves the process.

One rule for every layer: a config key is secret-looking when one of its words (split at
``_``, ``-`` and camelCase) is a secret word (``password``, ``passphrase``, ``token``,
``secret``, ``credential``, an ``api_key``/``access_key``/``private_key``, or a bare ``key``),
unless its last word says it only names where a secret lives (``_env``, ``_file``,
``_path``, ``_dir``: ``source.passphrase_env``, ``source.key_file``). A value is secret
whatever its key when it holds key material (a PEM ``PRIVATE KEY`` block).
:mod:`gmn_base.command_line` keeps such values typed on a command line out of every saved
file, :mod:`gmn_base.run_checks` refuses them in config files, and :func:`redact_secrets`
is the net for anything a process writes or logs itself (``config.yaml``, W&B's config).
"""

from __future__ import annotations

import re
from typing import Any

_SECRET_WORDS = frozenset({"password", "passwd", "passphrase", "token", "secret", "secrets",
                           "credential", "credentials", "apikey"})
_SECRET_PAIRS = ("api_key", "access_key", "private_key", "secret_key")
_NAMES_A_PLACE = frozenset({"env", "file", "path", "dir", "var", "name"})
# One key component by regular expression, for callers that match names one by one (it
# ignores the _env/_file exemption and camelCase); is_secret_key is the rule.
SECRET_KEY_RE = re.compile(
    r"(?:^|[_-])(?:" + "|".join(sorted(_SECRET_WORDS) + [p.replace("_", "_?") for p in _SECRET_PAIRS])
    + r")(?:[_-]|$)", re.IGNORECASE)
_KEY_MATERIAL_RE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
REDACTED = "<redacted>"


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w.lower() for w in re.split(r"[_\-\s]+", spaced) if w]


def is_secret_key(name: str) -> bool:
    """Whether a config key names a secret value (``hf_token``, ``WANDB_API_KEY``,
    ``source.password``); a dotted key is secret when any of its components is."""
    if "." in name:
        return any(is_secret_key(part) for part in name.split("."))
    words = _words(str(name))
    if not words or words[-1] in _NAMES_A_PLACE:
        return False
    if _SECRET_WORDS.intersection(words) or words == ["key"]:
        return True
    joined = "_".join(words)
    return any(re.search(rf"(?:^|_){pair}(?:_|$)", joined) for pair in _SECRET_PAIRS)


def looks_like_key_material(value: Any) -> bool:
    """A PEM private key block (SSH, TLS): secret under any key name."""
    return isinstance(value, str) and bool(_KEY_MATERIAL_RE.search(value))


def redact_secrets(value: Any) -> Any:
    """Copy of a nested dict/list with values under secret-looking keys, and key material
    anywhere, replaced by ``<redacted>``."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(str(k)) and v not in (None, "")
                    else redact_secrets(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    return REDACTED if looks_like_key_material(value) else value
