"""A real single-node SLURM cluster for the tests: munged, slurmctld and slurmd from the Debian
packages (``munge``, ``slurmctld``, ``slurmd``, ``slurm-client``), started as root.

Everything lives in one private folder, :data:`CLUSTER_DIR` under ``/var/spool``: the
``slurm.conf``, state and spool folders, logs, a fresh munge key (owner munge, mode 0400) and
munged's socket. The daemons listen on free ports and clients find them through ``SLURM_CONF``
(:attr:`SlurmCluster.env`), so no file under ``/etc`` is changed and a cluster this machine
may already run is not touched. ``slurm.conf`` holds ``SlurmctldHost=<hostname -s>``,
``SlurmUser=root``, ``AuthType=auth/munge``, ``ProctrackType=proctrack/linuxproc``,
``TaskPlugin=task/none``, ``SelectType=select/cons_tres``, ``SelectTypeParameters=CR_Core``,
one node with this machine's CPUs and memory and a partition ``debug``.

The fixture waits until ``sinfo`` shows the node idle, and at the end cancels what is still
queued, stops exactly the daemons it started (by pid) and removes the folder. Test sessions on
one machine take turns: the cluster is held under a system-wide lock (:data:`SESSION_LOCK`, a
:class:`gmn_base.locks.FileLock`); a second session waits up to :data:`WAIT_FOR_OTHER_S`, then
skips naming the holder. Daemons left by a session that was killed are recognised by their
command line (which names the folder) and stopped before a new cluster starts.

Where not root or a package is missing the tests skip with the reason, unless ``CI`` is set:
then they fail, because CI must run them (``.ci/run`` installs the packages).
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gmn_base.locks import FileLock, LockTimeout

CLUSTER_DIR = Path("/var/spool/gmn-weather-test-slurm")
SESSION_LOCK = Path("/run/lock/gmn-weather-test-slurm.lock")
WAIT_FOR_OTHER_S = 600.0
START_TIMEOUT_S = 60.0
PARTITION = "debug"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "sinfo", "squeue", "scancel")
SBIN = ("/usr/sbin", "/usr/bin", "/sbin")


def _find(program: str) -> str | None:
    return shutil.which(program) or next(
        (f"{d}/{program}" for d in SBIN if os.access(f"{d}/{program}", os.X_OK)), None)


def missing_requirement() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if os.geteuid() != 0:
        return "the SLURM tests start slurmctld/slurmd/munged and must run as root"
    missing = [p for p in (*DAEMONS, *CLIENTS) if _find(p) is None]
    if missing:
        return (f"SLURM programs not installed: {', '.join(missing)} "
                "(apt-get install slurmctld slurmd slurm-client munge)")
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no user 'munge' (the munge package creates it)"
    return None


def require_slurm() -> None:
    reason = missing_requirement()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set: .ci/run must provide this")
    pytest.skip(f"{reason}; CI unset")


@dataclass
class SlurmCluster:
    """A running cluster: its node, partition, and the environment its clients need."""

    folder: Path
    node: str
    cpus: int
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def run(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        proc = subprocess.run(list(args), env={**os.environ, **self.env}, capture_output=True,
                              text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): "
                               f"{proc.stdout}{proc.stderr}\n{self.logs()}")
        return proc.stdout

    def node_state(self) -> str:
        return self.run("sinfo", "-h", "-n", self.node, "-o", "%T", check=False).strip()

    def logs(self, lines: int = 30) -> str:
        parts = []
        for log in sorted(self.folder.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def queued_jobs(self) -> list[str]:
        return self.run("squeue", "-h", "-o", "%i", check=False, timeout=20).split()

    def stop(self, drain_s: float = 30) -> None:
        """Give jobs still finishing ``drain_s`` to end, cancel the rest, then stop the daemons
        (slurmd, slurmctld, munged: by pid)."""
        controller = self.processes.get("slurmctld")
        if (controller is not None and controller.poll() is None
                and not _wait_for(lambda: not self.queued_jobs(), drain_s)):
            self.run("scancel", *self.queued_jobs(), check=False, timeout=20)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.processes.pop(name, None)
            if proc is not None:
                _terminate(proc.pid, proc)
        _pids_file(self.folder).unlink(missing_ok=True)


def _terminate(pid: int, proc: subprocess.Popen | None = None, grace_s: float = 15) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return
        if proc is None and not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if proc is not None:
        proc.wait(timeout=10)


def _pids_file(folder: Path) -> Path:
    return folder / "daemons.json"


def _stop_leftovers(folder: Path) -> None:
    """Stop daemons a killed earlier session started in ``folder`` (their command line names
    its slurm.conf or munge socket), then remove the folder."""
    try:
        pids = json.loads(_pids_file(folder).read_text())
    except (FileNotFoundError, ValueError):
        pids = {}
    for pid in pids.values():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(folder) in cmdline:
            _terminate(int(pid))
    shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 * 9 // 10  # below what slurmd measures
    raise RuntimeError("no MemTotal in /proc/meminfo")


CRED_EXPIRE_S = 15


def slurm_conf(folder: Path, node: str, cpus: int, memory_mb: int, ports: tuple[int, int]) -> str:
    munge = folder / "munge"
    return "\n".join([
        "ClusterName=gmntest",
        f"SlurmctldHost={node}",
        f"SlurmctldPort={ports[0]}",
        f"SlurmdPort={ports[1]}",
        "SlurmUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        # cred_expire: how long a requeued job waits before it may start again (SLURM's
        # default, 120 s, would slow the requeue test; starting it early races slurmd's
        # revocation of the old credential: "Job credential revoked").
        f"AuthInfo=socket={munge / 'munge.socket'},cred_expire={CRED_EXPIRE_S}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "MpiDefault=none",
        # Look at pending jobs every 2 s (default 60/30 s): a requeued job starts soon after
        # its hold ends instead of at the next minute's pass.
        "SchedulerParameters=sched_interval=2,bf_interval=2",
        "ReturnToService=2",
        f"StateSaveLocation={folder / 'slurmctld'}",
        f"SlurmdSpoolDir={folder / 'slurmd'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd.log'}",
        f"NodeName={node} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


def _start_munged(folder: Path) -> subprocess.Popen:
    munge = folder / "munge"
    munge.mkdir(mode=0o755)
    user = pwd.getpwnam("munge")
    os.chown(munge, user.pw_uid, user.pw_gid)
    key = munge / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    os.chown(key, user.pw_uid, user.pw_gid)
    key.chmod(0o400)
    proc = subprocess.Popen(
        [_find("munged"), "--foreground", f"--key-file={key}", f"--socket={munge / 'munge.socket'}",
         f"--pid-file={munge / 'munged.pid'}", f"--log-file={munge / 'munged.log'}",
         f"--seed-file={munge / 'munged.seed'}"],
        user="munge", group="munge", extra_groups=[], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=munge)
    _wait_for(lambda: (munge / "munge.socket").exists() or proc.poll() is not None, 20)
    if proc.poll() is not None:
        raise RuntimeError(f"munged exited ({proc.returncode}): "
                           + (munge / "munged.log").read_text(errors="replace")[-2000:])
    return proc


def _wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def start_cluster(folder: Path = CLUSTER_DIR) -> SlurmCluster:
    """Start munged, slurmctld and slurmd in ``folder`` (emptied first); wait for an idle node."""
    _stop_leftovers(folder)
    folder.mkdir(mode=0o755, parents=True)
    for sub in ("slurmctld", "slurmd"):
        (folder / sub).mkdir(mode=0o755)
    node = socket.gethostname().split(".")[0]
    cpus = len(os.sched_getaffinity(0))
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, node, cpus, _memory_mb(), (_free_port(), _free_port())))
    cluster = SlurmCluster(folder, node, cpus, {"SLURM_CONF": str(conf)})
    try:
        cluster.processes["munged"] = _start_munged(folder)
        for name in ("slurmctld", "slurmd"):
            with open(folder / f"{name}.out", "wb") as out:
                cluster.processes[name] = subprocess.Popen(
                    [_find(name), "-D", "-f", str(conf)], stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, cwd=folder)
        _pids_file(folder).write_text(json.dumps(
            {name: proc.pid for name, proc in cluster.processes.items()}))
        if not _wait_for(lambda: cluster.node_state() == "idle", START_TIMEOUT_S):
            raise RuntimeError(f"node {node} not idle after {START_TIMEOUT_S:.0f} s "
                               f"(state {cluster.node_state()!r}):\n{cluster.logs()}")
    except BaseException:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return cluster


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node cluster for the module (see the module docstring)."""
    require_slurm()
    lock = FileLock(SESSION_LOCK, note="gmn-weather test session SLURM cluster")
    try:
        lock.acquire(timeout=WAIT_FOR_OTHER_S, poll_s=1.0)
    except LockTimeout as exc:
        pytest.skip(f"another test session holds the SLURM test cluster: {exc}")
    try:
        cluster = start_cluster()
        try:
            yield cluster
        finally:
            cluster.stop()
            shutil.rmtree(cluster.folder, ignore_errors=True)
    finally:
        lock.release()
