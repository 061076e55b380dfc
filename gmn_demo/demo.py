"""The offline demo (``make demo``): the whole pipeline on a synthetic GMN archive.

Runs, as subprocesses and exactly as a user would type them, the commands of the README:
``python -m data_prep --config-name demo_prep`` (synthetic archive -> find -> plan ->
download -> extract -> label -> night_to_day, plus the daytime test frames), then
``python train.py -m fold=0,1,2 experiment=demo`` (pooled table and operating point),
``python train.py mode=final experiment=demo``, ``python predict.py`` on the daytime frames,
and finally scores those predictions against the archive's truth
(:mod:`gmn_demo.daytime_score`). Every choice lives in the configs it names
(conf/demo_prep.yaml, conf/experiment/demo.yaml); this module only sequences, times and
summarises.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from gmn_base.command_line import guard_secrets
from gmn_demo.daytime_score import DaytimeScore, DaytimeScoreError, score_files
from gmn_weather.experiment import DECISION_FILES, REPORT_HTML, ExperimentDir, run_name

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]


class DemoError(RuntimeError):
    """The demo cannot go on; the message says which step and what to look at."""


@dataclass(frozen=True)
class DemoLayout:
    """Where the demo reads and writes, taken from the configs the commands use."""

    data_dir: Path
    archive: Path
    experiment_dir: Path

    @property
    def truth_csv(self) -> Path:
        return self.archive / "truth.csv"

    @property
    def day_images(self) -> Path:
        return self.data_dir / "extracted_day"

    @property
    def day_predictions(self) -> Path:
        return self.experiment_dir / "daytime_predictions.csv"

    @property
    def report_page(self) -> Path:
        return ExperimentDir(self.experiment_dir).report_html


@dataclass(frozen=True)
class DemoCommand:
    name: str
    args: list[str]  # after `python`
    outputs: str

    def shell(self) -> str:
        return "python " + " ".join(self.args)


@dataclass
class StepTime:
    name: str
    seconds: float
    outputs: str
    detail: list[str] = field(default_factory=list)


# --- pure core ----------------------------------------------------------------------------


def _required(cfg: DictConfig, key: str, source: Path) -> str:
    value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
    if value in (None, "", "???"):
        raise DemoError(f"{source}: needs {key} set explicitly (the demo reads it to find outputs)")
    return str(value)


def layout_from(prep_cfg: DictConfig, prep_source: Path, experiment_cfg: DictConfig,
                experiment_source: Path) -> DemoLayout:
    """Read the locations from the two demo configs and check that they agree."""
    data_dir = _required(prep_cfg, "paths.data_dir", prep_source)
    archive = _required(prep_cfg, "synthetic.out_dir", prep_source)
    train_data_dir = _required(experiment_cfg, "paths.data_dir", experiment_source)
    if Path(train_data_dir) != Path(data_dir):
        raise DemoError(f"paths.data_dir differs: {data_dir} in {prep_source}, {train_data_dir} "
                        f"in {experiment_source}; training must read what data prep wrote")
    output_root = _required(experiment_cfg, "paths.output_root", experiment_source)
    name = _required(experiment_cfg, "name", experiment_source)
    return DemoLayout(Path(data_dir), Path(archive), Path(output_root) / name)


def demo_commands(prep_config: str, experiment: str, folds: list[int],
                  layout: DemoLayout) -> list[DemoCommand]:
    fold_list = ",".join(str(f) for f in folds)
    exp = layout.experiment_dir
    return [
        DemoCommand("data prep", ["-m", "data_prep", "--config-name", prep_config],
                    f"{layout.data_dir}/ (archive {layout.archive})"),
        DemoCommand("cross-validation", ["train.py", "-m", f"fold={fold_list}", f"experiment={experiment}"],
                    f"{exp}/{run_name('fold', '*')}/, {', '.join(DECISION_FILES)}, {REPORT_HTML}"),
        DemoCommand("final model", ["train.py", "mode=final", f"experiment={experiment}"],
                    f"{ExperimentDir(exp).final.path}/"),
        DemoCommand("daytime predict", ["predict.py", f"experiment={experiment}",
                                        f"input={layout.day_images}", f"output={layout.day_predictions}"],
                    str(layout.day_predictions)),
    ]


def operating_point_line(point: dict) -> str:
    parts = []
    if "threshold" in point:
        parts.append(f"threshold {float(point['threshold']):.2f}")
    for key in ("precision", "recall"):
        if point.get(key) is not None:
            parts.append(f"{key} {float(point[key]):.3f}")
    rule = point.get("rule")
    if rule:
        parts.append(f"rule: {rule}")
    return ", ".join(parts) or json.dumps(point)


def format_summary(steps: list[StepTime], total_s: float, operating_point: str | None,
                   daytime: DaytimeScore | None, report_page: Path | None = None) -> str:
    """The closing summary; it ends with the experiment's report page when there is one."""
    width = max([len(s.name) for s in steps] + [16])
    lines = ["", "demo summary"]
    for step in steps:
        lines.append(f"  {step.name:<{width}} {step.seconds:7.1f} s  {step.outputs}")
        lines += [f"      {d}" for d in step.detail]
    if operating_point:
        lines.append(f"  {'operating point':<{width}}            {operating_point}")
    if daytime is not None:
        lines.append(f"  {'daytime score':<{width}}            {daytime.line()}")
    lines.append(f"  {'total':<{width}} {total_s:7.1f} s")
    if report_page is not None:
        lines.append(f"\nreport page (open it in a browser): {report_page}")
    return "\n".join(lines)


