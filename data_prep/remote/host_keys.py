"""SSH host-key checking for the SFTP source, the way OpenSSH users expect it.

Keys are checked against ``source.known_hosts`` and the user's ``~/.ssh/known_hosts``. An
unknown host is refused with an error that says how to trust it; with
``source.accept_new_host_key=true`` a new key is trusted on first use and appended to
``source.known_hosts`` (OpenSSH's ``StrictHostKeyChecking=accept-new``). A key that differs
from the recorded one is always refused (paramiko raises ``BadHostKeyException`` before any
policy runs; :func:`changed_host_key_message` words it).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import paramiko

from gmn_base.atomic import write_text

log = logging.getLogger(__name__)


class HostKeyError(RuntimeError):
    """The server's host key is unknown or has changed; the message says what to do."""


def host_label(host: str, port: int) -> str:
    """How known_hosts names a host: ``host`` on port 22, ``[host]:port`` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


def unknown_host_message(host: str, port: int, key: paramiko.PKey, known_hosts: Path | None) -> str:
    target = known_hosts or Path("~/.ssh/known_hosts")
    port_flag = f"-p {port} " if port != 22 else ""
    return (
        f"unknown SSH host key for {host_label(host, port)} "
        f"({key.get_name()} {key.fingerprint}); it is in neither {target} nor ~/.ssh/known_hosts. "
        f"After checking the fingerprint with the server's operator, add it with "
        f"`ssh-keyscan {port_flag}{host} >> {target}`, or run once with "
        f"source.accept_new_host_key=true to record it on first use"
    )


def changed_host_key_message(host: str, port: int, exc: paramiko.BadHostKeyException,
                             known_hosts: Path | None) -> str:
    where = known_hosts or Path("~/.ssh/known_hosts")
    return (
        f"SSH host key for {host_label(host, port)} has CHANGED: the server offers "
        f"{exc.key.get_name()} {exc.key.fingerprint}, {where} records {exc.expected_key.fingerprint}. "
        f"This can be an attack; if the operator confirms the change, remove the old entry with "
        f"`ssh-keygen -R '{host_label(host, port)}' -f {where}` and connect again"
    )


class RefuseUnknownHost(paramiko.MissingHostKeyPolicy):
    def __init__(self, host: str, port: int, known_hosts: Path | None):
        self.host, self.port, self.known_hosts = host, port, known_hosts

    def missing_host_key(self, client, hostname, key):
        raise HostKeyError(unknown_host_message(self.host, self.port, key, self.known_hosts))


class AcceptNewHost(paramiko.MissingHostKeyPolicy):
    """Trust an unknown host on first use and append its key to ``known_hosts``."""

    def __init__(self, known_hosts: Path, lock: threading.Lock):
        self.known_hosts = known_hosts
        self.lock = lock  # workers connecting at once must not lose each other's lines

    def missing_host_key(self, client, hostname, key):
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with self.lock:
            existing = self.known_hosts.read_text() if self.known_hosts.exists() else ""
            if line not in existing:
                if existing and not existing.endswith("\n"):
                    existing += "\n"
                write_text(self.known_hosts, existing + line)
                log.warning("recorded new SSH host key for %s (%s %s) in %s", hostname,
                            key.get_name(), key.fingerprint, self.known_hosts)
        client.get_host_keys().add(hostname, key.get_name(), key)


def configure_host_keys(client: paramiko.SSHClient, host: str, port: int,
                        known_hosts: Path | None, accept_new: bool,
                        lock: threading.Lock) -> None:
    """Load the known keys into ``client`` and set the policy for an unknown host."""
    user_file = Path("~/.ssh/known_hosts").expanduser()
    if user_file.is_file():
        client.load_system_host_keys(str(user_file))
    if known_hosts is not None and known_hosts.is_file():
        client.load_host_keys(str(known_hosts))
    if accept_new:
        if known_hosts is None:
            raise HostKeyError("source.accept_new_host_key=true needs source.known_hosts: "
                               "the file where the new host key is recorded")
        client.set_missing_host_key_policy(AcceptNewHost(known_hosts, lock))
    else:
        client.set_missing_host_key_policy(RefuseUnknownHost(host, port, known_hosts))
