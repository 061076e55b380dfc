"""The experiment folder contract: file names, run info, fold predictions with their record,
and one configuration per name."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from gmn_weather.experiment import (
    ExperimentDir,
    ExperimentError,
    FinalDir,
    OOFRecord,
    RunInfo,
    check_same_configuration,
    run_name,
)


def test_every_path_of_the_contract(tmp_path):
    # These names are what users, docs and other tools read: changing one is a format change.
    exp = ExperimentDir.of(tmp_path, "resnet18_light")
    root = tmp_path / "resnet18_light"
    assert exp.path == root and exp.name == "resnet18_light"
    assert exp.splits_csv == root / "splits.csv"
    assert exp.oof_csv == root / "oof_predictions.csv"
    assert exp.threshold_table_csv == root / "threshold_table.csv"
    assert exp.pr_curve_png == root / "pr_curve.png"
    assert exp.operating_point_json == root / "operating_point.json"
    assert exp.pooled_metrics_json == root / "pooled_metrics.json"
    assert exp.report_html == root / "report.html"
    fold = exp.fold(2)
    assert fold.path == root / "fold_2" and exp.run("fold", 2) == fold
    assert fold.oof_csv == root / "fold_2" / "oof_predictions.csv"
    assert fold.run_info_json == root / "fold_2" / "run_info.json"
    assert fold.config_yaml == root / "fold_2" / "config.yaml"
    assert fold.checkpoints_dir == root / "fold_2" / "checkpoints"
    assert fold.last_ckpt == root / "fold_2" / "checkpoints" / "last.ckpt"
    assert fold.oof_record_json == root / "fold_2" / "oof_predictions.json"
    assert fold.claim_lock == root / "fold_2" / ".claim.lock"
    assert exp.claims_lock == root / ".claims.lock" and exp.pooling_lock == root / ".pooling.lock"
    assert exp.final == FinalDir(root / "final") == exp.run("final", 0)
    assert exp.final.model_json == root / "final" / "model.json"
    assert exp.final.model_ckpt == root / "final" / "model.ckpt"
    assert [run_name("fold", 0), run_name("final", None), run_name("cv", 0)] == \
        ["fold_0", "final", "cv"]  # a mode=cv job's own log; its folds are fold_k
    with pytest.raises(ValueError, match="mode='folds'"):
        run_name("folds", 0)


def test_run_info_round_trip_and_older_files(tmp_path):
    run = ExperimentDir(tmp_path).fold(0)
    assert run.read_run_info() is None
    info = RunInfo(mode="fold", fold=0, n_folds=3, name="x", fingerprint="abc",
                   settings={"seed": 1}, n_train=10, n_val=5, fold_warnings=["w"])
    run.path.mkdir()
    run.write_run_info(info)
    assert run.read_run_info() == info
    written = json.loads(run.run_info_json.read_text())
    assert list(written)[:7] == ["mode", "fold", "n_folds", "name", "fingerprint",
                                 "oof_weights", "settings"]
    # A file with fewer or unknown keys (hand-made, or from another version) still reads.
    run.run_info_json.write_text(json.dumps({"fingerprint": "f", "extra": 1}))
    assert run.read_run_info().fingerprint == "f"


def _finished_fold(exp: ExperimentDir, k: int, fingerprint: str, seed: int = 42,
                   with_oof: bool = True) -> None:
    run = exp.fold(k)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_run_info(RunInfo(fold=k, fingerprint=fingerprint, settings={"seed": seed}))
    if with_oof:
        exp.write_fold_oof(k, pd.DataFrame({"image_filename": [f"{k}.png"], "prob_clear": [0.5]}),
                           OOFRecord(fingerprint, {"seed": seed}))


def test_a_second_configuration_under_one_name_is_refused(tmp_path):
    exp = ExperimentDir(tmp_path)
    exp.check_accepts("new", {"seed": 7})  # empty folder: anything goes
    _finished_fold(exp, 0, "old", seed=42)
    exp.check_accepts("old", {"seed": 42})  # same settings: accepted
    with pytest.raises(ExperimentError, match="already holds fold_0 trained under a different "
                                              "configuration \\(seed: 42 vs 7\\).*name="):
        exp.check_accepts("new", {"seed": 7})


def test_a_fold_that_never_finished_does_not_block(tmp_path):
    # A job that stopped before training left run info but no OOF file.
    exp = ExperimentDir(tmp_path)
    _finished_fold(exp, 1, "old", with_oof=False)
    exp.check_accepts("new", {"seed": 7})
    infos, missing = exp.finished_folds(3)
    assert infos == {} and missing == [0, 1, 2]


def test_finished_folds_and_same_configuration(tmp_path):
    exp = ExperimentDir(tmp_path)
    _finished_fold(exp, 0, "a")
    _finished_fold(exp, 2, "a")
    infos, missing = exp.finished_folds(3)
    assert sorted(infos) == [0, 2] and missing == [1]
    assert exp.read_fold_oof(2)["image_filename"].tolist() == ["2.png"]
    check_same_configuration(infos)
    _finished_fold(exp, 1, "b", seed=1)
    with pytest.raises(ExperimentError, match="fold_0 and fold_1 .* \\(seed: 42 vs 1\\)"):
        check_same_configuration(exp.finished_folds(3)[0])


def test_predictions_count_only_with_a_matching_record(tmp_path):
    exp = ExperimentDir(tmp_path)
    _finished_fold(exp, 0, "a")
    record = exp.fold(0).oof_record()
    assert record.fingerprint == "a" and record.n_rows == 1 and len(record.sha256) == 64
    written = json.loads(exp.fold(0).oof_record_json.read_text())
    assert written["settings"] == {"seed": 42} and written["sha256"] == record.sha256
    # Predictions replaced without their record (a job killed between the two writes, an
    # edit): the fold is unfinished, so never pooled under the old record's fingerprint.
    exp.fold(0).oof_csv.write_text("image_filename,prob_clear\n0.png,0.9\n")
    assert exp.fold(0).oof_record() is None
    assert exp.finished_folds(1) == ({}, [0])
    exp.check_accepts("b", {"seed": 1})  # an unfinished fold of other settings does not block
    exp.fold(0).oof_record_json.write_text("{not json")
    assert exp.fold(0).oof_record() is None


def test_a_running_job_of_other_settings_blocks_the_name(tmp_path):
    from gmn_base.locks import FileLock

    exp = ExperimentDir(tmp_path)
    run = exp.fold(1)
    run.path.mkdir()
    run.write_run_info(RunInfo(fold=1, fingerprint="old", settings={"seed": 42}))
    claim = FileLock(run.claim_lock, note="old")
    assert claim.try_acquire() is None
    try:
        exp.check_accepts("old", {"seed": 42})  # same settings: another fold may run beside it
        with pytest.raises(ExperimentError, match="already holds fold_1 being trained by pid "
                                                  f"{os.getpid()} .* under a different "
                                                  "configuration \\(seed: 42 vs 7\\).*name="):
            exp.check_accepts("new", {"seed": 7})
    finally:
        claim.release()
    exp.check_accepts("new", {"seed": 7})  # released and unfinished: no longer blocks


def test_reading_what_is_not_there_says_what_to_run(tmp_path):
    exp = ExperimentDir(tmp_path / "nothing")
    with pytest.raises(ExperimentError, match="no splits.csv in .*python train.py -m fold="):
        exp.read_splits()
    assert exp.read_operating_point() is None
