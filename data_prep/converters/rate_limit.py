"""Client-side pacing and retry timing for remote converters.

:class:`RequestPacer` spaces requests evenly under a requests-per-minute limit and is shared by
every worker thread, so the limit holds for all requests together (image, check and
correction requests alike). :func:`backoff_delay` is exponential backoff with full jitter;
:func:`retry_after_seconds` reads the server's own wait hint (``Retry-After`` header or a
``google.rpc.RetryInfo`` detail), which wins over the computed backoff when present.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

RETRYABLE_HTTP_CODES = frozenset({408, 429, 500, 502, 503, 504})


def is_retryable_status(code: int | None) -> bool:
    return code is not None and (code in RETRYABLE_HTTP_CODES or 500 <= code < 600)


class RequestPacer:
    """Even spacing of requests: at most ``rpm`` per minute, with no bursts above it.

    Each :meth:`acquire` reserves the next free slot (``60 / rpm`` seconds after the previous
    one) under a lock and sleeps until it; threads therefore queue fairly, and the number of
    requests in any minute never exceeds ``rpm``. ``rpm`` of None or 0 disables pacing.
    """

    def __init__(self, rpm: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Any] | None = None):
        if rpm is not None and rpm < 0:
            raise ValueError(f"converter.rpm must be positive or null, got {rpm}")
        self.interval = 60.0 / rpm if rpm else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()
        self.granted = 0

    def reserve(self) -> float:
        """Reserve a slot and return how long the caller must wait for it (seconds)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
            self.granted += 1
            return slot - now

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Wait for a slot; False if ``stop`` was set while waiting (the slot is then unused)."""
        wait = self.reserve()
        if wait <= 0:
            return not (stop is not None and stop.is_set())
        if self._sleep is not None:
            self._sleep(wait)
            return True
        if stop is None:
            time.sleep(wait)
            return True
        return not stop.wait(wait)


def backoff_delay(retry: int, initial_s: float, max_s: float,
                  rng: random.Random | None = None) -> float:
    """Delay before retry number ``retry`` (1-based): full jitter over ``initial * 2**(retry-1)``,
    capped at ``max_s``; never below a tenth of the un-jittered value, so retries cannot
    hammer the server back-to-back."""
    rng = rng or random.Random()
    ceiling = min(max_s, initial_s * (2 ** (retry - 1)))
    return max(ceiling / 10.0, rng.uniform(0.0, ceiling))


def _duration_seconds(text: str) -> float | None:
    # google.protobuf.Duration in JSON: "13s", "0.5s"
    text = text.strip()
    if text.endswith("s"):
        try:
            return float(text[:-1])
        except ValueError:
            return None
    return None


def retry_after_seconds(headers: Mapping[str, str] | None, details: Any = None,
                        now: float | None = None) -> float | None:
    """The server's requested wait, from ``Retry-After`` (seconds or HTTP date) or from a
    ``RetryInfo.retryDelay`` in the error body; None when the server gave none."""
    if headers is not None:
        value = headers.get("retry-after") or headers.get("Retry-After")
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                try:
                    when = parsedate_to_datetime(value).timestamp()
                except (TypeError, ValueError):
                    when = None
                if when is not None:
                    return max(0.0, when - (now if now is not None else time.time()))
    error = details.get("error", details) if isinstance(details, dict) else None
    if isinstance(error, dict):
        for detail in error.get("details") or []:
            if isinstance(detail, dict) and "retryDelay" in detail:
                seconds = _duration_seconds(str(detail["retryDelay"]))
                if seconds is not None:
                    return max(0.0, seconds)
    return None
