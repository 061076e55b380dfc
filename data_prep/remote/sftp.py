"""The archive on an SFTP server: paramiko, tuned for throughput, with checked host keys.

:class:`SftpSource` is one SSH connection with an SFTP session on it. Keys come from
``source.key_file``, ssh-agent or ``~/.ssh``; a passphrase only from the environment; host
keys are checked by :mod:`data_prep.remote.host_keys`. Throughput comes from a large channel
window, AES-GCM first, read requests of OpenSSH's largest reply, pipelined reads, a receive
buffer that queues blocks (:mod:`data_prep.remote.channel_buffer`), and small files read in
batches with every request in flight (:meth:`SftpSource.read_small`). Those use paramiko's
request-numbering internals (``_async_request``/``_read_response``), stable since paramiko 1.x;
the SFTP tests run them against OpenSSH's sftp-server.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat as stat_mod
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
from omegaconf import DictConfig
from paramiko.sftp import (
    CMD_ATTRS,
    CMD_CLOSE,
    CMD_DATA,
    CMD_FSTAT,
    CMD_HANDLE,
    CMD_OPEN,
    CMD_READ,
    CMD_STATUS,
    SFTP_EOF,
    SFTP_FLAG_READ,
    int64,
)

from data_prep.remote.channel_buffer import use_block_queue
from data_prep.remote.host_keys import HostKeyError, changed_host_key_message, configure_host_keys
from data_prep.remote.source import (
    READ_REQUEST_SIZE,
    RemoteEntry,
    SourceError,
    SourceUnreachable,
    WholeFile,
)

log = logging.getLogger(__name__)

PASSPHRASE_ENV = "GMN_SSH_KEY_PASSPHRASE"
# paramiko's fastest cipher on x86 (AES-GCM through OpenSSL), then its usual order.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr",
                     "aes192-ctr", "aes256-ctr")
WINDOW_SIZE = 2**27  # 128 MiB: a loopback or long fat pipe never waits for window adjusts
MAX_PACKET_SIZE = 2**18  # channel packets up to 256 KiB: fewer packets for paramiko to handle
PREFETCH_REQUESTS = 64  # outstanding reads per file (16 MiB in flight)


class SourceAuthError(SourceError):
    """The server refused our credentials."""


@dataclass(frozen=True)
class SftpSettings:
    host: str
    port: int = 22
    username: str | None = None
    key_file: Path | None = None
    known_hosts: Path | None = None
    allow_agent: bool = True
    accept_new_host_key: bool = False
    timeout_s: float = 30.0
    passphrase_env: str = PASSPHRASE_ENV

    @property
    def target(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{user}{self.host}:{self.port}"


class _Replies:
    """Receives paramiko's replies to requests sent ahead, by request number."""

    def __init__(self) -> None:
        self.replies: dict[int, tuple[int, paramiko.Message]] = {}

    def _async_response(self, t: int, msg: paramiko.Message, num: int) -> None:
        self.replies[num] = (t, msg)


