"""The receive buffer of our SFTP channels: incoming blocks queued as they are, not copied.

paramiko buffers a channel's incoming data in one ``array``: every block the transport
thread hands over is appended (a copy, and a regrowth), every read copies its bytes out and
then deletes them from the front, which moves everything still buffered. While a large file
streams in, megabytes stay buffered, so each 255 KiB read moved several megabytes: in a
profile of a 300 MB download that was half the client's CPU. :class:`BlockQueueBuffer` keeps
the blocks in a queue with a read position in the first one; a read that takes a whole
block hands that block over without copying, any other read copies only the bytes it
returns. It plugs into paramiko's :class:`~paramiko.buffered_pipe.BufferedPipe` through its
two storage hooks (``_buffer_frombytes``, ``_buffer_tobytes``), so the pipe's locking,
waiting and closing stay paramiko's own.
"""

from __future__ import annotations

from collections import deque

from paramiko.buffered_pipe import BufferedPipe

# The hooks BlockQueuePipe overrides; paramiko has had them since 2.0. Without them (a future
# paramiko) channels keep paramiko's own buffer: slower, equally correct.
HOOKS_PRESENT = all(hasattr(BufferedPipe, name) for name in ("_buffer_frombytes",
                                                             "_buffer_tobytes"))


class BlockQueueBuffer:
    """A FIFO byte buffer holding the blocks it was given.

    Supports what :class:`BufferedPipe` does to its buffer: ``len()``, appending a block,
    copying out the first ``n`` bytes (:meth:`peek`), and dropping them (``del buf[:n]``,
    ``del buf[:]``).
    """

    __slots__ = ("_blocks", "_len", "_start")

    def __init__(self) -> None:
        self._blocks: deque[bytes] = deque()
        self._start = 0  # bytes of the first block already read
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def append(self, data: bytes) -> None:
        if data:
            self._blocks.append(data)
            self._len += len(data)

    def peek(self, limit: int | None = None) -> bytes:
        """The first ``limit`` bytes (all with None), without removing them."""
        n = self._len if limit is None else min(max(limit, 0), self._len)
        if n == 0:
            return b""
        first = self._blocks[0]
        if self._start == 0 and n == len(first):
            return first  # the common case while streaming: one whole block
        if len(first) - self._start >= n:
            return bytes(memoryview(first)[self._start:self._start + n])
        parts, got = [], 0
        for i, block in enumerate(self._blocks):
            view = memoryview(block)[self._start if i == 0 else 0:]
            take = min(len(view), n - got)
            parts.append(view[:take])
            got += take
            if got == n:
                break
        return b"".join(parts)

    def __delitem__(self, key: slice) -> None:
        if not isinstance(key, slice) or key.start not in (None, 0) or key.step not in (None, 1):
            raise TypeError(f"BlockQueueBuffer drops bytes from the front only, not {key!r}")
        n = self._len if key.stop is None else min(max(key.stop, 0), self._len)
        self._len -= n
        while n:
            available = len(self._blocks[0]) - self._start
            if available > n:
                self._start += n
                return
            self._blocks.popleft()
            self._start = 0
            n -= available


class BlockQueuePipe(BufferedPipe):
    """paramiko's channel pipe with :class:`BlockQueueBuffer` as its storage."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = BlockQueueBuffer()

    def _buffer_frombytes(self, data) -> None:
        # The transport hands over a fresh bytes object per packet: kept as it is.
        self._buffer.append(data if type(data) is bytes else bytes(data))

    def _buffer_tobytes(self, limit: int | None = None) -> bytes:
        return self._buffer.peek(limit)


def use_block_queue(channel) -> None:
    """Give a paramiko channel that has not received data yet a :class:`BlockQueuePipe`."""
    if HOOKS_PRESENT:
        channel.in_buffer = BlockQueuePipe()
