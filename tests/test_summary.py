"""run_step: the shared ``main`` of every data-prep step (exit status, logged summary, errors)."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from data_prep.summary import StepSummary, run_step

CFG = OmegaConf.create({})


def _exit_code(run, caplog, **kwargs) -> int:
    with pytest.raises(SystemExit) as stop, caplog.at_level(logging.INFO):
        run_step("step", run, CFG, logging.getLogger("test_step"), **kwargs)
    return stop.value.code


def test_exit_status_follows_the_summary(caplog):
    assert _exit_code(lambda cfg: StepSummary("step", counts={"done": 2}), caplog) == 0
    assert "step: done=2" in caplog.text
    failed = StepSummary("step")
    failed.add_failure("a.png unreadable")
    assert _exit_code(lambda cfg: failed, caplog) == 1
    assert "step failed: a.png unreadable" in caplog.text


def test_user_error_exits_2_with_its_message_other_errors_propagate(caplog):
    def bad_setting(cfg):
        raise ValueError("step.kind='dusk': expected night or day")

    assert _exit_code(bad_setting, caplog, user_errors=(ValueError,)) == 2
    assert "step: step.kind='dusk': expected night or day" in caplog.text
    with pytest.raises(ValueError):  # not declared a user error: a bug, with its traceback
        run_step("step", bad_setting, CFG, logging.getLogger("test_step"))


def test_ctrl_c_exits_130(caplog):
    def interrupted(cfg):
        raise KeyboardInterrupt

    assert _exit_code(interrupted, caplog) == 130
    assert "interrupted" in caplog.text


def test_missing_input_on_the_command_line_is_named_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "data_prep.plan", f"paths.data_dir={tmp_path}"],
                            check=False, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"plan: {tmp_path}/nights.csv not found: run `python -m data_prep.find` first" in output
    assert "Traceback" not in output
