"""Checks a Hydra run passes before anything is written: secrets, and writable folders.

Hydra creates the run's folder, opens its log file and saves ``.hydra/`` before the task
function starts, so a bad path surfaced as a traceback from ``mkdir`` or from "Unable to
configure handler 'file'", and a secret in a config file was saved before any code of ours
ran. :class:`RunChecks` is a Hydra callback (``hydra.callbacks.run_checks`` in
``conf/base.yaml`` and ``conf/prep.yaml``); ``on_run_start`` and ``on_multirun_start`` run
after composition and before any of that. It refuses, each problem on one line and exit 2:

- a secret-looking key under a refused section (``refused_secrets``: ``source`` signs in
  with SSH keys only, ``converter`` reads its API key from the environment), however set;
- a secret value written literally in a config file: secrets come from the environment
  (``key: ${oc.env:VAR}``); command-line values arrive so already
  (:mod:`gmn_base.command_line`);
- a folder that cannot be written (``writable_dirs``, the run's or sweep's Hydra folder) or
  a file whose folder cannot (``writable_files``), naming the key and the path.

Pure cores (:func:`secret_problems`, :func:`write_problem`) sit beside the callback.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gmn_base.redaction import is_secret_key, looks_like_key_material


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf of a plain container; interpolations stay text."""
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for name, value in items:
        path = f"{prefix}.{name}" if prefix else str(name)
        if isinstance(value, (dict, list)):
            yield from _leaves(value, path)
        else:
            yield path, value


def secret_problems(config: DictConfig, refused: Mapping[str, str]) -> list[str]:
    """What :class:`RunChecks` refuses about secrets in ``config`` (pure)."""
    problems = []
    for key, value in _leaves(OmegaConf.to_container(config, resolve=False)):
        if value in (None, "") or key.startswith("hydra.callbacks."):
            continue
        interpolated = isinstance(value, str) and "${" in value
        section = key.split(".", 1)[0]
        if is_secret_key(key) and section in refused:
            problems.append(f"{key} is not accepted: {refused[section]}")
        elif not interpolated and (is_secret_key(key) or looks_like_key_material(value)):
            problems.append(f"{key} holds a secret written in a config file; secrets come "
                            f"from the environment: {key.rsplit('.', 1)[-1]}: "
                            "${oc.env:YOUR_VARIABLE} in the file, or give it on the command "
                            "line (it is kept out of every saved file)")
    return problems


def write_problem(path: str | Path, is_file: bool = False) -> str | None:
    """Why ``path`` (a folder, or a file with ``is_file``) cannot be written, or None.

    The nearest existing folder on the way must be a folder this process can create files
    in: probed with an unnamed temporary file, so ownership, mode bits, ACLs, read-only
    mounts and immutable folders all count, for root too.
    """
    target = Path(os.path.abspath(path))
    if is_file:
        if target.is_dir():
            return f"{target} is a folder, not a file"
        target = target.parent
    probe = target
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        return f"cannot write in {probe} ({exc.strerror or exc})"
    return None


class RunChecks(Callback):
    """Hydra callback: refuse a run before Hydra writes anything (see the module doc).

    ``writable_dirs`` / ``writable_files`` map the key a user sets to the path it gives
    (interpolated by Hydra); ``refused_secrets`` maps a config section to the reason its
    secret-looking keys are not accepted.
    """

    def __init__(self, writable_dirs: Mapping[str, Any] | None = None,
                 writable_files: Mapping[str, Any] | None = None,
                 refused_secrets: Mapping[str, str] | None = None):
        self.writable_dirs = dict(writable_dirs or {})
        self.writable_files = dict(writable_files or {})
        self.refused_secrets = dict(refused_secrets or {})

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir")

    def problems(self, config: DictConfig, hydra_dir_key: str) -> list[str]:
        problems = secret_problems(config, self.refused_secrets)
        wanted = [(key, path, False) for key, path in self.writable_dirs.items()]
        wanted += [(key, path, True) for key, path in self.writable_files.items()]
        try:
            wanted.append((hydra_dir_key, OmegaConf.select(config, hydra_dir_key), False))
        except OmegaConfBaseException as exc:  # a resolver's own error names the value at fault
            cause = exc.__cause__ or f"{hydra_dir_key}: {exc}"
            problems.append(str(cause).splitlines()[0])
        seen = set()
        for key, path, is_file in wanted:
            problem = None if path is None else write_problem(str(path), is_file)
            if problem and problem not in seen:  # several keys under one unwritable folder
                seen.add(problem)
                what = "a writable file" if is_file else "a folder you can write to"
                problems.append(f"{key}={path}: {problem}; set {key} to {what}")
        return problems

    def _check(self, config: DictConfig, hydra_dir_key: str) -> None:
        problems = self.problems(config, hydra_dir_key)
        if problems:
            app = OmegaConf.select(config, "hydra.job.name", default="run")
            for problem in problems:
                print(f"{app}: {problem}", file=sys.stderr)
            sys.exit(2)
