"""The experiment report page: ``report.html`` in the experiment folder, openable from disk.

:func:`write_report` writes it after pooling; :func:`gallery_table` gives its gallery as a
W&B table. Modules: :mod:`.sources` (reads the experiment folder), :mod:`.page_data` (pure:
the page's content), :mod:`.thumbnails`, :mod:`.html_page` (pure: the HTML), :mod:`.write`.
"""

from gmn_weather.report.wandb_table import gallery_table
from gmn_weather.report.write import WrittenReport, write_report

__all__ = ["WrittenReport", "gallery_table", "write_report"]
