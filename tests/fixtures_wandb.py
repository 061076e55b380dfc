"""Reading what W&B wrote offline: the records of a run's ``.wandb`` transaction log.

wandb 0.31 has no public reader for the log any more, so the file is read the way it is
written (LevelDB-style 32 KiB blocks of length-prefixed chunks) and each record parsed with
wandb's own protobuf schema (``wandb.proto.wandb_internal_pb2.Record``).
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

_BLOCK = 32768
_HEADER = 7  # the file's ":W&B" header, and each chunk's checksum/length/type


def read_wandb_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    raw = path.read_bytes()
    pos, records, partial = _HEADER, [], b""
    while pos + _HEADER <= len(raw):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos:pos + _HEADER])
        if kind == 0 and length == 0:
            pos += left
            continue
        if pos + _HEADER + length > len(raw):
            break  # a record still being written
        data = raw[pos + _HEADER:pos + _HEADER + length]
        pos += _HEADER + length
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


def _key(item) -> str:
    return item.key or ".".join(item.nested_key)


@dataclass
class OfflineRun:
    """What one offline run holds, from its ``.wandb`` log and its ``files/`` folder."""

    folder: Path
    run: object  # the RunRecord
    summary: dict = field(default_factory=dict)  # top-level key -> value (parsed JSON)
    history_keys: set = field(default_factory=set)
    config_keys: set = field(default_factory=set)
    artifacts: list = field(default_factory=list)  # ArtifactRecords
    environments: list = field(default_factory=list)  # EnvironmentRecords (system metadata)

    def table_rows(self, key: str) -> list:
        """Rows of the wandb.Table logged under ``key`` (its JSON file in files/)."""
        path = json.loads(self.summary[key])["path"] if isinstance(self.summary[key], str) \
            else self.summary[key]["path"]
        return json.loads((self.folder / "files" / path).read_text())["data"]


def _records_when_complete(log: Path, timeout_s: float = 30) -> list:
    # wandb-core (a separate process) may still be flushing the log when finish() returns.
    deadline = time.monotonic() + timeout_s
    records = read_wandb_records(log)
    while not any(r.WhichOneof("record_type") == "exit" for r in records) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
        records = read_wandb_records(log)
    return records


def offline_run(folder: Path) -> OfflineRun:
    """The offline run in ``folder`` (``.../wandb/offline-run-*``)."""
    (log,) = folder.glob("run-*.wandb")
    records = _records_when_complete(log)
    runs = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert runs, f"no run record in {log}"
    result = OfflineRun(folder, runs[0])
    result.config_keys |= {_key(u) for u in runs[0].config.update}  # wandb.init(config=...)
    nested: dict = {}
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "summary":
            for item in record.summary.update:
                if item.key:
                    result.summary[item.key] = json.loads(item.value_json)
                elif item.nested_key:
                    nested.setdefault(item.nested_key[0], {})[".".join(item.nested_key[1:])] = \
                        json.loads(item.value_json)
        elif kind == "history":
            result.history_keys |= {i.key or i.nested_key[0] for i in record.history.item}
        elif kind == "config":
            result.config_keys |= {_key(u) for u in record.config.update}
        elif kind == "artifact":
            result.artifacts.append(record.artifact)
        elif kind == "environment":
            result.environments.append(record.environment)
    for key, parts in nested.items():
        if key not in result.summary:
            result.summary[key] = parts
    return result


def offline_runs(root: Path) -> list[OfflineRun]:
    """Every offline run under ``root`` (the ``latest-run`` links left out)."""
    return [offline_run(folder) for folder in sorted(root.rglob("offline-run-*")) if folder.is_dir()]
