"""``python -m data_prep``: every data-prep step in order, with one configuration.

The steps are the same modules a user can run one by one (``python -m data_prep.<step>``),
called here in-process with the composed config (conf/prep_all.yaml = conf/prep.yaml plus the
``pipeline`` keys below). Order: [synthetic] -> find -> plan -> download -> [plan and download
of daytime timelapses] -> extract -> [extract of daytime frames] -> label -> night_to_day.
Each step skips work that is already complete, so a rerun after an interruption or a fix
only does what is missing. At the end one line per step gives its time, its counts and where
its outputs live; the same table is saved as ``prep_summary.json`` in ``paths.data_dir``.
"""

from __future__ import annotations

import copy
import importlib
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from data_prep.step_settings import check_step_settings
from data_prep.summary import StepSummary
from gmn_base.atomic import write_json
from gmn_base.command_line import guard_secrets
from gmn_base.settings import SettingError

log = logging.getLogger("data_prep")

SUMMARY_NAME = "prep_summary.json"


@dataclass(frozen=True)
class PlannedStep:
    """One step of the run: its display name, the module whose ``run(cfg)`` does it, and the
    config keys it needs set differently from the shared config (e.g. ``plan.kind=day``)."""

    name: str
    module: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


# --- pure core ----------------------------------------------------------------------------


def plan_steps(make_synthetic: bool = False, day_test_set: bool = False,
               skip: Sequence[str] = ()) -> list[PlannedStep]:
    """The steps to run, in order. ``skip`` names steps to leave out (``plan_day`` etc.)."""
    steps: list[PlannedStep] = []
    if make_synthetic:
        steps.append(PlannedStep("synthetic", "data_prep.synthetic.__main__"))
    steps += [
        PlannedStep("find", "data_prep.find"),
        PlannedStep("plan", "data_prep.plan"),
        PlannedStep("download", "data_prep.download"),
    ]
    if day_test_set:
        steps += [
            PlannedStep("plan_day", "data_prep.plan", {"plan.kind": "day"}),
            PlannedStep("download_day", "data_prep.download"),
        ]
    steps.append(PlannedStep("extract", "data_prep.extract"))
    if day_test_set:
        # The daytime test set is sampled over the daytime videos, never a list of night frames.
        steps.append(PlannedStep("extract_day", "data_prep.extract",
                                 {"extract.kind": "day", "extract.target_lists": []}))
    steps += [
        PlannedStep("label", "data_prep.label"),
        PlannedStep("night_to_day", "data_prep.night_to_day"),
    ]
    known = {s.name for s in steps} | {"synthetic", "plan_day", "download_day", "extract_day"}
    unknown = sorted(set(skip) - known)
    if unknown:
        raise ValueError(f"pipeline.skip: unknown step(s) {', '.join(unknown)}; "
                         f"steps are {', '.join(s.name for s in steps)}")
    return [s for s in steps if s.name not in set(skip)]


def step_config(cfg: DictConfig, overrides: Mapping[str, Any]) -> DictConfig:
    """A copy of ``cfg`` with ``overrides`` applied; an override of a key the config does not
    have is an error naming it (a typo must not silently run the night variant)."""
    step_cfg = copy.deepcopy(cfg)
    for key, value in overrides.items():
        if OmegaConf.select(step_cfg, key, default=KeyError) is KeyError:
            raise KeyError(f"step override {key}={value!r}: the config has no key {key}")
        OmegaConf.update(step_cfg, key, value, merge=False)
    return step_cfg


def format_table(summaries: Sequence[StepSummary]) -> str:
    """One line per step: name, seconds, ok or failure count, counts, outputs."""
    width = max((len(s.step) for s in summaries), default=4)
    lines = []
    for s in summaries:
        status = "ok" if s.ok else f"FAILED ({len(s.failures)})"
        counts = ", ".join(f"{k}={v}" for k, v in s.counts.items()) or "nothing to do"
        outputs = "; ".join(f"{k}: {v}" for k, v in s.outputs.items())
        line = f"{s.step:<{width}}  {s.seconds:7.1f} s  {status:<11} {counts}"
        lines.append(line + (f"  -> {outputs}" if outputs else ""))
    return "\n".join(lines)


# --- I/O edges ----------------------------------------------------------------------------


def _load_run(module: str) -> Callable[[DictConfig], StepSummary]:
    try:
        return importlib.import_module(module).run
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise ModuleNotFoundError(f"{module} is not installed in this checkout; leave its step "
                                  "out with pipeline.skip=[...]") from None


def run_steps(cfg: DictConfig, steps: Sequence[PlannedStep], keep_going: bool = False,
              report: Callable[[StepSummary], None] | None = None) -> list[StepSummary]:
    """Run ``steps`` in order; stop after the first step that reports failures unless
    ``keep_going``. Each summary's ``seconds`` is its wall time here."""
    summaries: list[StepSummary] = []
    for step in steps:
        log.info("== %s ==", step.name)
        run = _load_run(step.module)
        started = time.perf_counter()
        try:
            summary = run(step_config(cfg, step.overrides))
        except Exception as exc:  # a step that raised still gets its line in the table
            log.exception("%s stopped", step.name)
            summary = StepSummary(step.name)
            summary.add_failure(f"{type(exc).__name__}: {exc}")
        summary.step = step.name
        summary.seconds = time.perf_counter() - started
        summary.log(log)
        summaries.append(summary)
        if report is not None:
            report(summary)
        if not summary.ok and not keep_going:
            log.error("stopping after %s; fix the failures above and rerun `python -m data_prep` "
                      "(completed work is kept), or pass pipeline.keep_going=true", step.name)
            break
    return summaries


def run(cfg: DictConfig) -> list[StepSummary]:
    pipeline = cfg.get("pipeline") or {}
    steps = plan_steps(bool(pipeline.get("make_synthetic", False)),
                       bool(pipeline.get("day_test_set", False)),
                       list(pipeline.get("skip", []) or []))
    summary_path = Path(cfg.paths.data_dir) / SUMMARY_NAME
    done: list[StepSummary] = []

    def save(summary: StepSummary) -> None:
        done.append(summary)
        write_json(summary_path, {"steps": [asdict(s) for s in done]})

    return run_steps(cfg, steps, bool(pipeline.get("keep_going", False)), report=save)


@guard_secrets
@hydra.main(version_base="1.3", config_path="../conf", config_name="prep_all")
def main(cfg: DictConfig) -> None:
    try:
        check_step_settings(cfg)
    except SettingError as exc:
        log.error("data_prep: %s", exc)
        sys.exit(2)
    summaries = run(cfg)
    print("\ndata prep summary (time, counts, outputs):")
    print(format_table(summaries))
    print(f"(also in {Path(cfg.paths.data_dir) / SUMMARY_NAME})")
    sys.exit(0 if summaries and all(s.ok for s in summaries) else 1)


if __name__ == "__main__":
    main()
