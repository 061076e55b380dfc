"""The numeric settings of the data-prep steps, checked before a step does any work.

Without this, ``download.workers=0`` downloaded nothing and reported success,
``extract.per_night=-5`` selected no frame, ``converter.max_images=-1`` left all but one
image unconverted and ``find.workers=abc`` ended in a traceback. :func:`check_step_settings`
refuses such values in one line naming each key (rules by :mod:`gmn_base.settings`); every
step runs it through :func:`data_prep.summary.run_step`, and ``python -m data_prep`` once
before its first step. The synthetic archive's settings are checked by its own
:mod:`data_prep.synthetic.settings`.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from gmn_base.settings import check_settings, number, whole

_POSITIVE = {"low_open": True}

PREP_RULES = {
    "source.port": whole(1, 65535),
    "source.timeout_s": number(0, **_POSITIVE),
    "find.workers": whole(1),
    "find.last_n": whole(1, nullable=True, null_means="every night"),
    "plan.max_videos": whole(1, nullable=True, null_means="all"),
    "download.workers": whole(1),
    "download.chunk_size": whole(1),
    "download.retries": whole(0),
    "download.backoff_s": number(0),
    "download.backoff_max_s": number(0),
    "download.max_bytes_per_s": number(0, **_POSITIVE, nullable=True, null_means="no cap"),
    "extract.per_night": whole(1),
    "extract.total": whole(1),
    "extract.edge_margin_s": number(0),
    "extract.workers": whole(1),
    "extract.decode_threads": whole(0),
    "extract.seek_overhead_frames": number(0),
    "extract.png_compress_level": whole(0, 9),
    "extract.overlay_width_frac": number(0, 1, **_POSITIVE),
    "extract.overlay_height_frac": number(0, 1, **_POSITIVE),
    "converter.concurrency": whole(1),
    "converter.rpm": number(0, **_POSITIVE, nullable=True, null_means="no limit"),
    "converter.max_images": whole(0, nullable=True, null_means="no cap"),
    "converter.max_attempts": whole(1),
    "converter.request_timeout_s": number(0, **_POSITIVE),
    "converter.backoff_initial_s": number(0),
    "converter.backoff_max_s": number(0),
    "converter.max_no_image_retries": whole(0),
    "converter.calibration_frames": whole(1),
}


def check_step_settings(cfg: DictConfig) -> None:
    """SettingError naming every value of ``cfg`` that breaks :data:`PREP_RULES`."""
    check_settings(OmegaConf.to_container(cfg, resolve=True), PREP_RULES)
