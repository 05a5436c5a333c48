import random
import threading

import pytest

from enhancement.errors import ModelError, StageTimeout, TransientModelError
from enhancement.resilience import BreakerState, CircuitBreaker, Deadline, retry


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def breaker():
    clock = FakeClock()
    transitions = []
    b = CircuitBreaker(
        "model",
        failure_threshold=5,
        recovery_timeout_s=300,
        half_open_successes=3,
        clock=clock,
        on_transition=lambda name, state: transitions.append(state),
    )
    return b, clock, transitions


def test_opens_after_threshold_consecutive_failures(breaker):
    b, _, transitions = breaker
    for _ in range(4):
        b.record_failure()
    assert b.state is BreakerState.CLOSED and b.allow()
    b.record_failure()
    assert b.state is BreakerState.OPEN and not b.allow()
    assert transitions == [BreakerState.OPEN]


def test_a_success_resets_the_failure_count(breaker):
    b, _, _ = breaker
    for _ in range(4):
        b.record_failure()
    b.record_success()
    for _ in range(4):
        b.record_failure()
    assert b.state is BreakerState.CLOSED


def test_stays_open_until_the_recovery_timeout_then_half_opens(breaker):
    b, clock, transitions = breaker
    for _ in range(5):
        b.record_failure()
    clock.now += 299.9
    assert not b.allow()
    clock.now += 0.1
    assert b.allow() and b.state is BreakerState.HALF_OPEN
    assert transitions == [BreakerState.OPEN, BreakerState.HALF_OPEN]


def test_half_open_closes_after_enough_successes(breaker):
    b, clock, transitions = breaker
    for _ in range(5):
        b.record_failure()
    clock.now += 300
    b.allow()
    b.record_success()
    b.record_success()
    assert b.state is BreakerState.HALF_OPEN
    b.record_success()
    assert b.state is BreakerState.CLOSED
    assert transitions == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_half_open_reopens_on_one_failure_and_restarts_the_timeout(breaker):
    b, clock, transitions = breaker
    for _ in range(5):
        b.record_failure()
    clock.now += 300
    b.allow()
    b.record_success()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    clock.now += 299
    assert not b.allow()
    clock.now += 1
    assert b.allow()
    assert transitions == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.OPEN, BreakerState.HALF_OPEN]


def test_invalid_breaker_settings_are_refused():
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_threshold=0)


def test_retry_retries_transient_errors_with_growing_jittered_delays():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TransientModelError("out of memory")
        return "ok"

    assert retry(flaky, attempts=3, base_delay_s=0.1, max_delay_s=10, sleep=sleeps.append, rng=random.Random(1)) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.1 and 0 <= sleeps[1] <= 0.2


def test_retry_gives_up_after_its_attempts():
    sleeps = []
    with pytest.raises(TransientModelError):
        retry(lambda: (_ for _ in ()).throw(TransientModelError("oom")), attempts=2, base_delay_s=0, max_delay_s=0, sleep=sleeps.append)
    assert len(sleeps) == 1


def test_retry_does_not_retry_permanent_errors():
    calls = []

    def broken():
        calls.append(1)
        raise ModelError("shape mismatch")

    with pytest.raises(ModelError):
        retry(broken, attempts=5, base_delay_s=0, max_delay_s=0, sleep=lambda s: None)
    assert len(calls) == 1


def test_deadline_raises_stage_timeout_on_a_hang():
    release = threading.Event()
    deadline = Deadline(0.05)
    try:
        with pytest.raises(StageTimeout):
            deadline.run(lambda: release.wait(5))
    finally:
        release.set()
        deadline.close()


def test_deadline_returns_results_and_propagates_errors():
    deadline = Deadline(5)
    try:
        assert deadline.run(lambda: 42) == 42
        with pytest.raises(ModelError):
            deadline.run(lambda: (_ for _ in ()).throw(ModelError("boom")))
    finally:
        deadline.close()
