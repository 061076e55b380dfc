"""A real OpenSSH ``sshd`` on 127.0.0.1 serving a temporary GMN-shaped server tree over SFTP.

The daemon runs as the current user (root on CI and the dev machine) with a throw-away host
key, one authorized client key and ``internal-sftp``. The served tree lives under
``server.root``; remote paths are absolute, so ``source.video_root`` is
``{root}/home/contrails/CA`` and ``source.flux_root`` is ``{root}/home/extracted_data/CA``.
Where no ``sshd`` is installed the tests skip, unless ``CI`` is set: then they fail, because
CI must run them (``.ci/run`` installs ``openssh-server``).

Also usable outside pytest (``bench/download.py`` does): :func:`start_sshd` / :meth:`SshServer.stop`.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gmn_base.frame_times import format_frame_times
from gmn_base.interval_files import INTERVAL_FILE_NAME, format_interval_file
from gmn_base.night_folders import format_night_folder
from gmn_base.timelapse_names import (
    format_timelapse_folder,
    frame_times_name,
    timelapse_video_name,
)

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
UTC = timezone.utc


def find_sshd() -> str | None:
    for candidate in SSHD_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("sshd")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _keygen(path: Path, key_type: str = "ed25519") -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(path)], check=True)


@dataclass
class SshServer:
    """A running sshd: where it listens, its keys, and the served tree."""

    host: str
    port: int
    root: Path  # served tree; remote paths are absolute paths inside it
    client_key: Path  # authorized private key
    other_key: Path  # a valid key that is NOT authorized
    host_public_key: Path
    config: Path
    process: subprocess.Popen
    log: Path
    extra: dict = field(default_factory=dict)

    @property
    def video_root(self) -> str:
        return str(self.root / "home/contrails/CA")

    @property
    def flux_root(self) -> str:
        return str(self.root / "home/extracted_data/CA")

    def known_hosts_line(self) -> str:
        key_type, key_b64 = self.host_public_key.read_text().split()[:2]
        return f"[{self.host}]:{self.port} {key_type} {key_b64}\n"

    def write_known_hosts(self, path: Path) -> Path:
        path.write_text(self.known_hosts_line())
        return path

    def source_overrides(self, known_hosts: Path, **extra) -> list[str]:
        """Hydra overrides that point `source=sftp` at this server."""
        items = {
            "source.host": self.host,
            "source.port": self.port,
            "source.username": getpass.getuser(),
            "source.key_file": str(self.client_key),
            "source.known_hosts": str(known_hosts),
            "source.allow_agent": "false",
            "source.video_root": self.video_root,
            "source.flux_root": self.flux_root,
            **extra,
        }
        return ["source=sftp"] + [f"{k}={v}" for k, v in items.items()]

    def session_pids(self) -> list[int]:
        """Processes sshd forked for client sessions (all descendants of the listener)."""
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
        found, frontier = [], [self.process.pid]
        while frontier:
            children = [pid for pid, ppid in parents.items() if ppid in frontier]
            found += children
            frontier = children
        return found

    def drop_sessions(self) -> int:
        """Kill every client session, as a server or network failure would; return how many."""
        killed = 0
        for pid in self.session_pids():
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        return killed

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_sshd(workdir: Path, sshd: str) -> SshServer:
    """Start sshd on a free loopback port serving ``workdir/tree``; wait until it accepts."""
    workdir.mkdir(parents=True, exist_ok=True)
    host_key = workdir / "ssh_host_ed25519_key"
    client_key = workdir / "client_ed25519"
    other_key = workdir / "other_ed25519"
    for key in (host_key, client_key, other_key):
        if not key.exists():
            _keygen(key)
    authorized = workdir / "authorized_keys"
    authorized.write_text((workdir / "client_ed25519.pub").read_text())
    root = workdir / "tree"
    root.mkdir(exist_ok=True)
    with contextlib.suppress(PermissionError):  # privilege-separation dir (root only)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    port = _free_port()
    config = workdir / "sshd_config"
    config.write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {workdir / "sshd.pid"}
AuthorizedKeysFile {authorized}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
MaxStartups 64
MaxSessions 64
Subsystem sftp internal-sftp
LogLevel ERROR
"""
    )
    log = workdir / "sshd.log"
    process = subprocess.Popen(
        [sshd, "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"sshd did not start on port {port}: {log.read_text()}")
        time.sleep(0.05)
    return SshServer("127.0.0.1", port, root, client_key, other_key,
                     workdir / "ssh_host_ed25519_key.pub", config, process, log)


def require_sshd() -> str:
    sshd = find_sshd()
    if sshd is None:
        if os.environ.get("CI"):
            pytest.fail("sshd not found but CI is set: .ci/run must install openssh-server")
        pytest.skip("OpenSSH sshd not installed (apt-get install openssh-server); CI unset")
    return sshd


@pytest.fixture(scope="module")
def sshd_server(tmp_path_factory):
    """A running loopback sshd for the module; its served tree starts empty."""
    sshd = require_sshd()
    server = start_sshd(tmp_path_factory.mktemp("sshd"), sshd)
    yield server
    server.stop()


# --- hand-made GMN-shaped server trees ---------------------------------------------------


def _dt(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d_%H%M%S").replace(tzinfo=UTC)


def make_timelapse(video_root: Path, station: str, start: str, hours: float = 10.0,
                   video_bytes: bytes = b"", flag: str = "n") -> Path:
    """A timelapse folder holding a (fake) video and its frame-time map; returns the folder."""
    start_dt = _dt(start)
    end_dt = start_dt + timedelta(hours=hours)
    folder = video_root / station / format_timelapse_folder(station, start_dt, end_dt)
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / timelapse_video_name(station, start_dt, end_dt)
    video.write_bytes(video_bytes or (b"\x00\x00\x00\x18ftypmp42" + station.encode() + start.encode()))
    times = [start_dt + timedelta(seconds=5 * i) for i in range(3)]
    (folder / frame_times_name(station, start_dt, end_dt)).write_text(
        json.dumps(format_frame_times(times, flag)))
    return folder


def make_detected(flux_root: Path, station: str, start: str,
                  intervals: list[tuple[str, str]] | None, suffix: str = "_detected") -> Path:
    """A night folder (``_detected`` unless ``suffix`` says otherwise); ``intervals=None``
    leaves out the interval file."""
    folder = flux_root / station / format_night_folder(station, _dt(start), suffix)
    folder.mkdir(parents=True, exist_ok=True)
    if intervals is not None:
        body = format_interval_file(station, [(_dt(s), _dt(e)) for s, e in intervals])
        (folder / INTERVAL_FILE_NAME).write_text(json.dumps(body))
    return folder


def make_small_archive(root: Path) -> dict:
    """Two stations, three nights each (clear, all-cloudy, clear), plus day timelapses.

    Layout under ``root``: ``home/contrails/CA/{ST}/...`` and
    ``home/extracted_data/CA/{ST}/..._detected/flux_time_intervals.json``. Each capture starts
    at 22:59 UTC; its night timelapse runs 23:00-09:00, the day one 09:00:10-16:00.
    Returns what the tests expect: good and cloudy station-nights.
    """
    video_root = root / "home/contrails/CA"
    flux_root = root / "home/extracted_data/CA"
    nights = {
        "CAWEC2": [("20251105", True), ("20251106", False), ("20251107", True)],
        "US0001": [("20251105", False), ("20251106", True), ("20251108", True)],
    }
    for station, entries in nights.items():
        for night, clear in entries:
            make_timelapse(video_root, station, f"{night}_230000")
            next_day = (datetime.strptime(night, "%Y%m%d") + timedelta(days=1)).strftime("%Y%m%d")
            make_timelapse(video_root, station, f"{next_day}_090010", hours=7, flag="d")  # daytime
            intervals = [(f"{night}_233000", f"{next_day}_013000")] if clear else []
            make_detected(flux_root, station, f"{night}_225900", intervals)
    # A night timelapse without a night folder, and a folder whose name is not GMN's.
    make_timelapse(video_root, "CAWEC2", "20251109_230000")
    (video_root / "CAWEC2" / "notes").mkdir(parents=True, exist_ok=True)
    return {
        "good": {("CAWEC2", "20251105"), ("CAWEC2", "20251107"),
                 ("US0001", "20251106"), ("US0001", "20251108")},
        "cloudy": {("CAWEC2", "20251106"), ("US0001", "20251105")},
    }


# --- configuration ------------------------------------------------------------------------

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def prep_config(data_dir: Path, overrides: list[str]):
    """conf/prep.yaml composed in-process (as `python -m data_prep.<step>` would compose it)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("prep", overrides=[f"paths.data_dir={data_dir}", *overrides])