class SftpFile:
    """An open remote file with its size and mtime (fstat when it was opened).

    With ``read_ahead`` the fstat and the first read (from offset 0) go to the server
    together, one round trip for both: a small file then costs two round trips (open, then
    fstat + read) instead of four, as the close is not waited for either. This uses
    paramiko's request-numbering internals (``_async_request``/``_read_response``), stable
    since paramiko 1.x; the SFTP tests run it against OpenSSH's sftp-server.
    """

    def __init__(self, handle: paramiko.SFTPFile, read_ahead: bool = False):
        self._fh = handle
        self._head = b""  # bytes from offset 0 read together with the fstat
        if read_ahead:
            st = self._fstat_and_read_head()
        else:
            st = handle.stat()
        self.size, self.mtime = int(st.st_size or 0), int(st.st_mtime or 0)

    def _fstat_and_read_head(self) -> paramiko.SFTPAttributes:
        sftp, handle = self._fh.sftp, self._fh.handle
        replies = _Replies()
        stat_num = sftp._async_request(replies, CMD_FSTAT, handle)
        read_num = sftp._async_request(replies, CMD_READ, handle, int64(0),
                                     READ_REQUEST_SIZE)
        try:
            t, msg = sftp._read_response(read_num)  # the fstat reply, if first, goes to replies
            if t != CMD_DATA:
                raise paramiko.SFTPError(f"expected data, got SFTP reply type {t}")
            self._head = msg.get_string()
        except EOFError:  # an empty file
            self._head = b""
        t, msg = replies.replies.pop(stat_num, None) or sftp._read_response(stat_num)
        if t == CMD_STATUS:
            sftp._convert_status(msg)
        if t != CMD_ATTRS:
            raise paramiko.SFTPError(f"expected file attributes, got SFTP reply type {t}")
        return paramiko.SFTPAttributes._from_msg(msg)

    def chunks(self, offset: int, chunk_size: int, pipelined: bool = True) -> Iterator[bytes]:
        remaining = self.size - offset
        if offset == 0 and self._head:
            head, self._head = self._head[:remaining], b""
            remaining -= len(head)
            offset = len(head)
            yield head
        self._fh.seek(offset)
        self._fh.MAX_REQUEST_SIZE = READ_REQUEST_SIZE
        if pipelined and remaining > READ_REQUEST_SIZE:
            # Queue read requests for the rest of the file so the server streams it back-to-back
            # (a small file is one plain read: a prefetch thread would cost more).
            self._fh.prefetch(self.size, PREFETCH_REQUESTS)
            # Read in the requests' own blocks: each reply is then handed on as it came, where
            # any other size makes paramiko cut and join replies (copies of every byte).
            chunk_size = READ_REQUEST_SIZE
        # Stop at the size fstat gave instead of asking past the end: one round trip less per file.
        while remaining > 0 and (data := self._fh.read(min(chunk_size, remaining))):
            remaining -= len(data)
            yield data
        if remaining > 0:
            # paramiko reports a channel closed mid-file as end of file: the size fstat gave is
            # the truth, so a short read is a dropped connection, retried and resumed.
            raise EOFError(f"the transfer ended {remaining} bytes before the end of the file "
                           f"(connection dropped?)")

    def close(self) -> None:
        # The reply to the close is not waited for (paramiko's own way of closing a file it
        # garbage-collects): it arrives before the reply to this connection's next request.
        self._fh._close(async_=True)


def _transport_factory(sock, **kwargs) -> paramiko.Transport:
    transport = paramiko.Transport(sock, default_window_size=WINDOW_SIZE,
                                   default_max_packet_size=MAX_PACKET_SIZE, **kwargs)
    options = transport.get_security_options()
    offered = [c for c in PREFERRED_CIPHERS if c in options.ciphers]
    options.ciphers = tuple(offered + [c for c in options.ciphers if c not in offered])
    return transport


