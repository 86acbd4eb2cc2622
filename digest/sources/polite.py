"""Politeness and patience for live sources: how often to retry (`RetryPolicy`) and how
far apart to send requests to one host (`HostGate`; arXiv asks for one every 3 s).

Time is injected (`clock`, `sleep`), so tests never wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], None]

#: arXiv's terms: "no more than one request every three seconds".
ARXIV_MIN_INTERVAL = 3.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry 429, 5xx and network failures."""

    attempts: int = 4  #: requests in all, the first included
    backoff: float = 1.0  #: the first wait, doubled for each retry ...
    max_backoff: float = 30.0  #: ... up to this
    #: A Retry-After longer than this is not waited for: the fetch fails, to be tried later.
    max_retry_after: float = 120.0

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1-based)."""
        return min(self.max_backoff, self.backoff * 2 ** (attempt - 1))


def default_interval(host: str) -> float:
    """Seconds between two requests to `host`: 3 for arXiv hosts, none for others."""
    host = host.lower().rstrip(".")
    return ARXIV_MIN_INTERVAL if host == "arxiv.org" or host.endswith(".arxiv.org") else 0.0


class HostGate:
    """Spaces the requests to each host: a request waits until the host's gap has passed.

    Thread-safe: each caller reserves the next free slot under the lock and sleeps
    outside it, so requests to other hosts are not held up.
    """

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        interval: Callable[[str], float] = default_interval,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._interval = interval
        self._next_free: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, host: str) -> float:
        """Block until a request to `host` may start; returns the seconds waited."""
        gap = self._interval(host)
        if gap <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            start = max(now, self._next_free.get(host, now))
            self._next_free[host] = start + gap
        if start > now:
            self._sleep(start - now)
        return start - now
