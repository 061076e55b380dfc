"""Secret values typed on a command line are moved into the environment before Hydra starts.

Hydra saves the command line's overrides in ``.hydra/overrides.yaml``, ``hydra.yaml`` and a
multirun's ``multirun.yaml``, the composed config in ``.hydra/config.yaml``, and W&B records
``sys.argv``. Redacting those files afterwards would race the writers and miss copies
(launcher pickles, W&B's run log), so the value never reaches them: an override whose key is
secret-looking (:func:`gmn_base.redaction.is_secret_key`) or whose value is key material,
``key=v``, ``+key=v`` or ``++key=v``, becomes ``key=${oc.env:GMN_SECRET_KEY}`` with ``v`` in
that environment variable. Hydra then saves the interpolation, the job resolves it when it
reads the key, and every job of a multirun finds it, because launchers (joblib's worker
processes, submitit's local processes and SLURM's default ``--export=ALL``) inherit the
environment. Sweeping a secret is refused: it would need one variable per value.

Entry points wrap their ``@hydra.main`` function with :func:`guard_secrets`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import sys
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

# Hydra's own argument parser (no public name): which arguments are overrides is exactly
# what Hydra will take them to be, options with values (--config-dir X) included.
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from gmn_base.redaction import is_secret_key, looks_like_key_material

ENV_PREFIX = "GMN_SECRET_"


class SecretOverrideError(ValueError):
    """A secret override that cannot be moved out of the command line; the message names the
    key, never the value."""


def secret_variable(key: str) -> str:
    """The environment variable a secret override's value moves to: ``GMN_SECRET_HF_TOKEN``."""
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", key).upper()


def _raw_key(text: str) -> str:
    return text.split("=", 1)[0].lstrip("+~").split("@", 1)[0]


def protect_override(text: str, parser: OverridesParser) -> tuple[str, dict[str, str]]:
    """``text`` with a secret value replaced by an env interpolation, and the variable to set
    (empty when ``text`` holds no secret)."""
    try:
        override = parser.parse_override(text)
    except HydraException:
        if "=" in text and is_secret_key(_raw_key(text)):
            raise SecretOverrideError(
                f"{_raw_key(text)}=...: the value cannot be parsed as an override; quote it: "
                f"{_raw_key(text)}='...'") from None
        return text, {}  # not ours to judge: Hydra reports it
    key = override.key_or_group
    if override.is_delete() or override.value_type is None:
        return text, {}
    if override.is_sweep_override():
        if is_secret_key(key):
            raise SecretOverrideError(f"{key}: a secret value cannot be swept; give one value")
        return text, {}
    value = override.value()
    if not (is_secret_key(key) or looks_like_key_material(value)):
        return text, {}
    if value is None or value == "" or (isinstance(value, str) and "${" in value):
        return text, {}  # nothing secret, or it already comes from an interpolation
    if isinstance(value, (list, dict)):
        raise SecretOverrideError(f"{key}: expected one secret value, not a list or mapping")
    variable = secret_variable(key)
    return f"{override.get_key_element()}=${{oc.env:{variable}}}", {variable: str(value)}


def protect_overrides(overrides: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Every override with secret values moved out (:func:`protect_override`), and the
    environment variables that now hold them."""
    parser = OverridesParser.create()
    protected, environment = [], {}
    for text in overrides:
        new_text, variables = protect_override(text, parser)
        protected.append(new_text)
        environment.update(variables)
    return protected, environment


def hydra_overrides(argv: Sequence[str]) -> list[str]:
    """The overrides Hydra's own parser finds in ``argv``, and the arguments it would reject
    that look like overrides (so its error message shows no secret either)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            known, unknown = get_args_parser().parse_known_args(list(argv[1:]))
    except SystemExit:  # an option without its value: Hydra says so when it runs
        return [arg for arg in argv[1:] if "=" in arg and not arg.startswith("-")]
    return list(known.overrides) + [arg for arg in unknown if not arg.startswith("-")]


def protect_argv(argv: Sequence[str], environ: MutableMapping[str, str]) -> list[str]:
    """``argv`` with secret overrides replaced; their values are put into ``environ``."""
    overrides = hydra_overrides(argv)
    if not overrides:
        return list(argv)
    protected, environment = protect_overrides(overrides)
    replacement = dict(zip(overrides, protected))
    environ.update(environment)
    return [argv[0], *(replacement.get(arg, arg) for arg in argv[1:])]


def guard_secrets(main: Callable[[], Any]) -> Callable[[], Any]:
    """Wrap an entry point's ``@hydra.main`` function: secret overrides leave ``sys.argv``
    (into the environment) before Hydra reads it; one that cannot is refused in one line."""

    @functools.wraps(main)
    def guarded() -> Any:
        try:
            sys.argv[:] = protect_argv(sys.argv, os.environ)
        except SecretOverrideError as exc:
            print(f"{Path(sys.argv[0]).name}: {exc}", file=sys.stderr)
            sys.exit(2)
        return main()

    return guarded
