"""``logger=wandb`` offline: one run per job, grouped by experiment, and no secrets saved.

Real W&B client in offline mode (``WANDB_MODE=offline``); the run record is read back from
the ``.wandb`` transaction log it writes, with wandb's own protobuf schema
(:mod:`fixtures_wandb`).
"""

from __future__ import annotations

from fixtures_train import compose_train, make_dataset, tiny_overrides
from fixtures_wandb import offline_runs

FAKE_SECRET = "AIzaFAKE-not-a-real-key-4242"


def test_wandb_offline_run_grouped_and_without_secrets(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_SECRET)
    from gmn_weather.training import train

    make_dataset(tmp_path / "data")
    # A secret-looking key in the run's own config: it must reach no file, W&B's included.
    cfg = compose_train(*tiny_overrides(tmp_path / "data", tmp_path / "out"), "logger=wandb",
                        "fold=1", f"+notify.api_key={FAKE_SECRET}", "trainer.enable_progress_bar=true")
    train(cfg)
    progress = "".join(capfd.readouterr())  # Lightning's progress bar
    assert all(f"{key}: " in progress for key in ("train/loss", "val/loss", "val/auroc"))
    import wandb

    assert wandb.run is None  # finished: the next multirun job starts a new run
    run_dir = tmp_path / "out" / "tiny_test_resnet_light" / "fold_1"
    (run,) = offline_runs(run_dir / "wandb")
    assert run.run.run_group == "tiny_test_resnet_light"
    assert run.run.job_type == "fold"
    assert run.run.display_name == "fold_1"
    assert {"model", "data", "seed"} <= run.config_keys
    # The fold's curves, as the progress bar shows them.
    assert {"train/loss", "val/loss", "val/auroc"} <= run.history_keys
    assert "api_key: <redacted>" in (run_dir / "config.yaml").read_text()
    # No saved file, W&B's included, carries the secret's value.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert FAKE_SECRET.encode() not in path.read_bytes(), path
