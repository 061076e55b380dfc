"""Reading the archive's folders by name: safe entries, and GMN names of one kind.

A folder listing from the server is data: :func:`list_folder` keeps the entries whose names
are safe to write to disk and reports the others in the step's summary; :func:`parse_each`
keeps the names of one GMN kind (station ids, ``_detected`` folders, timelapse names) and
passes over the rest, which the archive holds plenty of.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from data_prep.remote.source import RemoteEntry, RemoteSource, safe_entries
from data_prep.summary import StepSummary
from gmn_base.errors import GMNFormatError

log = logging.getLogger(__name__)

T = TypeVar("T")
Item = TypeVar("Item")


def report_rejected(rejected: list[str], summary: StepSummary) -> None:
    for message in rejected:
        summary.add_failure(message)
        summary.count("rejected_names")


def list_folder(source: RemoteSource, path: str, summary: StepSummary) -> list[RemoteEntry]:
    """``path``'s entries with safe names; unsafe ones are failures in ``summary``.
    FileNotFoundError when ``path`` does not exist."""
    entries, rejected = safe_entries(source.listdir(path), path)
    report_rejected(rejected, summary)
    return entries


def parse_each(items: Iterable[Item], parse: Callable[[Item], T], kind: str) -> list[T]:
    """``parse`` of every item, in order; items it refuses (GMNFormatError: not a ``kind``)
    are passed over."""
    parsed = []
    for item in items:
        try:
            parsed.append(parse(item))
        except GMNFormatError:
            log.debug("not a %s: %s", kind, item)
    return parsed
