"""Experiment names from the overrides that change training: readable, stable, hashed when long.

The pure rule (:mod:`gmn_weather.experiment_names`) on override strings, and the composed
configs of train.py, analyze.py and predict.py (Hydra's record of the job set as in a real
run), which must agree on the name for the same training overrides.
"""

from __future__ import annotations

import pytest
from fixtures_train import compose_train

from gmn_weather.experiment_names import (
    MAX_NAME_LENGTH,
    experiment_name,
    parse_training_overrides,
)

GROUPS = ("data", "model", "augmentation", "trainer", "logger", "callbacks", "paths",
          "analyze", "experiment", "debug", "hparams_search")


def name_of(*overrides: str, stem: str = "resnet18_light") -> str:
    return experiment_name(stem, parse_training_overrides(overrides, GROUPS))


def test_short_overrides_read_as_key_value_after_the_stem():
    assert name_of("model.optimizer.lr=0.01") == "resnet18_light_lr-0.01"
    assert name_of("seed=7", "model.optimizer.lr=1e-3") == "resnet18_light_lr-0.001_seed-7"
    # One canonical spelling: 1e-3 and 0.001 are one experiment, whatever the order typed.
    assert name_of("model.optimizer.lr=1e-3", "seed=7") == name_of("seed=7",
                                                                   "model.optimizer.lr=0.001")
    assert name_of("data.image_size=[32,56]") == "resnet18_light_image_size-32+56"
    assert name_of("data=other") == "resnet18_light_data-other"


def test_overrides_that_do_not_change_training_leave_the_name_alone():
    assert name_of("fold=2", "mode=cv", "paths.output_root=/x", "paths.data_dir=d",
                   "logger=wandb", "trainer=gpu", "trainer.accelerator=gpu", "trainer.devices=2",
                   "data.num_workers=8", "tags=[a,b]", "analyze.min_precision=0.9",
                   "hparams_search=optuna", "optimized_metric=auroc", "+notify.api_key=SECRET",
                   "input=frames", "threshold=0.4", "name_prefix=x_") == "resnet18_light"


def test_the_stem_spells_backbone_augmentation_and_config_choices():
    for override in ("model.backbone=resnet18", "augmentation=light", "experiment=reference",
                     "debug=tiny", "model=features_gbm"):
        assert name_of(override) == "resnet18_light", override
    overrides = parse_training_overrides(["augmentation=strong", "model.optimizer.lr=3e-3"],
                                         GROUPS)
    assert [o.canonical for o in overrides] == ["augmentation=strong", "model.optimizer.lr=0.003"]


def test_clashing_leaves_keep_their_full_key_and_deletions_show():
    assert name_of("model.optimizer.lr=0.1", "model.scheduler.lr=0.2") == \
        "resnet18_light_model.optimizer.lr-0.1_model.scheduler.lr-0.2"
    assert name_of("~model.scheduler") == "resnet18_light_del-scheduler"


def test_a_long_name_becomes_a_stable_short_hash():
    long = ["model.scheduler={_target_: torch.optim.lr_scheduler.CosineAnnealingLR, T_max: 10}",
            "model.optimizer.lr=0.0012345678901"]
    name = name_of(*long)
    assert name.startswith("resnet18_light_") and len(name) <= MAX_NAME_LENGTH
    assert name == name_of(*reversed(long))  # stable
    assert name != name_of(long[0], "model.optimizer.lr=0.0012345678902")
    assert len(name_of("model.optimizer.lr=0.1")) < len(name)


def test_composed_names_follow_the_job_overrides_and_an_explicit_name_wins():
    cfg = compose_train("model.optimizer.lr=1e-2", "augmentation=strong", "fold=1")
    assert cfg.name == "resnet18_strong_lr-0.01"
    assert list(cfg.experiment_overrides) == ["augmentation=strong", "model.optimizer.lr=0.01"]
    assert compose_train("debug=tiny", "model.optimizer.lr=1e-2").name == "tiny_test_resnet_light_lr-0.01"
    assert compose_train("model=features_gbm", "model.max_iter=50").name == "features_gbm_max_iter-50"
    assert compose_train("name=mine", "model.optimizer.lr=1e-2").name == "mine"
    assert compose_train("experiment=demo", "model.optimizer.lr=1e-2").name == "demo"


@pytest.mark.parametrize("config_name", ["analyze", "predict"])
def test_analyze_and_predict_find_the_experiment_by_its_training_overrides(config_name):
    extra = {"analyze": ["analyze.threshold=0.3", "mode=compare"],
             "predict": ["input=frames", "threshold=0.4", "batch_size=4"]}[config_name]
    trained = compose_train("model.optimizer.lr=1e-2", "seed=3", "fold=2")
    found = compose_train("seed=3", "model.optimizer.lr=0.01", *extra, config_name=config_name)
    assert found.name == trained.name == "resnet18_light_lr-0.01_seed-3"