class SftpSource:
    """One SSH connection with an SFTP session on it."""

    def __init__(self, settings: SftpSettings, host_key_lock: threading.Lock | None = None):
        paramiko_log = logging.getLogger("paramiko")
        if paramiko_log.level == logging.NOTSET:
            # paramiko logs every SFTP session opened at INFO: noise with one per worker.
            paramiko_log.setLevel(logging.WARNING)
        self.settings = settings
        self.description = f"sftp://{settings.target}"
        self._client = paramiko.SSHClient()
        configure_host_keys(self._client, settings.host, settings.port, settings.known_hosts,
                            settings.accept_new_host_key, host_key_lock or threading.Lock())
        self._connect()
        # paramiko's SFTPClient.from_transport, with our receive buffer put in before the
        # server can send anything (channel_buffer.py says why).
        channel = self._client.get_transport().open_session(window_size=WINDOW_SIZE,
                                                            max_packet_size=MAX_PACKET_SIZE)
        try:
            use_block_queue(channel)
            channel.invoke_subsystem("sftp")
            self._sftp = paramiko.SFTPClient(channel)
        except BaseException:
            self._client.close()
            raise

    def _connect(self) -> None:
        s = self.settings
        key_file = None
        if s.key_file is not None:
            key_file = s.key_file.expanduser()
            if not key_file.is_file():
                raise SourceError(f"source.key_file {str(key_file)!r} does not exist")
        passphrase = os.environ.get(s.passphrase_env) or None
        key_desc = f"key file {key_file}" if key_file else "no key file"
        try:
            self._client.connect(
                s.host, port=s.port, username=s.username,
                key_filename=str(key_file) if key_file else None, passphrase=passphrase,
                allow_agent=s.allow_agent, look_for_keys=True, timeout=s.timeout_s,
                banner_timeout=s.timeout_s, auth_timeout=s.timeout_s,
                transport_factory=_transport_factory)
        except paramiko.BadHostKeyException as exc:
            self._client.close()
            raise HostKeyError(changed_host_key_message(s.host, s.port, exc, s.known_hosts)) from None
        except paramiko.PasswordRequiredException:
            self._client.close()
            raise SourceAuthError(
                f"{key_desc} is encrypted: put its passphrase in the environment variable "
                f"{s.passphrase_env} (it is never read from config files)") from None
        except paramiko.AuthenticationException:
            self._client.close()
            agent = "ssh-agent, " if s.allow_agent else ""
            raise SourceAuthError(
                f"authentication failed for {s.target} with {key_desc} "
                f"(also tried {agent}~/.ssh keys): check source.username and source.key_file, "
                f"and that the public key is in the server's authorized_keys") from None
        except HostKeyError:
            self._client.close()
            raise
        except (paramiko.SSHException, OSError) as exc:
            self._client.close()
            if isinstance(exc, paramiko.SSHException) and "not a valid" in str(exc):
                raise SourceAuthError(f"{key_desc} cannot be read as an SSH private key") from None
            raise SourceUnreachable(f"cannot connect to {s.target}: {exc}") from exc

    def listdir(self, path: str) -> list[RemoteEntry]:
        entries = [
            RemoteEntry(a.filename, int(a.st_size or 0), int(a.st_mtime or 0),
                        stat_mod.S_ISDIR(a.st_mode or 0))
            for a in self._sftp.listdir_attr(path)
        ]
        return sorted(entries, key=lambda e: e.name)

    def stat(self, path: str) -> RemoteEntry:
        a = self._sftp.stat(path)
        return RemoteEntry(posixpath.basename(path), int(a.st_size or 0), int(a.st_mtime or 0),
                           stat_mod.S_ISDIR(a.st_mode or 0))

    def open(self, path: str, read_ahead: bool = False) -> SftpFile:
        return SftpFile(self._sftp.open(path, "rb"), read_ahead)

    def read_small(self, paths: list[str]) -> list[WholeFile | None]:
        """Read small files with all their requests in flight at once: every open, then every
        fstat + read + close, each round answered by the server back-to-back. Two round trips
        for the whole batch instead of two to four per file; a file not read whole this way
        (an error reply, or larger than one read) comes back as None, for the caller to fetch
        the usual way, where errors are retried and reported."""
        sftp = self._sftp
        replies = _Replies()
        opens = [sftp._async_request(replies, CMD_OPEN, sftp._adjust_cwd(path), SFTP_FLAG_READ,
                                     paramiko.SFTPAttributes()) for path in paths]
        self._wait(replies, opens)
        reads: dict[int, tuple[int, int]] = {}
        for i, num in enumerate(opens):
            t, msg = replies.replies.pop(num)
            if t != CMD_HANDLE:
                continue
            handle = msg.get_binary()
            reads[i] = (sftp._async_request(replies, CMD_FSTAT, handle),
                        sftp._async_request(replies, CMD_READ, handle, int64(0), READ_REQUEST_SIZE))
            sftp._async_request(type(None), CMD_CLOSE, handle)  # its reply is not waited for
        self._wait(replies, [num for pair in reads.values() for num in pair])
        results: list[WholeFile | None] = [None] * len(paths)
        for i, (stat_num, read_num) in reads.items():
            (stat_t, stat_msg), (read_t, read_msg) = (replies.replies.pop(stat_num),
                                                      replies.replies.pop(read_num))
            if stat_t != CMD_ATTRS:
                continue
            attrs = paramiko.SFTPAttributes._from_msg(stat_msg)
            if read_t == CMD_DATA:
                data = read_msg.get_string()
            elif read_t == CMD_STATUS and read_msg.get_int() == SFTP_EOF:
                data = b""
            else:
                continue
            if len(data) == int(attrs.st_size or 0):
                results[i] = WholeFile(len(data), int(attrs.st_mtime or 0), data)
        return results

    def _wait(self, replies: _Replies, nums: list[int]) -> None:
        pending = set(nums)
        while not pending <= replies.replies.keys():
            self._sftp._read_response()  # one reply, handed to whoever asked for it

    def close(self) -> None:
        self._client.close()


def sftp_settings(cfg: DictConfig) -> SftpSettings:
    if not cfg.get("host"):
        raise SourceError("source.host is not set: give the SFTP server, e.g. source.host=gmn.uwo.ca")
    return SftpSettings(
        host=str(cfg.host),
        port=int(cfg.get("port") or 22),
        username=cfg.get("username") or None,
        key_file=Path(str(cfg.key_file)) if cfg.get("key_file") else None,
        known_hosts=Path(str(cfg.known_hosts)).expanduser() if cfg.get("known_hosts") else None,
        allow_agent=bool(cfg.get("allow_agent", True)),
        accept_new_host_key=bool(cfg.get("accept_new_host_key", False)),
        timeout_s=float(cfg.get("timeout_s") or 30),
        passphrase_env=str(cfg.get("passphrase_env") or PASSPHRASE_ENV),
    )
