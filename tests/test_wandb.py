"""``logger=wandb`` offline: one run per job, grouped by experiment, and no secrets saved.

Real W&B client in offline mode (``WANDB_MODE=offline``); the run record is read back from
the ``.wandb`` transaction log it writes (a LevelDB-style log of protobuf records).
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

from fixtures_train import compose_train, make_dataset, tiny_overrides

FAKE_SECRET = "AIzaFAKE-not-a-real-key-4242"


def read_wandb_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    raw = path.read_bytes()
    block, pos, records, partial = 32768, 7, [], b""  # 7-byte file header ":W&B..."
    while pos + 7 <= len(raw):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        if pos + 7 + length > len(raw):
            break  # a record still being written
        data = raw[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            records.append(data)
        elif kind == 2:
            partial = data
        elif kind == 3:
            partial += data
        elif kind == 4:
            records.append(partial + data)
    parsed = []
    for data in records:
        record = pb.Record()
        record.ParseFromString(data)
        parsed.append(record)
    return parsed


def test_wandb_offline_run_grouped_and_without_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_SECRET)
    from gmn_weather.training import train

    make_dataset(tmp_path / "data")
    # A secret-looking key in the run's own config: it must reach no file, W&B's included.
    cfg = compose_train(*tiny_overrides(tmp_path / "data", tmp_path / "out"), "logger=wandb",
                        "fold=1", f"+notify.api_key={FAKE_SECRET}")
    train(cfg)
    import wandb

    assert wandb.run is None  # finished: the next multirun job starts a new run
    run_dir = tmp_path / "out" / "tiny_test_resnet_light" / "fold_1"
    logs = list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(logs) == 1
    # wandb-core (a separate process) may still be flushing the log when finish() returns.
    deadline = time.monotonic() + 30
    records = read_wandb_records(logs[0])
    while not any(r.WhichOneof("record_type") == "exit" for r in records) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
        records = read_wandb_records(logs[0])
    runs = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert runs, "no run record in the offline log"
    assert runs[0].run_group == "tiny_test_resnet_light"
    assert runs[0].job_type == "fold"
    assert runs[0].display_name == "fold_1"
    config_keys = {u.key for r in records if r.WhichOneof("record_type") == "config"
                   for u in r.config.update}
    assert {"model", "data", "seed"} <= config_keys
    assert "api_key: <redacted>" in (run_dir / "config.yaml").read_text()
    # No saved file, W&B's included, carries the secret's value.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert FAKE_SECRET.encode() not in path.read_bytes(), path
