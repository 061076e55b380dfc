"""``python -m data_prep.filter_cloudy``: move all-cloudy interval files into a subfolder.

An interval file whose list is empty says the whole night was cloudy; this step moves those
of ``filter_cloudy.folder`` (default ``find.interval_dir``; any folder of interval files) into
its ``all_cloudy_time_intervals/``, and files there that have intervals again (fixed on the
server and fetched again) back out (:func:`data_prep.nights.interval_files.sort_all_cloudy`,
which ``find`` also calls after fetching). Malformed files are reported by name and left
where they are.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.nights.interval_files import ALL_CLOUDY_DIR, sort_all_cloudy
from data_prep.summary import StepSummary, run_step
from gmn_base.command_line import guard_secrets

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> StepSummary:
    summary = StepSummary("filter_cloudy")
    folder = Path(str(cfg.filter_cloudy.folder))
    result = sort_all_cloudy(folder)
    summary.count("moved_all_cloudy", len(result.moved))
    summary.count("kept_with_intervals", len(result.kept))
    if result.moved_back:
        summary.count("moved_back_with_intervals", len(result.moved_back))
    for error in result.errors:
        summary.add_failure(error)
    summary.outputs["all_cloudy"] = str(folder / ALL_CLOUDY_DIR)
    return summary


@guard_secrets
@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    run_step("filter_cloudy", run, cfg, log)


if __name__ == "__main__":
    main()
