"""The work queue's memory bounds: what it keeps after a job finishes, and for how long."""

import time

import pytest

from enhancement.pipeline import Processed
from enhancement.result import ClipResult, Outcome
from worker.jobs import QueueFull, Traced, WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def output_of(size: int):
    def process(data: bytes, clip_id: str, source: str) -> Traced:
        return Traced(Processed(ClipResult(clip_id, outcome=Outcome.SUCCESS), encoded=b"x" * size), trace_id="t")

    return process


def finished(queue: WorkQueue, data: bytes = b"clip", *, retain: bool = True):
    job = queue.submit(data, retain=retain)
    assert job.done.wait(5)
    return job


def make_queue(clock, **limits) -> WorkQueue:
    settings = {"retention_s": 900.0, "max_retained_jobs": 1024, "max_retained_bytes": 10**9, **limits}
    return WorkQueue(output_of(1000), capacity=4, workers=1, clock=clock, **settings)


def test_a_synchronous_request_leaves_nothing_behind_once_answered():
    queue = make_queue(Clock())
    job = finished(queue, retain=False)
    assert job.answer.processed.encoded and queue.get(job.id) is None and queue.retained == 0


def test_a_finished_job_drops_its_upload_and_keeps_only_the_encoded_answer():
    job = finished(make_queue(Clock()))
    assert job.data is None and len(job.answer.processed.encoded) == 1000 and job.answer.trace_id == "t"


def test_finished_jobs_are_dropped_after_the_retention_time_without_any_new_request():
    clock = Clock()
    queue = make_queue(clock, retention_s=60.0)
    job = finished(queue)
    clock.now = 59.0
    queue.sweep()
    assert queue.retained == 1
    clock.now = 61.0
    queue.sweep()
    assert queue.retained == 0 and queue.get(job.id) is None


def test_the_janitor_thread_drops_expired_jobs_on_its_own():
    queue = WorkQueue(output_of(10), capacity=2, workers=1, retention_s=0.2, sweep_interval_s=0.05)
    finished(queue)
    assert queue.retained == 1
    deadline = time.monotonic() + 5
    while queue.retained and time.monotonic() < deadline:
        time.sleep(0.05)
    assert queue.retained == 0, "an expired job outlived its retention with no request arriving"
    queue.drain(1)


def test_the_oldest_finished_jobs_go_first_when_the_count_limit_is_reached():
    clock = Clock()
    queue = make_queue(clock, max_retained_jobs=3)
    jobs = []
    for second in range(5):
        clock.now = float(second)
        jobs.append(finished(queue))
    assert [queue.get(j.id) is not None for j in jobs] == [False, False, True, True, True]
    assert queue.retained == 3


def test_the_byte_budget_holds_at_every_moment_oldest_dropped_first():
    clock = Clock()
    queue = make_queue(clock, max_retained_bytes=2500)  # two and a half outputs of 1000 bytes
    jobs = []
    for second in range(4):
        clock.now = float(second)
        jobs.append(finished(queue))
        assert queue.retained_bytes <= 2500
    assert [queue.get(j.id) is not None for j in jobs] == [False, False, True, True]


def test_a_full_queue_and_a_draining_queue_refuse_differently():
    def slow(data, clip_id, source):
        time.sleep(0.3)
        return output_of(1)(data, clip_id, source)

    queue = WorkQueue(slow, capacity=1, workers=1, retention_s=60)
    queue.submit(b"a")  # taken by the worker thread
    time.sleep(0.05)
    queue.submit(b"b")  # waits in the one slot
    with pytest.raises(QueueFull) as full:
        queue.submit(b"c")
    assert not full.value.draining
    assert queue.drain(5)
    with pytest.raises(QueueFull) as draining:
        queue.submit(b"d")
    assert draining.value.draining


def test_limits_that_are_not_positive_are_refused():
    with pytest.raises(ValueError, match="retention limits"):
        WorkQueue(output_of(1), capacity=1, workers=1, retention_s=1, max_retained_jobs=0)
