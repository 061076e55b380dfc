"""The numeric settings of a training job, checked before the job touches its folder.

Without this, ``data.batch_size=0`` ended in a ZeroDivisionError, ``trainer.max_epochs=-3``
in a Lightning traceback, ``model.optimizer.lr=abc`` in a TypeError from
torch, and ``analyze.threshold=2`` only failed when the last fold pooled, after training.
:func:`check_job_settings` refuses such values in one line naming each key (rules by
:mod:`gmn_base.settings`; the input size by :mod:`gmn_weather.preprocessing`, which owns
it; the operating-point rule by :mod:`gmn_weather.thresholds`; ``data.group_by`` by
:mod:`gmn_weather.labelled_images`).
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from gmn_base.settings import check_settings, number, whole
from gmn_weather.labelled_images import check_group_by
from gmn_weather.preprocessing import input_size
from gmn_weather.thresholds import check_rule

TRAINING_RULES = {
    "fold": whole(0),
    "seed": whole(),
    "data.n_folds": whole(2),
    "data.split_seed": whole(),
    "data.batch_size": whole(1),
    "data.num_workers": whole(0),
    "data.min_edge_distance_s": number(0, nullable=True, null_means="keep every frame"),
    "trainer.max_epochs": whole(0, nullable=True, null_means="Lightning's default"),
    "model.optimizer.lr": number(0, low_open=True),
    "model.optimizer.weight_decay": number(0),
    "model.full_lr": number(0, low_open=True, nullable=True, null_means="no second phase"),
    "model.head_only_epochs": whole(0),
    "model.pos_weight": number(0, low_open=True, nullable=True, null_means="unweighted"),
    "model.drop_rate": number(0, 1),
}


def check_job_settings(cfg: DictConfig) -> None:
    """Raise SettingError, LabelsError (``data.group_by``), InputSettingError or
    ThresholdSettingError naming the first kind of bad value (every bad key of that kind)."""
    values = OmegaConf.to_container(cfg, resolve=True)
    check_settings(values, TRAINING_RULES)
    check_group_by((values.get("data") or {}).get("group_by", "station_night"))
    image_size = (values.get("data") or {}).get("image_size")
    if image_size is not None:
        input_size(image_size, None)
    check_rule(**(values.get("analyze") or {}))
