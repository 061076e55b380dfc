"""Downloads over SFTP from a real sshd: find -> plan -> download end to end, resume after a
SIGKILL, retry after the server drops the connection, skips, unsafe manifest rows, and one
run over a generated synthetic archive."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import fixtures_sshd
import pytest
from fixtures_sshd import make_small_archive, prep_config

from data_prep import download, find, plan
from data_prep.remote.connect import source_factory
from data_prep.remote.download_manifest import MANIFEST_COLUMNS
from data_prep.remote.fetch import (
    DownloadJob,
    DownloadSettings,
    fetch_file,
    part_path,
    part_source_path,
    part_source_text,
)
from data_prep.remote.fetch_pool import fetch_all, plan_batches
from data_prep.remote.local import LocalSource
from data_prep.remote.source import READ_REQUEST_SIZE
from data_prep.synthetic.archive import generate_archive
from gmn_base.timelapse_names import parse_timelapse_name

sshd_server = fixtures_sshd.sshd_server  # the module's loopback sshd (a pytest fixture)

REPO = Path(__file__).resolve().parents[1]
BIG_SIZE = 24 * 2**20


@pytest.fixture(autouse=True)
def no_agent(monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


@pytest.fixture(scope="module")
def big_file(sshd_server):
    """A random file on the server, large enough to interrupt mid-transfer."""
    path = sshd_server.root / "home/contrails/CA/CAWEC2/big/CAWEC2_big_frames_timelapse.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(BIG_SIZE))
    os.utime(path, (1_700_000_000, 1_700_000_000))
    return path


def write_manifest(path: Path, rows: list[tuple[str, str, int | str, int | str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(MANIFEST_COLUMNS)
        for remote, local, size, mtime in rows:
            writer.writerow(["CAWEC2", "20251105", "night", remote, local, size, mtime])
    return path


def cfg_for(server, data: Path, known: Path, *extra: str):
    return prep_config(data, server.source_overrides(known) + ["download.backoff_s=0.1", *extra])


def same_file(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes() and int(a.stat().st_mtime) == int(b.stat().st_mtime)


def test_find_plan_download_end_to_end(sshd_server, tmp_path):
    make_small_archive(sshd_server.root)
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    data = tmp_path / "data"
    cfg = cfg_for(sshd_server, data, known, "source.stations=[CAWEC2,US0001]")
    assert find.run(cfg).ok
    planned = plan.run(cfg)
    assert planned.ok and planned.counts["files"] == 12
    summary = download.run(cfg)
    assert summary.ok, summary.failures
    assert summary.counts["downloaded"] == 12 and summary.counts["failed"] == 0
    with (data / "download_manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        assert same_file(data / row["local_path"], Path(row["remote_path"]))
    assert sorted(p.name for p in (data / "raw_data").iterdir()) == \
        sorted(Path(r["remote_path"]).name for r in rows)  # no .part left behind
    again = download.run(cfg)
    assert again.ok and again.counts["skipped"] == 12 and again.counts["downloaded"] == 0


def test_killed_download_resumes_to_identical_file(sshd_server, big_file, tmp_path):
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    data = tmp_path / "data"
    data.mkdir()
    local = data / "raw_data" / big_file.name
    manifest = write_manifest(tmp_path / "manifest.csv",
                              [(str(big_file), f"raw_data/{big_file.name}", BIG_SIZE, 1_700_000_000)])
    overrides = sshd_server.source_overrides(known) + [
        f"paths.data_dir={data}", f"download.manifest={manifest}"]
    # Paced to ~6 MB/s so the kill lands mid-file whatever the machine's load.
    proc = subprocess.Popen(
        [sys.executable, "-m", "data_prep.download", *overrides,
         "download.max_bytes_per_s=6000000", "download.chunk_size=65536"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    part = part_path(local)
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size > 2**20):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "download never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    offset = part.stat().st_size
    assert 0 < offset < BIG_SIZE and not local.exists()

    summary = download.run(cfg_for(sshd_server, data, known, f"download.manifest={manifest}"))
    assert summary.ok, summary.failures
    assert summary.counts["downloaded"] == 1
    assert summary.counts["bytes"] == BIG_SIZE - offset  # continued, not restarted
    assert same_file(local, big_file) and not part.exists()


def test_dropped_connection_is_retried_and_completes(sshd_server, big_file, tmp_path):
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    data = tmp_path / "data"
    manifest = write_manifest(tmp_path / "manifest.csv",
                              [(str(big_file), f"raw_data/{big_file.name}", BIG_SIZE, 1_700_000_000)])
    cfg = cfg_for(sshd_server, data, known, f"download.manifest={manifest}",
                  "download.max_bytes_per_s=12000000", "download.chunk_size=65536")
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("summary", download.run(cfg)))
    worker.start()
    part = part_path(data / "raw_data" / big_file.name)
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size > 2**20):
        assert worker.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    assert sshd_server.drop_sessions() >= 1
    worker.join(timeout=120)
    summary = result["summary"]
    assert summary.ok, summary.failures
    assert summary.counts["downloaded"] == 1 and summary.counts["retries"] >= 1
    assert summary.counts["bytes"] == BIG_SIZE  # the retry continued the .part
    assert same_file(data / "raw_data" / big_file.name, big_file)


def test_part_at_any_offset_is_continued_at_full_speed_to_an_identical_file(sshd_server, big_file,
                                                                            tmp_path):
    # The read-ahead path (no pacing) from an offset that is not a multiple of any block size,
    # as a .part left by a killed run is.
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    data = tmp_path / "data"
    local = data / "raw_data" / big_file.name
    local.parent.mkdir(parents=True)
    offset = 5 * 2**20 + 4321
    part_path(local).write_bytes(big_file.read_bytes()[:offset])
    part_source_path(local).write_text(part_source_text(BIG_SIZE, 1_700_000_000))
    manifest = write_manifest(tmp_path / "manifest.csv",
                              [(str(big_file), f"raw_data/{big_file.name}", BIG_SIZE, 1_700_000_000)])
    summary = download.run(cfg_for(sshd_server, data, known, f"download.manifest={manifest}"))
    assert summary.ok, summary.failures
    assert summary.counts["bytes"] == BIG_SIZE - offset
    assert same_file(local, big_file) and not part_path(local).exists()


def test_unsafe_manifest_rows_and_missing_files_fail_by_name(sshd_server, big_file, tmp_path):
    make_small_archive(sshd_server.root)
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    data = tmp_path / "data"
    data.mkdir()
    gone = str(sshd_server.root / "home/contrails/CA/CAWEC2/gone_frames_timelapse.mp4")
    manifest = write_manifest(tmp_path / "manifest.csv", [
        (str(big_file), "../escaped.mp4", BIG_SIZE, 0),
        (str(big_file), "raw_data/../../escaped2.mp4", BIG_SIZE, 0),
        (gone, "raw_data/gone_frames_timelapse.mp4", 10, 0),
    ])
    summary = download.run(cfg_for(sshd_server, data, known, f"download.manifest={manifest}"))
    assert summary.exit_code == 1 and summary.counts["failed"] == 3
    assert summary.counts["missing"] == 1
    text = "\n".join(summary.failures)
    assert "'../escaped.mp4'" in text and "'raw_data/../../escaped2.mp4'" in text
    assert "gone_frames_timelapse.mp4" in text
    assert not list(tmp_path.glob("escaped*")) and not (data / "raw_data").exists()


def test_synthetic_archive_over_sftp(sshd_server, tmp_path):
    served = sshd_server.root / "synthetic"
    generate_archive(served, stations=["CA0001", "CA0002"], nights=2, frames_per_night=4,
                     width=64, height=36, seed=3,
                     legacy_names=True)  # day-of-year names, _timestamps.json, packages too
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    data = tmp_path / "data"
    roots = [f"source.video_root={served}/contrails/CA",
             f"source.flux_root={served}/extracted_data/CA"]
    cfg = cfg_for(sshd_server, data, known, *roots)
    found = find.run(cfg)
    assert found.ok, found.failures
    assert found.counts["sessions"] == 4
    planned = plan.run(cfg)
    assert planned.ok, planned.failures
    assert planned.counts["timelapses"] == 4
    summary = download.run(cfg)
    # One night timelapse comes packed: its .tar is one file instead of two.
    assert summary.ok and summary.counts["downloaded"] == 7
    fetched = sorted((data / "raw_data").glob("*_frames_timelapse.*"))
    assert len(fetched) == 4 and sum(p.suffix == ".tar" for p in fetched) == 1
    for path in fetched:
        (remote,) = served.rglob(path.name)
        assert same_file(path, remote)
    day = plan.run(cfg_for(sshd_server, data, known, *roots, "plan.kind=day"))
    assert day.ok, day.failures
    with (data / "download_manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    with (data / "nights.csv").open() as fh:
        ends = {(r["station"], r["night"]): r["end"] for r in csv.DictReader(fh)}
    # Daytime timelapses, each starting as its night's capture ends.
    assert rows and {r["kind"] for r in rows} == {"day"}
    for r in rows:
        start = parse_timelapse_name(Path(r["remote_path"]).parent.name).start
        end = datetime.fromisoformat(ends[(r["station"], r["night"])])
        assert timedelta(0) < start - end < timedelta(minutes=1)


def test_command_line_exits_non_zero_and_names_the_failure(sshd_server, big_file, tmp_path):
    make_small_archive(sshd_server.root)
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    data = tmp_path / "data"
    data.mkdir()
    video = next((sshd_server.root / "home/contrails/CA/US0001").rglob("*_frames_timelapse.mp4"))
    gone = str(sshd_server.root / "home/contrails/CA/US0001/gone_frames_timelapse.mp4")
    manifest = write_manifest(tmp_path / "manifest.csv", [
        (str(video), f"raw_data/{video.name}", video.stat().st_size, int(video.stat().st_mtime)),
        (gone, "raw_data/gone_frames_timelapse.mp4", 10, 0)])
    done = subprocess.run(
        [sys.executable, "-m", "data_prep.download", *sshd_server.source_overrides(known),
         f"paths.data_dir={data}", f"download.manifest={manifest}"],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "download: downloaded=1" in done.stdout
    assert "missing=1" in done.stdout and "failed=1" in done.stdout
    assert "download failed: " + gone in done.stdout
    assert (data / "raw_data" / video.name).read_bytes() == video.read_bytes()


def test_part_of_another_version_is_started_again_not_mixed(tmp_path):
    # A local source (no sshd needed): the server's file was replaced by a new version of the
    # same size after a .part of the old one was left behind.
    server = tmp_path / "server"
    server.mkdir()
    remote = server / "CAWEC2_big_frames_timelapse.mp4"
    new = os.urandom(300_000)
    remote.write_bytes(new)
    os.utime(remote, (1_700_000_100, 1_700_000_100))
    local = tmp_path / "data" / "raw_data" / remote.name
    local.parent.mkdir(parents=True)
    part_path(local).write_bytes(b"\0" * 100_000)  # a third of the old version
    part_source_path(local).write_text(part_source_text(300_000, 1_700_000_000))
    job = DownloadJob(str(remote), local)
    status, moved = fetch_file(LocalSource(server), job, DownloadSettings())
    assert (status, moved) == ("downloaded", 300_000)  # restarted, not continued
    assert local.read_bytes() == new and int(local.stat().st_mtime) == 1_700_000_100
    assert not part_path(local).exists() and not part_source_path(local).exists()

    # The same version interrupted: continued from the .part, only the rest is moved.
    local.unlink()
    part_path(local).write_bytes(new[:100_000])
    part_source_path(local).write_text(part_source_text(300_000, 1_700_000_100))
    status, moved = fetch_file(LocalSource(server), job, DownloadSettings())
    assert (status, moved) == ("downloaded", 200_000) and local.read_bytes() == new

    # A .part without its .source file (made by an older version of this step): started again.
    local.unlink()
    part_path(local).write_bytes(b"\0" * 100_000)
    status, moved = fetch_file(LocalSource(server), job, DownloadSettings())
    assert (status, moved) == ("downloaded", 300_000) and local.read_bytes() == new


def test_unreachable_server_stops_the_run_after_one_files_retries(tmp_path):
    port = fixtures_sshd._free_port()  # nothing listens there: every connect is refused
    data = tmp_path / "data"
    rows = [(f"/remote/CAWEC2_2025110{i}-230000_to_2025110{i + 1}-090000_frametimes.json",
             f"raw_data/CAWEC2_2025110{i}-230000_to_2025110{i + 1}-090000_frametimes.json", 10, 0)
            for i in range(1, 7)]
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    cfg = prep_config(data, ["source=sftp", "source.host=127.0.0.1", f"source.port={port}",
                             "source.allow_agent=false", f"source.known_hosts={tmp_path / 'kh'}",
                             f"download.manifest={manifest}", "download.workers=1",
                             "download.retries=2", "download.backoff_s=0.01"])
    started = time.monotonic()
    summary = download.run(cfg)
    assert summary.exit_code == 1 and summary.counts["downloaded"] == 0
    assert len(summary.failures) == 1
    assert summary.failures[0].startswith(f"cannot connect to 127.0.0.1:{port}: ")
    assert time.monotonic() - started < 10  # not 6 files x 3 attempts each


def test_small_files_in_one_batch_with_a_missing_and_a_larger_one(sshd_server, tmp_path):
    # Small files are asked for in batches (all opens, then all fstat + read + close); a file
    # the batch cannot read whole (missing here, or larger than the listing said) goes
    # through the one-by-one path, and every result stays in the job's place.
    folder = sshd_server.root / "home/contrails/CA/CAWEC2/batch"
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {"a.json": 0, "b.json": 37, "grown.bin": 300_000, "c.json": 4096}
    for i, (name, size) in enumerate(sizes.items()):
        (folder / name).write_bytes(os.urandom(size))
        os.utime(folder / name, (1_700_000_000 + i, 1_700_000_000 + i))
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    factory = source_factory(cfg_for(sshd_server, tmp_path / "data", known).source)
    out = tmp_path / "out"
    names = ["a.json", "gone.json", "b.json", "grown.bin", "c.json"]
    source = factory()
    try:
        whole = source.read_small([str(folder / n) for n in names])
    finally:
        source.close()
    assert [w and (w.data, w.mtime) for w in whole] == [
        ((folder / n).read_bytes(), int((folder / n).stat().st_mtime)) if n.endswith("json")
        and n != "gone.json" else None for n in names]
    jobs = [DownloadJob(str(folder / n), out / n, 10, 0) for n in names]
    results = fetch_all(jobs, factory, DownloadSettings(workers=1, retries=0))
    assert [r.job for r in results] == jobs
    assert [r.status for r in results] == ["downloaded", "missing", "downloaded", "downloaded",
                                           "downloaded"]
    for name in sizes:
        assert same_file(folder / name, out / name), name
    assert sorted(p.name for p in out.iterdir()) == sorted(sizes)
    assert [r.status for r in fetch_all(jobs, factory, DownloadSettings())] == [
        "skipped", "missing", "skipped", "skipped", "skipped"]


def test_batches_share_small_files_among_workers_and_send_large_ones_alone(tmp_path):
    small = [DownloadJob(f"r/s{i}.json", tmp_path / f"s{i}.json", 100, 0) for i in range(70)]
    unknown = [DownloadJob("r/u.json", tmp_path / "u.json")]
    large = [DownloadJob("r/big.mp4", tmp_path / "big.mp4", READ_REQUEST_SIZE + 1, 0)]
    jobs = small[:35] + large + unknown + small[35:]
    batches = plan_batches(jobs, workers=4)
    assert [len(b) for b in batches] == [18, 18, 18, 16, 1, 1]  # 70 small over 4 workers
    assert [j for b in batches for j in b if j in small] == small  # each once, in order
    assert batches[-2:] == [large, unknown]  # size unknown: alone, unless expected small
    expected = plan_batches(jobs, workers=4, expect_small=True)
    assert [len(b) for b in expected] == [18, 18, 18, 17, 1] and expected[-1] == large
    assert [len(b) for b in plan_batches(small[:3], workers=8)] == [1, 1, 1]
    assert [len(b) for b in plan_batches(small, workers=1)] == [32, 32, 6]  # SMALL_BATCH at most


def test_fetch_pool_outcomes_from_a_local_source(tmp_path):
    # A local source (no sshd needed): each outcome fetch_all reports, and a rerun skips.
    server = tmp_path / "server"
    server.mkdir()
    for name, size in (("a.json", 10), ("b.json", 20), ("big.mp4", 400_000)):
        (server / name).write_bytes(os.urandom(size))
    out = tmp_path / "out"
    jobs = [DownloadJob(str(server / "a.json"), out / "a.json"),
            DownloadJob(str(server / "gone.json"), out / "gone.json"),
            DownloadJob(str(server / "b.json"), out / "b.json", 20, 0),
            DownloadJob(str(server / "big.mp4"), out / "big.mp4", 400_000, 0),
            DownloadJob(str(server / "a.json"), out / "..")]
    settings = DownloadSettings(workers=2, retries=0)
    results = fetch_all(jobs, lambda: LocalSource(server), settings, expect_small=True)
    assert [(r.job, r.status) for r in results] == [
        (jobs[0], "downloaded"), (jobs[1], "missing"), (jobs[2], "downloaded"),
        (jobs[3], "downloaded"), (jobs[4], "failed")]
    assert results[1].error.startswith(str(server / "gone.json"))
    assert "rejected remote name '..'" in results[4].error
    for name in ("a.json", "b.json", "big.mp4"):
        assert (out / name).read_bytes() == (server / name).read_bytes()
    again = fetch_all(jobs[:1] + jobs[2:4], lambda: LocalSource(server), settings)
    assert [r.status for r in again] == ["skipped", "skipped", "skipped"]
