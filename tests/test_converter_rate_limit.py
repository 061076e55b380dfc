"""Request pacing, backoff and Retry-After parsing (pure; a fake clock where time matters)."""

from __future__ import annotations

import itertools
import random
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from data_prep.converters.rate_limit import (
    RequestPacer,
    backoff_delay,
    is_retryable_status,
    retry_after_seconds,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacer_spaces_requests_evenly_at_the_rpm():
    clock = FakeClock()
    pacer = RequestPacer(rpm=30, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(5):
        assert pacer.acquire()
        sent.append(clock.now)
    assert [b - a for a, b in itertools.pairwise(sent)] == [2.0, 2.0, 2.0, 2.0]
    assert pacer.granted == 5


def test_pacer_slots_are_shared_by_threads_and_never_collide():
    clock = FakeClock()
    pacer = RequestPacer(rpm=60, clock=clock)  # reserve() only: no real sleeping
    waits: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(10):
            wait = pacer.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [float(i) for i in range(40)]  # one slot per second, no two alike


def test_pacer_disabled_and_stop_event():
    assert RequestPacer(rpm=None).reserve() == 0.0
    with pytest.raises(ValueError, match="converter.rpm"):
        RequestPacer(rpm=-1)
    pacer = RequestPacer(rpm=1)  # second slot is a minute away
    stop = threading.Event()
    assert pacer.acquire(stop)
    stop.set()
    assert pacer.acquire(stop) is False  # returns at once instead of waiting a minute


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(0)
    for retry in range(1, 8):
        ceiling = min(8.0, 0.5 * 2 ** (retry - 1))
        delays = [backoff_delay(retry, 0.5, 8.0, rng) for _ in range(200)]
        assert min(delays) >= ceiling / 10 and max(delays) <= ceiling
        assert len(set(delays)) > 100  # jittered, not a fixed schedule


def test_retry_after_from_header_http_date_and_retry_info():
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    when = datetime(2026, 1, 1, 12, 0, 30, tzinfo=timezone.utc)
    now = (when - timedelta(seconds=30)).timestamp()
    assert retry_after_seconds({"Retry-After": format_datetime(when, usegmt=True)}, now=now) \
        == pytest.approx(30.0)
    body = {"error": {"code": 429, "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}]}}
    assert retry_after_seconds({}, body) == 13.0
    assert retry_after_seconds(None, {"error": {"code": 503}}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None


@pytest.mark.parametrize("code,retry", [(408, True), (429, True), (500, True), (503, True),
                                        (504, True), (400, False), (403, False), (404, False),
                                        (None, False)])
def test_retryable_status(code, retry):
    assert is_retryable_status(code) is retry
