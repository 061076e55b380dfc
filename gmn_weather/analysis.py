"""What ``analyze.py`` does: pool one experiment under a rule, or compare all of them.

``mode=pool`` (the default) pools the experiment ``name`` again with the ``analyze.*`` rule,
writes the decision files and ``pooled_metrics.json``, publishes the pooled W&B run when
the ``logger`` config has W&B, and keeps ``final/`` honest: its ``model.json`` embeds the
threshold chosen when it was trained, so a new rule says that ``final/`` still carries the
old one and how to refresh it, and ``analyze.update_final=true`` rewrites it (with its
provenance). ``mode=compare`` ranks every experiment under ``paths.output_root``
(:mod:`gmn_weather.compare`). Each returns the text ``analyze.py`` prints.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from omegaconf import DictConfig

from gmn_weather.compare import compare_experiments, format_comparison
from gmn_weather.decision_files import pool_folds, pooling_rule
from gmn_weather.experiment import ExperimentDir, ExperimentError
from gmn_weather.final_threshold import final_threshold_lag, refresh_final_threshold
from gmn_weather.objective import ObjectiveSettingError, check_metric
from gmn_weather.thresholds import ThresholdSettingError, check_rule
from gmn_weather.wandb_outputs import WandbStartError, publish_pooled

MODES = ("pool", "compare")
UPDATE_FINAL = "analyze.update_final"


class AnalyzeSettingError(ValueError):
    """``mode`` names nothing analyze.py does."""


# Errors whose message says what to change; analyze.py prints them without a traceback.
USER_ERRORS = (ExperimentError, WandbStartError, ObjectiveSettingError, AnalyzeSettingError,
               ThresholdSettingError)


def refresh_command(task_overrides: Sequence[str]) -> str:
    """The ``analyze.py`` command that repeats this analysis and updates ``final/``."""
    kept = [o for o in task_overrides if not o.lstrip("+~").startswith(UPDATE_FINAL)]
    return " ".join(["python analyze.py", *map(shlex.quote, kept), f"{UPDATE_FINAL}=true"])


def pool_experiment(cfg: DictConfig, task_overrides: Sequence[str] = ()) -> str:
    check_rule(**cfg.analyze)
    experiment = ExperimentDir.of(cfg.paths.output_root, cfg.name)
    result = pool_folds(experiment, **pooling_rule(cfg.analyze))
    publish_pooled(cfg, result)
    lines = [result.report()]
    threshold = result.operating_point.threshold
    if cfg.analyze.get("update_final"):
        old, new = refresh_final_threshold(experiment)
        lines.append(f"final model: {experiment.final.model_json} threshold {old:.4g} -> "
                     f"{new:.4g} (previous value kept in its threshold_history)")
    else:
        lag = final_threshold_lag(experiment, threshold)
        if lag:
            lines.append(f"NOTE: {lag}. predict.py uses the embedded one. Refresh it: "
                         f"{refresh_command(task_overrides)}")
    return "\n".join(lines)


def analyze(cfg: DictConfig, task_overrides: Sequence[str] = ()) -> str:
    """Run what ``mode`` says; ``task_overrides`` (the command line) name the refresh command."""
    mode = str(cfg.get("mode", "pool"))
    if mode == "compare":
        metric = check_metric(str(cfg.optimized_metric))
        table, path = compare_experiments(cfg.paths.output_root, metric)
        return f"{format_comparison(table, metric)}\nwritten: {path}"
    if mode == "pool":
        return pool_experiment(cfg, task_overrides)
    raise AnalyzeSettingError(f"mode={mode!r}: expected one of {', '.join(MODES)}")
