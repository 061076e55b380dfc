"""Every data-prep step's --help starts with a header naming the step and its important keys."""

import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
STEPS = ["synthetic", "find", "filter_cloudy", "plan", "download", "extract", "label", "night_to_day"]


def test_prep_help_header_lists_every_step_and_its_keys():
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="prep", return_hydra_config=True)
    header = cfg.hydra.help.header
    for step in STEPS:
        assert f"\n  {step} " in header, step
    for key in ("synthetic.out_dir", "source.known_hosts", "find.last_n", "plan.kind",
                "download.workers", "extract.per_night", "label.station", "converter.rpm"):
        assert key in header, key
    # every key named in the header exists in the composed config
    for key in ("synthetic.frames_per_night", "find.since", "plan.max_videos", "download.retries",
                "extract.edge_margin_s", "converter.max_images", "filter_cloudy.folder"):
        group, name = key.split(".")
        assert name in cfg[group], key


def test_step_help_on_the_command_line_names_the_step():
    result = subprocess.run([sys.executable, "-m", "data_prep.extract", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("== python -m data_prep.extract (gmn-weather data preparation) ==")
    assert "extract.mask_overlay" in result.stdout


def test_the_synthetic_package_step_answers_help_with_its_own_name():
    # The step is data_prep/synthetic/__main__.py; conf/prep_synthetic.yaml names the job
    # (the --help header, and the log folder paths.data_dir/logs/synthetic/).
    result = subprocess.run([sys.executable, "-m", "data_prep.synthetic", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "== python -m data_prep.synthetic (gmn-weather data preparation) ==")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="prep_synthetic", overrides=["paths.data_dir=d"],
                      return_hydra_config=True)
    assert cfg.hydra.job.name == "synthetic"
    assert cfg.hydra.run.dir.startswith("d/logs/synthetic/")
