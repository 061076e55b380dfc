"""The archive sources: name safety, the local directory, and SFTP against a real sshd
(host-key checking, accept-new, wrong keys)."""

from __future__ import annotations

import getpass
import os
import subprocess
from pathlib import Path

import fixtures_sshd
import pytest
from fixtures_sshd import make_small_archive
from omegaconf import OmegaConf

from data_prep.remote.channel_buffer import HOOKS_PRESENT, BlockQueuePipe
from data_prep.remote.connect import source_factory
from data_prep.remote.host_keys import HostKeyError
from data_prep.remote.local import LocalSource
from data_prep.remote.sftp import SftpSource, SourceAuthError, sftp_settings
from data_prep.remote.source import (
    READ_REQUEST_SIZE,
    SourceError,
    UnsafeNameError,
    check_remote_name,
    resolve_inside,
)

sshd_server = fixtures_sshd.sshd_server  # the module's loopback sshd (a pytest fixture)


@pytest.fixture(autouse=True)
def no_agent(monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def settings_for(server, known_hosts: Path, **extra):
    base = {"kind": "sftp", "host": server.host, "port": server.port, "username": getpass.getuser(),
            "key_file": str(server.client_key), "known_hosts": str(known_hosts),
            "allow_agent": False, "timeout_s": 10}
    return sftp_settings(OmegaConf.create({**base, **extra}))


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "..\\..\\etc", "x\0y", "/abs"])
def test_unsafe_remote_names_are_rejected_by_name(name):
    with pytest.raises(UnsafeNameError) as err:
        check_remote_name(name, "/srv/CA")
    assert repr(name) in str(err.value) and "/srv/CA" in str(err.value)


def test_plain_names_pass():
    assert check_remote_name("CAWEC2_20251105_225900_000000_detected") == \
        "CAWEC2_20251105_225900_000000_detected"
    assert check_remote_name("a..b.json") == "a..b.json"


@pytest.mark.parametrize("relative", ["../x.mp4", "raw_data/../../x", "/etc/passwd", "raw_data//x",
                                      "raw_data\\..\\..\\x"])
def test_manifest_local_paths_cannot_leave_data_dir(tmp_path, relative):
    with pytest.raises(UnsafeNameError, match="rejected local path"):
        resolve_inside(tmp_path, relative, "manifest.csv:2")


def test_resolve_inside_keeps_plain_paths(tmp_path):
    assert resolve_inside(tmp_path, "raw_data/a.mp4") == tmp_path / "raw_data" / "a.mp4"


def test_local_source_lists_and_reads_relative_to_root(tmp_path):
    make_small_archive(tmp_path)
    source = source_factory(OmegaConf.create({"kind": "local", "root": str(tmp_path)}))()
    stations = [e.name for e in source.listdir("home/contrails/CA") if e.is_dir]
    assert stations == ["CAWEC2", "US0001"]
    folder = "home/extracted_data/CA/CAWEC2/CAWEC2_20251105_225900_000000_detected"
    entry = source.stat(folder + "/flux_time_intervals.json")
    handle = source.open(folder + "/flux_time_intervals.json")
    data = b"".join(handle.chunks(0, 7))
    handle.close()
    assert len(data) == entry.size and data.startswith(b'{"stationID": "CAWEC2"')


def test_local_source_root_must_exist(tmp_path):
    with pytest.raises(SourceError, match="source.root"):
        LocalSource(tmp_path / "nowhere")


def test_unknown_source_kind_names_the_key():
    with pytest.raises(SourceError, match="source.kind"):
        source_factory(OmegaConf.create({"kind": "ftp"}))


def test_sftp_lists_with_known_host_key(sshd_server, tmp_path):
    make_small_archive(sshd_server.root)
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    source = SftpSource(settings_for(sshd_server, known))
    try:
        names = [e.name for e in source.listdir(sshd_server.flux_root + "/US0001")]
        assert names == ["US0001_20251105_225900_000000_detected",
                         "US0001_20251106_225900_000000_detected",
                         "US0001_20251108_225900_000000_detected"]
    finally:
        source.close()


