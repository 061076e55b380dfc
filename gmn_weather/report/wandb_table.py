"""The report's gallery as a W&B table: one row per gallery image, with its thumbnail.

For the experiment's pooled W&B run: ``run.log({"error_gallery": gallery_table(report)})``
with the :class:`~gmn_weather.report.write.WrittenReport` that :func:`write_report` returned.
Building the table needs no run, so it works offline and in tests.
"""

from __future__ import annotations

from gmn_weather.report.write import WrittenReport

COLUMNS = ["image", "section", "cell", "image_filename", "label", "prob_clear", "fold",
           "station", "night", "timestamp", "edge_distance_s"]


def gallery_table(report: WrittenReport):
    """A ``wandb.Table`` of the page's error gallery, then its most uncertain images
    (``section`` says which); ``image`` is the thumbnail, or None where there is none."""
    import wandb

    table = wandb.Table(columns=COLUMNS)
    gallery = report.page.gallery
    for section, items in (("error", gallery.errors), ("uncertain", gallery.uncertain)):
        for item in items:
            thumb = report.thumbnails.thumbnails.get(item.image_filename)
            image = None if thumb is None else wandb.Image(str(thumb.path),
                                                           caption=item.image_filename)
            table.add_data(image, section, item.cell, item.image_filename, item.label,
                           item.prob_clear, item.fold, item.station, item.night,
                           item.timestamp, item.edge_distance_s)
    return table
