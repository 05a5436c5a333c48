"""Circuit breaker, retry with backoff, and a stage deadline."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from enum import Enum
from typing import TypeVar

from enhancement.errors import StageTimeout, TransientModelError

T = TypeVar("T")


class BreakerState(str, Enum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


# Gauge encoding shared with the exporter and the dashboards.
BREAKER_STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class CircuitBreaker:
    """Stops calling a failing dependency, then probes it before trusting it again.

    closed --(failure_threshold consecutive failures)--> open
    open --(recovery_timeout_s elapsed, on the next request)--> half_open
    half_open --(half_open_successes successes)--> closed
    half_open --(any failure)--> open
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        recovery_timeout_s: float = 300.0,
        half_open_successes: int = 3,
        clock: Callable[[], float] = time.monotonic,
        on_transition: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        if failure_threshold < 1 or half_open_successes < 1 or recovery_timeout_s <= 0:
            raise ValueError("failure_threshold and half_open_successes must be >= 1, recovery_timeout_s > 0")
        self.name = name
        self.failure_threshold = failure_threshold
        self.recovery_timeout_s = recovery_timeout_s
        self.half_open_successes = half_open_successes
        self._clock = clock
        self._on_transition = on_transition
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._successes = 0
        self._opened_at = 0.0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    def _move(self, to: BreakerState) -> None:
        self._state = to
        self._failures = 0
        self._successes = 0
        if to is BreakerState.OPEN:
            self._opened_at = self._clock()
        if self._on_transition is not None:
            self._on_transition(self.name, to)

    def allow(self) -> bool:
        """Whether a call may go through now."""
        with self._lock:
            if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.recovery_timeout_s:
                self._move(BreakerState.HALF_OPEN)
            return self._state is not BreakerState.OPEN

    def record_success(self) -> None:
        with self._lock:
            if self._state is BreakerState.HALF_OPEN:
                self._successes += 1
                if self._successes >= self.half_open_successes:
                    self._move(BreakerState.CLOSED)
            else:
                self._failures = 0

    def record_failure(self) -> None:
        with self._lock:
            if self._state is BreakerState.HALF_OPEN:
                self._move(BreakerState.OPEN)
            elif self._state is BreakerState.CLOSED:
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._move(BreakerState.OPEN)


def retry(
    call: Callable[[], T],
    *,
    attempts: int,
    base_delay_s: float,
    max_delay_s: float,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Call, retrying only TransientModelError, with full-jitter exponential backoff."""
    rng = rng or random.Random()
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except TransientModelError:
            if attempt == attempts:
                raise
            sleep(rng.uniform(0, min(max_delay_s, base_delay_s * 2 ** (attempt - 1))))
    raise AssertionError("unreachable: the loop returns or raises")


class Deadline:
    """Runs calls on worker threads and stops waiting after ``timeout_s``.

    Python cannot kill a thread, so a call that hangs keeps its thread; the
    pool is bounded, and once every thread is stuck further calls time out
    too, which is what opens the breaker.
    """

    def __init__(self, timeout_s: float, workers: int = 1, name: str = "deadline") -> None:
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    def run(self, call: Callable[[], T]) -> T:
        future = self._pool.submit(call)
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout as exc:
            future.cancel()
            raise StageTimeout(f"no result within {self.timeout_s:g} s") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