def test_unknown_host_key_is_refused_with_how_to(sshd_server, tmp_path):
    known = tmp_path / "known_hosts"
    with pytest.raises(HostKeyError) as err:
        SftpSource(settings_for(sshd_server, known))
    message = str(err.value)
    assert f"ssh-keyscan -p {sshd_server.port} 127.0.0.1 >> {known}" in message
    assert "source.accept_new_host_key=true" in message
    assert not known.exists()


def test_accept_new_records_key_then_a_changed_key_is_refused(sshd_server, tmp_path):
    known = tmp_path / "known_hosts"
    source = SftpSource(settings_for(sshd_server, known, accept_new_host_key=True))
    source.close()
    assert known.read_text() == sshd_server.known_hosts_line()
    # Second connection: the recorded key is checked (no accept-new needed).
    SftpSource(settings_for(sshd_server, known)).close()
    # A different recorded key (server key "changed") is refused even with accept-new.
    other = (sshd_server.other_key.with_suffix(".pub")).read_text().split()[:2]
    known.write_text(f"[127.0.0.1]:{sshd_server.port} {other[0]} {other[1]}\n")
    with pytest.raises(HostKeyError, match="CHANGED") as err:
        SftpSource(settings_for(sshd_server, known, accept_new_host_key=True))
    assert "ssh-keygen -R" in str(err.value)


def test_wrong_key_gives_a_clear_message_without_secrets(sshd_server, tmp_path, monkeypatch):
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh keys to fall back on
    monkeypatch.setenv("GMN_SSH_KEY_PASSPHRASE", "never-shown-secret")
    with pytest.raises(SourceAuthError) as err:
        SftpSource(settings_for(sshd_server, known, key_file=str(sshd_server.other_key)))
    message = str(err.value)
    assert f"{getpass.getuser()}@127.0.0.1:{sshd_server.port}" in message
    assert str(sshd_server.other_key) in message and "authorized_keys" in message
    assert "never-shown-secret" not in message
    assert sshd_server.other_key.read_text().splitlines()[1] not in message


def test_missing_key_file_is_named(sshd_server, tmp_path):
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    with pytest.raises(SourceError, match="source.key_file .*nope"):
        SftpSource(settings_for(sshd_server, known, key_file=str(tmp_path / "nope")))


def test_encrypted_key_passphrase_comes_from_the_environment(sshd_server, tmp_path, monkeypatch):
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    monkeypatch.setenv("HOME", str(tmp_path))
    locked = tmp_path / "locked_ed25519"
    locked.write_bytes(sshd_server.client_key.read_bytes())
    locked.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", "s3cret-phrase", "-f", str(locked)], check=True)
    monkeypatch.delenv("GMN_SSH_KEY_PASSPHRASE", raising=False)
    with pytest.raises(SourceAuthError, match="GMN_SSH_KEY_PASSPHRASE"):
        SftpSource(settings_for(sshd_server, known, key_file=str(locked)))
    monkeypatch.setenv("GMN_SSH_KEY_PASSPHRASE", "s3cret-phrase")
    source = SftpSource(settings_for(sshd_server, known, key_file=str(locked)))
    try:
        assert source.stat(sshd_server.root.as_posix()).is_dir
    finally:
        source.close()


def test_sftp_streams_a_file_from_any_offset_in_read_request_blocks(sshd_server, tmp_path):
    path = sshd_server.root / "streamed.bin"
    content = os.urandom(3 * READ_REQUEST_SIZE + 1000)
    path.write_bytes(content)
    source = SftpSource(settings_for(sshd_server, sshd_server.write_known_hosts(tmp_path / "kh")))
    try:
        remote = source.open(str(path), read_ahead=True)  # first block read with the fstat
        blocks = list(remote.chunks(0, chunk_size=65536))
        remote.close()
        assert b"".join(blocks) == content
        assert [len(b) for b in blocks] == [READ_REQUEST_SIZE] * 3 + [1000]

        offset = 12_345  # a resumed .part ends anywhere
        remote = source.open(str(path))
        blocks = list(remote.chunks(offset, chunk_size=65536))
        remote.close()
        assert b"".join(blocks) == content[offset:]
        assert {len(b) for b in blocks[:-1]} == {READ_REQUEST_SIZE}
        # The session's receive buffer is ours (channel_buffer.py), unless paramiko lacks the hooks.
        assert isinstance(source._sftp.get_channel().in_buffer, BlockQueuePipe) == HOOKS_PRESENT
    finally:
        source.close()
