"""Write an experiment's report page: ``report.html`` and ``report_files/`` beside it.

The I/O around the pure parts: read the experiment folder (:mod:`.sources`), build the
page's content (:mod:`.page_data`), make or reuse the gallery's thumbnails
(:mod:`.thumbnails`), render (:mod:`.html_page`) and write the page atomically. Called right
after the pooled decision files are written, so every pooling (the fold job that completes
the set, ``python analyze.py``) leaves a page that matches them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from gmn_base.atomic import write_text
from gmn_weather.experiment import ExperimentDir
from gmn_weather.report.html_page import render_page
from gmn_weather.report.page_data import DEFAULT_LIMITS, GalleryLimits, PageData, build_page
from gmn_weather.report.sources import read_inputs
from gmn_weather.report.thumbnails import ThumbnailReport, ensure_thumbnails

log = logging.getLogger(__name__)

THUMBS = "thumbs"  # inside the experiment's report_files/
_QUOTE = 5


@dataclass
class WrittenReport:
    path: Path  # report.html
    page: PageData
    thumbnails: ThumbnailReport


def _thumbnail_notes(thumbs: ThumbnailReport, image_dir: Path | None) -> list[str]:
    notes = []
    if image_dir is not None and thumbs.missing:
        notes.append(f"{len(thumbs.missing)} gallery image(s) not found in {image_dir} "
                     f"(first: {', '.join(thumbs.missing[:_QUOTE])})")
    if thumbs.unreadable:
        notes.append(f"{len(thumbs.unreadable)} gallery image(s) could not be read "
                     f"(first: {', '.join(thumbs.unreadable[:_QUOTE])})")
    return notes


def _linked_files(experiment: ExperimentDir) -> list[tuple[str, str]]:
    """(name, href relative to the page) of the experiment's files the summary links to."""
    files = (experiment.oof_csv, experiment.threshold_table_csv, experiment.splits_csv,
             experiment.operating_point_json, experiment.pr_curve_png)
    return [(path.name, path.relative_to(experiment.path).as_posix())
            for path in files if path.is_file()]


def write_report(experiment: ExperimentDir | str | Path, limits: GalleryLimits = DEFAULT_LIMITS,
                 default_min_precision: float = 0.95) -> WrittenReport:
    """Write ``report.html`` for the pooled experiment (an :class:`ExperimentDir` or its path).

    ``default_min_precision`` is the precision the summary's "recall at precision" uses when
    the operating point is a fixed threshold (``operating_point.json`` then names none).
    """
    experiment = ExperimentDir.at(experiment)
    inputs = read_inputs(experiment)
    page = build_page(experiment.name, inputs.oof, inputs.operating_point,
                      inputs.threshold_table, inputs.sources, inputs.overrides, limits,
                      inputs.notes, default_min_precision)
    thumbs = ensure_thumbnails(inputs.image_dir,
                               [item.image_filename for item in page.gallery.items()],
                               experiment.report_files_dir / THUMBS)
    for item in page.gallery.errors + page.gallery.uncertain:
        thumb = thumbs.thumbnails.get(item.image_filename)
        if thumb is not None:
            item.thumb = thumb.path.relative_to(experiment.path).as_posix()
            item.thumb_width, item.thumb_height = thumb.width, thumb.height
    page.notes += _thumbnail_notes(thumbs, inputs.image_dir)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    path = experiment.report_html
    write_text(path, render_page(page, _linked_files(experiment), generated))
    log.info("report page: %s (%d gallery images; thumbnails %d made, %d reused)", path,
             len(page.gallery.items()), thumbs.made, thumbs.reused)
    return WrittenReport(path, page, thumbs)
