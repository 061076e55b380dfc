"""Benchmark: our SFTP fetch (data_prep.remote.fetch_pool) against OpenSSH's ``sftp -b``.

Two cases, the same files for both clients, each timed from connecting to the last byte on
disk: one large random file (``--big-mb``, default 300 MB) and ``--small`` (default 300)
small JSON files shaped like RMS interval files. Ours uses ``--workers`` connections (one
sequential session is all ``sftp -b`` has). Prints MB/s (and files/s) for both and the
ratio ours / OpenSSH; goals: >= 1.0x on the large file, >= 1.5x on the small files. Also
prints each client's CPU seconds (user + system) in its best run: on a loaded machine the
wall-clock ratio swings from run to run, the client CPU cost per file much less.

    .venv/bin/python bench/download.py [--big-mb 300] [--small 300] [--workers 4] [--repeats 2]

Needs OpenSSH's sshd and sftp (run as root, like the tests); writes under a temporary folder.
"""

from __future__ import annotations

import argparse
import filecmp
import getpass
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from fixtures_sshd import find_sshd, start_sshd

from data_prep.remote.connect import source_factory
from data_prep.remote.fetch import DownloadJob, DownloadSettings
from data_prep.remote.fetch_pool import fetch_all


def make_files(root: Path, big_mb: int, small: int) -> tuple[Path, list[Path]]:
    big = root / "big" / "CAWEC2_20251105-230000_to_20251106-090000_frames_timelapse.mp4"
    big.parent.mkdir(parents=True, exist_ok=True)
    if not big.exists() or big.stat().st_size != big_mb * 2**20:
        with big.open("wb") as fh:
            for _ in range(big_mb):
                fh.write(os.urandom(2**20))
    small_dir = root / "small"
    small_dir.mkdir(exist_ok=True)
    files = []
    for i in range(small):
        path = small_dir / f"CAWEC2_2025{i // 28 % 12 + 1:02d}{i % 28 + 1:02d}_225900_{i:06d}_detected.json"
        intervals = [[f"2025-11-05T23:{m:02d}:05.018000", f"2025-11-06T0{m % 9}:59:00.018000"]
                     for m in range(i % 5 + 1)]
        path.write_text(json.dumps({"stationID": "CAWEC2", "time_intervals": intervals}))
        files.append(path)
    return big, files


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_ours(server, known_hosts: Path, remote: list[Path], out: Path,
             workers: int) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    cfg = OmegaConf.create({"kind": "sftp", "host": server.host, "port": server.port,
                            "username": getpass.getuser(), "key_file": str(server.client_key),
                            "known_hosts": str(known_hosts), "allow_agent": False})
    # Size and mtime as the listing gives them (find, plan's manifest): small files are then
    # fetched in batches. OpenSSH's `get` stats each file itself.
    jobs = [DownloadJob(str(p), out / p.name, p.stat().st_size, int(p.stat().st_mtime))
            for p in remote]
    cpu, started = cpu_seconds(resource.RUSAGE_SELF), time.perf_counter()
    results = fetch_all(jobs, source_factory(cfg), DownloadSettings(workers=workers))
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(resource.RUSAGE_SELF) - cpu
    bad = [r for r in results if r.status != "downloaded"]
    if bad:
        raise RuntimeError(f"ours: {len(bad)} file(s) not downloaded, e.g. {bad[0].error}")
    return elapsed, cpu


def run_openssh(server, known_hosts: Path, remote: list[Path], out: Path) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    batch = out.parent / "openssh.batch"
    batch.write_text("".join(f'get "{p}" "{out / p.name}"\n' for p in remote))
    command = ["sftp", "-q", "-b", str(batch), "-i", str(server.client_key), "-P", str(server.port),
               "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known_hosts}",
               "-o", "StrictHostKeyChecking=yes", f"{getpass.getuser()}@{server.host}"]
    cpu, started = cpu_seconds(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, cpu_seconds(resource.RUSAGE_CHILDREN) - cpu


def same(remote: list[Path], out: Path) -> bool:
    return all(filecmp.cmp(p, out / p.name, shallow=False) for p in remote)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mb", type=int, default=300, help="size of the large file in MiB")
    parser.add_argument("--small", type=int, default=300, help="number of small JSON files")
    parser.add_argument("--workers", type=int, default=4, help="our parallel connections")
    parser.add_argument("--repeats", type=int, default=2, help="runs per client; the best counts")
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here (default: temp)")
    args = parser.parse_args()

    sshd = find_sshd()
    if sshd is None or shutil.which("sftp") is None:
        print("needs OpenSSH sshd and sftp (apt-get install openssh-server openssh-client)")
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_download_"))
    server = start_sshd(workdir / "sshd", sshd)
    try:
        known_hosts = server.write_known_hosts(workdir / "known_hosts")
        big, small = make_files(server.root, args.big_mb, args.small)
        cases = [("large file", [big]), (f"{len(small)} small JSON", small)]
        print(f"loopback sshd {server.port}, {os.cpu_count()} CPU(s), ours: "
              f"{args.workers} connection(s), best of {args.repeats}")
        print(f"loadavg {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(f"{'case':<18}{'MB':>8}{'ours MB/s':>12}{'OpenSSH MB/s':>14}{'ours files/s':>14}"
              f"{'OpenSSH files/s':>17}{'ratio':>8}{'ours cpu-s':>12}{'OpenSSH cpu-s':>15}")
        for name, files in cases:
            size = sum(p.stat().st_size for p in files) / 1e6
            ours_s, openssh_s = [], []
            for _ in range(args.repeats):  # alternate, so background load hits both alike
                ours_s.append(run_ours(server, known_hosts, files, workdir / "ours", args.workers))
                openssh_s.append(run_openssh(server, known_hosts, files, workdir / "openssh"))
            if not (same(files, workdir / "ours") and same(files, workdir / "openssh")):
                raise RuntimeError(f"{name}: downloaded files differ from the server's")
            (ours, ours_cpu), (openssh, openssh_cpu) = min(ours_s), min(openssh_s)
            print(f"{name:<18}{size:>8.2f}{size / ours:>12.2f}{size / openssh:>14.2f}"
                  f"{len(files) / ours:>14.1f}{len(files) / openssh:>17.1f}{openssh / ours:>7.2f}x"
                  f"{ours_cpu:>12.2f}{openssh_cpu:>15.2f}")
    finally:
        server.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