# --- I/O edges ----------------------------------------------------------------------------


def _prep_details(data_dir: Path) -> list[str]:
    path = data_dir / "prep_summary.json"
    if not path.is_file():
        return []
    steps = json.loads(path.read_text())["steps"]
    width = max(len(s["step"]) for s in steps)
    details = []
    for s in steps:
        outputs = "; ".join(f"{k}: {v}" for k, v in s["outputs"].items())
        counts = ", ".join(f"{k}={v}" for k, v in s["counts"].items())
        details.append(f"{s['step']:<{width}} {s['seconds']:6.1f} s  {counts}"
                       + (f"  -> {outputs}" if outputs else ""))
    return details


def _run(command: DemoCommand, env: dict[str, str]) -> float:
    print(f"\n=== {command.name}: $ {command.shell()}", flush=True)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, *command.args], cwd=REPO, env=env, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise DemoError(f"{command.name} failed (exit {result.returncode}) after {seconds:.0f} s: "
                        f"{command.shell()}; its messages are above. Completed work is kept, "
                        "so `make demo` resumes after a fix.")
    return seconds


def run(cfg: DictConfig) -> int:
    prep_source = REPO / "conf" / f"{cfg.prep_config}.yaml"
    experiment_source = REPO / "conf" / "experiment" / f"{cfg.experiment}.yaml"
    for source in (prep_source, experiment_source, REPO / "train.py", REPO / "predict.py"):
        if not source.is_file():
            raise DemoError(f"{source} is missing from this checkout")
    layout = layout_from(OmegaConf.load(prep_source), prep_source,
                         OmegaConf.load(experiment_source), experiment_source)
    env = {**os.environ, "HYDRA_FULL_ERROR": os.environ.get("HYDRA_FULL_ERROR", "0")}
    started = time.perf_counter()
    steps: list[StepTime] = []
    operating_point = daytime = None
    try:
        for command in demo_commands(cfg.prep_config, cfg.experiment, list(cfg.folds), layout):
            seconds = _run(command, env)
            detail = _prep_details(layout.data_dir) if command.name == "data prep" else []
            steps.append(StepTime(command.name, seconds, command.outputs, detail))
            if command.name == "cross-validation":
                point_file = ExperimentDir(layout.experiment_dir).operating_point_json
                if not point_file.is_file():
                    raise DemoError(f"{point_file} was not written by the fold jobs; "
                                    f"run `python analyze.py experiment={cfg.experiment}` to see why")
                operating_point = operating_point_line(json.loads(point_file.read_text()))
                if not layout.report_page.is_file():
                    raise DemoError(f"{layout.report_page} was not written by the fold jobs; "
                                    f"run `python analyze.py experiment={cfg.experiment}`")
        scored = time.perf_counter()
        daytime = score_files(layout.day_predictions, layout.truth_csv, cfg.truth_column)
        steps.append(StepTime("scoring", time.perf_counter() - scored,
                              f"against {layout.truth_csv} ({cfg.truth_column})"))
    except (DemoError, DaytimeScoreError) as exc:
        print(format_summary(steps, time.perf_counter() - started, operating_point, daytime))
        print(f"\ndemo stopped: {exc}")
        return 1
    print(format_summary(steps, time.perf_counter() - started, operating_point, daytime,
                         layout.report_page.resolve()))
    return 0


@guard_secrets
# An absolute path: run as `python -m gmn_demo`, Hydra would look for a module named conf.
@hydra.main(version_base="1.3", config_path=str(REPO / "conf"), config_name="demo")
def main(cfg: DictConfig) -> None:
    try:
        sys.exit(run(cfg))
    except DemoError as exc:
        print(f"demo cannot start: {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
