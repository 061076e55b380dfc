"""The SFTP channel's receive buffer: byte order and counts across block boundaries, the
whole-block hand-over without a copy, and paramiko's pipe semantics (waiting, timeouts,
closing) kept on top of it."""

from __future__ import annotations

import random
import threading

import pytest
from paramiko.buffered_pipe import PipeTimeout

from data_prep.remote.channel_buffer import HOOKS_PRESENT, BlockQueueBuffer, BlockQueuePipe


def filled(*blocks: bytes) -> BlockQueueBuffer:
    buf = BlockQueueBuffer()
    for block in blocks:
        buf.append(block)
    return buf


def test_reads_across_block_boundaries_keep_order_and_length():
    buf = filled(b"abcd", b"", b"ef", b"ghijk")
    assert len(buf) == 11
    assert buf.peek(3) == b"abc"
    del buf[:3]
    assert (len(buf), buf.peek(4)) == (8, b"defg")  # the rest of one block, then the next two
    del buf[:4]
    assert buf.peek(100) == b"hijk"
    del buf[:100]
    assert (len(buf), buf.peek()) == (0, b"")


def test_a_whole_block_is_handed_over_without_a_copy():
    block = bytes(range(256)) * 4
    buf = filled(block, b"next")
    assert buf.peek(len(block)) is block
    del buf[:len(block)]
    assert buf.peek() == b"next"


def test_dropping_everything_and_unsupported_deletes():
    buf = filled(b"abc", b"def")
    with pytest.raises(TypeError, match="front only"):
        del buf[1:2]
    del buf[:]
    assert len(buf) == 0 and buf.peek() == b""
    buf.append(b"xy")
    assert buf.peek() == b"xy"  # usable again after being emptied


def test_random_reads_match_a_plain_bytearray():
    rng = random.Random(7)
    buf, model = BlockQueueBuffer(), bytearray()
    for _ in range(2000):
        if rng.random() < 0.5:
            block = rng.randbytes(rng.randrange(0, 50))
            buf.append(block)
            model += block
        else:
            n = rng.randrange(0, 80)
            assert buf.peek(n) == bytes(model[:n])
            del buf[:n]
            del model[:n]
        assert len(buf) == len(model)


@pytest.mark.skipif(not HOOKS_PRESENT, reason="this paramiko has no BufferedPipe storage hooks")
def test_pipe_keeps_paramiko_semantics():
    pipe = BlockQueuePipe()
    with pytest.raises(PipeTimeout):
        pipe.read(10, timeout=0.05)
    feeder = threading.Timer(0.05, lambda: [pipe.feed(b"hello "), pipe.feed(b"world")])
    feeder.start()
    assert pipe.read(3, timeout=5) == b"hel"  # waits for the feeder
    feeder.join()
    assert len(pipe) == 8
    assert pipe.read(100) == b"lo world"
    pipe.feed(b"tail")
    pipe.close()
    assert pipe.read(100) == b"tail"  # buffered bytes survive the close
    assert pipe.read(100) == b""  # then end of file
