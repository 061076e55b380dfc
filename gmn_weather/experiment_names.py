"""Experiment names from the command line: the overrides that change training, made readable.

An experiment is one training configuration, so its default name must change whenever a
command-line override changes what the folds learn, and must not change for overrides that
only say where, how fast or how to log (``fold``, ``mode``, paths, loggers, launchers,
device keys, ``tags``, the analysis rule). Pure functions over Hydra override strings
(``hydra.overrides.task``): :func:`training_overrides` keeps those that change training, in
one canonical spelling, and :func:`experiment_name` appends them to a readable stem
(``resnet18_light`` + ``model.optimizer.lr=1e-2`` -> ``resnet18_light_lr-0.01``), or a stable
short hash of them once the name would grow past :data:`MAX_NAME_LENGTH`. A name must be
usable as a command-line value itself (``name=...``, ``checkpoint=outputs/<name>/final``),
where ``=``, ``,`` (a sweep), ``~`` and brackets are Hydra syntax: key and value are joined
by ``-``, list items by ``+``. The resolvers in :mod:`gmn_weather.hydra_config` feed these
functions from the running job's overrides.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override

from gmn_base.redaction import SECRET_KEY_RE
from gmn_weather.fingerprint import NOT_FINGERPRINTED

# Config sections whose keys decide what a fold learns (what the fingerprint covers).
TRAINING_SECTIONS = ("data", "model", "augmentation", "trainer")
TRAINING_KEYS = ("seed", "callbacks.oof.weights")
# Config groups whose option changes training but is not spelled by the stem.
TRAINING_GROUPS = ("data", "callbacks")
# Config groups and keys the stem already spells (model.backbone, augmentation.name), or
# whose configs set the stem themselves (experiment/, debug/, model=features_gbm).
STEM_GROUPS = ("model", "augmentation", "experiment", "debug")
STEM_KEYS = ("model.backbone", "augmentation.name")
# Longer names become ``{stem}_{hash}``; a folder name should stay readable in a listing.
MAX_NAME_LENGTH = 64
HASH_LENGTH = 8
# What may appear in a name as is: safe in a folder, a W&B group and an unquoted Hydra value;
# anything else becomes '-' (brackets and quotes are dropped, list commas become '+').
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_DROPPED = re.compile(r"[\[\]{}()'\"]")


@dataclass(frozen=True)
class TrainingOverride:
    """One override that changes training: its key (or config group) and canonical value."""

    key: str
    value: str
    is_group: bool
    deleted: bool = False

    @property
    def canonical(self) -> str:
        return f"~{self.key}" if self.deleted else f"{self.key}={self.value}"


def _value_text(override: Override) -> str:
    if override.is_sweep_override():
        # Only the launching process sees a sweep; each job gets one value of it.
        return override.input_line.split("=", 1)[1] if override.input_line else ""
    return override.get_value_element_as_str()


def _changes_training(key: str, is_group: bool) -> bool:
    if any(SECRET_KEY_RE.search(part) for part in key.split(".")):
        return False
    if is_group:
        return key in TRAINING_GROUPS + STEM_GROUPS
    section, _, rest = key.partition(".")
    if key in TRAINING_KEYS:
        return True
    if section not in TRAINING_SECTIONS or not rest:
        return False
    return rest.split(".")[0] not in NOT_FINGERPRINTED.get(section, ())


def parse_training_overrides(task_overrides: Iterable[str],
                             groups: Iterable[str]) -> list[TrainingOverride]:
    """The overrides of ``task_overrides`` that change training, sorted by key.

    ``groups`` are the config group names: an override of one (``augmentation=strong``)
    picks an option, any other override sets a key.
    """
    groups = set(groups)
    parsed = OverridesParser.create().parse_overrides([str(o) for o in task_overrides])
    found = {}
    for override in parsed:
        key = override.key_or_group
        is_group = key in groups and override.package is None
        if not _changes_training(key, is_group):
            continue
        found[key] = TrainingOverride(key, "" if override.is_delete() else _value_text(override),
                                      is_group, override.is_delete())
    return [found[key] for key in sorted(found)]


def _readable(value: str) -> str:
    return _UNSAFE.sub("-", _DROPPED.sub("", value.replace(", ", ",")).replace(",", "+"))


def _tokens(overrides: list[TrainingOverride]) -> list[str]:
    """``leaf-value`` per override the stem does not spell; the full key where leaves clash."""
    shown = [o for o in overrides
             if not (o.is_group and o.key in STEM_GROUPS) and o.key not in STEM_KEYS]
    leaves = [o.key.rsplit(".", 1)[-1] for o in shown]
    tokens = []
    for override, leaf in zip(shown, leaves, strict=True):
        label = leaf if leaves.count(leaf) == 1 else override.key
        tokens.append(f"del-{label}" if override.deleted else f"{label}-{_readable(override.value)}")
    return tokens


def short_hash(overrides: list[TrainingOverride]) -> str:
    text = "\n".join(o.canonical for o in overrides)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def experiment_name(stem: str, overrides: list[TrainingOverride],
                    max_length: int = MAX_NAME_LENGTH) -> str:
    """``{stem}_{leaf-value}_...`` for the overrides the stem does not already spell, or
    ``{stem}_{hash}`` when that would exceed ``max_length`` characters."""
    tokens = _tokens(overrides)
    if not tokens:
        return stem
    name = "_".join([stem, *tokens])
    if len(name) <= max_length:
        return name
    return f"{stem}_{short_hash(overrides)}"
