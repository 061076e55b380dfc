"""A data dir's capture sessions and their clear-sky intervals, as ``extract`` and ``label`` see them.

The sessions come from ``nights.csv`` (what ``find`` found: night folders and ends of capture);
the interval files from the interval folder at any depth (:func:`~data_prep.nights.
interval_files.read_interval_dir`), each tied to its capture by the night folder in its name
(:func:`gmn_base.session_intervals.tie_interval_files`). A file no session takes is a warning
naming it, counted as ``untied_interval_files``; an unreadable one a failure naming it, kept by
capture so ``label`` can keep the labels it gave before (:class:`SessionIndex.unreadable`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from data_prep.nights.interval_files import IntervalDir, read_interval_dir
from data_prep.nights.nights_table import read_nights_csv, sessions_of
from data_prep.summary import StepSummary
from gmn_base.night_folders import KNOWN_NIGHT_FOLDER_SUFFIXES
from gmn_base.session_intervals import SessionIntervals, tie_interval_files
from gmn_base.sessions import CaptureSession, SessionLookup

log = logging.getLogger(__name__)


@dataclass
class SessionIndex:
    """Sessions, their intervals by session id, and the unreadable interval files by capture."""

    sessions: list[CaptureSession]
    intervals: dict[str, SessionIntervals]
    unreadable: dict[str, list[str]]

    def __post_init__(self) -> None:
        self.lookup = SessionLookup(self.sessions)


def report_untied(untied: list[tuple[str, str]], summary: StepSummary) -> None:
    """Interval files no session takes: a warning each, naming the file and why; counted."""
    for path, reason in untied:
        log.warning("%s: not tied to a capture session (%s); not used", path, reason)
        summary.count("untied_interval_files")


def load_session_index(nights_csv: Path, intervals_dir: Path, summary: StepSummary,
                       suffixes: Sequence[str] = KNOWN_NIGHT_FOLDER_SUFFIXES) -> SessionIndex:
    """The sessions of ``nights_csv`` with the interval files under ``intervals_dir``.
    FileNotFoundError / :class:`~data_prep.nights.nights_table.NightRuleError` when
    ``nights.csv`` is missing or was written by the old clock rule (both say to run find)."""
    sessions = sessions_of(read_nights_csv(nights_csv), nights_csv)
    try:
        found = read_interval_dir(intervals_dir, suffixes)
    except FileNotFoundError as exc:
        summary.add_failure(str(exc))
        found = IntervalDir()
    for problem in found.problems:
        summary.add_failure(problem)
    tied, untied = tie_interval_files(sessions, found.files, suffixes)
    report_untied(found.unnamed + untied, summary)
    summary.count("sessions", len(sessions))
    return SessionIndex(sessions, tied, found.unreadable)
