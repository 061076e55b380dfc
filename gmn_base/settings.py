"""Range rules for numeric config values, checked before a step or a job does any work.

A :class:`Rule` says what one key must hold (a whole number, or any number, within bounds,
perhaps null); each layer lists its keys' rules beside the code that reads them
(:mod:`gmn_weather.job_settings`, :mod:`data_prep.step_settings`), and
:func:`check_settings` refuses a config that breaks any of them with one line naming every
bad key, its value and what it must be: ``data.batch_size=0: expected a whole number >= 1``.
Keys the config does not have are not checked (a converter without ``rpm``). Pure.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_ABSENT = object()


class SettingError(ValueError):
    """Config values out of their range; the message names each key and what it must be."""


@dataclass(frozen=True)
class Rule:
    """What one numeric key must hold."""

    whole: bool = True  # a whole number (an int; never a bool)
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # ``low`` itself is not allowed (a rate, a learning rate)
    nullable: bool = False
    null_means: str = ""  # said in the message, e.g. "no limit"

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        if self.low is not None and self.high is not None:
            text = f"{kind} from {self.low:g} to {self.high:g}"
        elif self.low is not None:
            text = f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        elif self.high is not None:
            text = f"{kind} <= {self.high:g}"
        else:
            text = kind
        if self.nullable:
            text += f" or null ({self.null_means})" if self.null_means else " or null"
        return text

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.whole and not isinstance(value, numbers.Integral):
            return False
        if math.isnan(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or value <= self.high


def whole(low: float | None = None, high: float | None = None, nullable: bool = False,
          null_means: str = "") -> Rule:
    return Rule(True, low, high, False, nullable, null_means)


def number(low: float | None = None, high: float | None = None, low_open: bool = False,
           nullable: bool = False, null_means: str = "") -> Rule:
    return Rule(False, low, high, low_open, nullable, null_means)


def lookup(config: Mapping[str, Any], key: str) -> Any:
    """The value at dotted ``key`` in nested mappings, or ``_ABSENT``."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def problem(key: str, value: Any, rule: Rule) -> str:
    text = f"{key}={value!r}: expected {rule.describe()}"
    if isinstance(value, str):
        try:
            float(value)
            text += " (write it without quotes)"
        except ValueError:
            pass
    return text


def setting_problems(config: Mapping[str, Any], rules: Mapping[str, Rule]) -> list[str]:
    """One message per key of ``rules`` whose value in ``config`` breaks its rule."""
    problems = []
    for key, rule in rules.items():
        value = lookup(config, key)
        if value is not _ABSENT and not rule.accepts(value):
            problems.append(problem(key, value, rule))
    return problems


def check_settings(config: Mapping[str, Any], rules: Mapping[str, Rule]) -> None:
    """Raise :class:`SettingError` naming every value of ``config`` that breaks ``rules``."""
    problems = setting_problems(config, rules)
    if problems:
        raise SettingError("; ".join(problems))
