"""``python -m data_prep.download``: fetch the files of ``download_manifest.csv``, resumably.

Reads the manifest ``plan`` wrote (:mod:`data_prep.remote.download_manifest`) and fetches it
into ``paths.data_dir`` with ``download.workers`` connections
(:func:`data_prep.remote.fetch_pool.fetch_all`): ``.part`` files resumed after any
interruption, complete files skipped, sizes verified, dropped connections retried with
backoff. Missing remote files and unsafe manifest rows are failures named in the summary.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.remote.connect import source_factory
from data_prep.remote.download_manifest import read_download_jobs
from data_prep.remote.fetch import settings_from_config
from data_prep.remote.fetch_pool import DownloadResult, fetch_all
from data_prep.remote.host_keys import HostKeyError
from data_prep.remote.source import SourceError, SourceUnreachable
from data_prep.step_lock import step_lock
from data_prep.summary import StepSummary, run_step
from gmn_base.command_line import guard_secrets

log = logging.getLogger(__name__)


def summarize(results: list[DownloadResult], summary: StepSummary) -> None:
    """Count each result by status; a failed or missing file is a failure (the manifest
    promised it)."""
    for result in results:
        summary.count(result.status)
        if result.attempts > 1:
            summary.count("retries", result.attempts - 1)
        if result.bytes:
            summary.count("bytes", result.bytes)
        if result.status in ("failed", "missing"):
            summary.add_failure(result.error or result.job.remote_path)
            if result.status == "missing":
                summary.count("failed")  # counted as failed too


def run(cfg: DictConfig) -> StepSummary:
    """One download run per data folder at a time (:mod:`data_prep.step_lock`)."""
    with step_lock("download", Path(str(cfg.paths.data_dir))):
        return download(cfg)


def download(cfg: DictConfig) -> StepSummary:
    started = time.monotonic()
    summary = StepSummary("download")
    data_dir = Path(str(cfg.paths.data_dir))
    jobs, errors = read_download_jobs(Path(str(cfg.download.manifest)), data_dir)
    for error in errors:
        summary.count("failed")
        summary.add_failure(error)
    try:
        results = fetch_all(jobs, source_factory(cfg.source), settings_from_config(cfg.download))
    except (SourceError, HostKeyError, SourceUnreachable) as exc:
        summary.add_failure(str(exc))
        results = []
    summarize(results, summary)
    for name in ("downloaded", "skipped", "failed"):
        summary.counts.setdefault(name, 0)
    summary.outputs["raw_data"] = str(data_dir / "raw_data")
    summary.seconds = time.monotonic() - started
    return summary


@guard_secrets
@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    # Ctrl-C exits 130; partial files stay as .part and the next run resumes them.
    run_step("download", run, cfg, log, user_errors=(SourceError, HostKeyError, FileNotFoundError,
                                                     ValueError))


if __name__ == "__main__":
    main()
