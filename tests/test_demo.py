"""The demo driver: locations read from the demo configs, the commands it runs, its summary.

The full demo is not run here (it takes minutes); `make demo` does that.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gmn_demo import demo
from gmn_demo.daytime_score import DaytimeScore

REPO = Path(__file__).resolve().parents[1]


def _prep(data_dir="demo_data"):
    return OmegaConf.create({"paths": {"data_dir": data_dir},
                             "synthetic": {"out_dir": "${paths.data_dir}/archive"}})


def _experiment(data_dir="demo_data"):
    return OmegaConf.create({"name": "demo",
                             "paths": {"data_dir": data_dir, "output_root": "demo_outputs"}})


def test_layout_comes_from_the_configs_and_must_agree():
    layout = demo.layout_from(_prep(), Path("p.yaml"), _experiment(), Path("e.yaml"))
    assert layout.archive == Path("demo_data/archive")
    assert layout.truth_csv == Path("demo_data/archive/truth.csv")
    assert layout.day_images == Path("demo_data/extracted_day")
    assert layout.day_predictions == Path("demo_outputs/demo/daytime_predictions.csv")
    assert layout.report_page == Path("demo_outputs/demo/report.html")
    with pytest.raises(demo.DemoError, match="paths.data_dir differs: demo_data in p.yaml, other"):
        demo.layout_from(_prep(), Path("p.yaml"), _experiment("other"), Path("e.yaml"))
    no_name = _experiment()
    del no_name["name"]
    with pytest.raises(demo.DemoError, match="e.yaml: needs name"):
        demo.layout_from(_prep(), Path("p.yaml"), no_name, Path("e.yaml"))


def test_commands_are_the_ones_users_type():
    layout = demo.layout_from(_prep(), Path("p.yaml"), _experiment(), Path("e.yaml"))
    commands = demo.demo_commands("demo_prep", "demo", [0, 1, 2], layout)
    assert [c.shell() for c in commands] == [
        "python -m data_prep --config-name demo_prep",
        "python train.py -m fold=0,1,2 experiment=demo",
        "python train.py mode=final experiment=demo",
        ("python predict.py experiment=demo input=demo_data/extracted_day "
         "output=demo_outputs/demo/daytime_predictions.csv"),
    ]


def test_summary_has_a_line_per_step_the_operating_point_and_the_score():
    steps = [demo.StepTime("data prep", 61.0, "demo_data/", ["find  1.0 s  nights=8"]),
             demo.StepTime("cross-validation", 120.5, "demo_outputs/demo/fold_*/")]
    point = demo.operating_point_line({"threshold": 0.35, "precision": 0.96, "recall": 0.8,
                                       "rule": "highest recall with precision >= 0.95"})
    score = DaytimeScore(images=40, precision=0.9, recall=0.75, auroc=0.93, tp=9, fp=1, tn=27,
                         fn=3, truly_clear=12, unmatched=0, unscored=0)
    text = demo.format_summary(steps, 200.0, point, score)
    assert "data prep" in text and "61.0 s" in text and "nights=8" in text
    assert "threshold 0.35, precision 0.960, recall 0.800" in text
    assert "precision 0.900, recall 0.750, AUROC 0.930" in text
    assert text.rstrip().endswith("200.0 s")
    page = Path("/work/demo_outputs/demo/report.html")
    text = demo.format_summary(steps, 200.0, point, score, page)
    assert text.splitlines()[-1] == f"report page (open it in a browser): {page}"


def test_shipped_demo_configs_agree():
    prep = REPO / "conf" / "demo_prep.yaml"
    experiment = REPO / "conf" / "experiment" / "demo.yaml"
    if not experiment.is_file():
        pytest.skip("conf/experiment/demo.yaml needs the training configs")
    layout = demo.layout_from(OmegaConf.load(prep), prep, OmegaConf.load(experiment), experiment)
    assert layout.archive.parent == layout.data_dir


def test_missing_config_is_named_before_anything_runs():
    cfg = OmegaConf.create({"prep_config": "no_such_prep", "experiment": "demo", "folds": [0],
                            "truth_column": "physical_label"})
    with pytest.raises(demo.DemoError, match="no_such_prep.yaml is missing"):
        demo.run(cfg)


def test_make_demo_command_composes_its_config():
    # `make demo` runs `python -m gmn_demo`: Hydra must find conf/ from there too.
    proc = subprocess.run([sys.executable, "-m", "gmn_demo", "--cfg", "job"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "prep_config: demo_prep" in proc.stdout
