"""The work queue's memory bounds: what it keeps after a job finishes, and for how long."""

import numpy as np
import pytest

from enhancement.pipeline import Processed
from enhancement.result import ClipResult, Outcome
from exporter.jobs import WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def output_of(size: int):
    def process(data: bytes, clip_id: str, source: str) -> Processed:
        return Processed(ClipResult(clip_id, outcome=Outcome.SUCCESS), audio=np.zeros(size // 2, np.float32), encoded=b"x" * size)
    return process


def finished(queue: WorkQueue, data: bytes = b"clip", *, retain: bool = True):
    job = queue.submit(data, retain=retain)
    assert job.done.wait(5)
    return job


def make_queue(clock: Clock, **limits) -> WorkQueue:
    settings = {"retention_s": 900.0, "max_retained_jobs": 1024, "max_retained_bytes": 10**9, **limits}
    return WorkQueue(output_of(1000), capacity=4, workers=1, clock=clock, **settings)


def test_a_synchronous_request_leaves_nothing_behind_once_answered():
    queue = make_queue(Clock())
    job = finished(queue, retain=False)
    assert job.processed.encoded and queue.get(job.id) is None and queue.retained == 0


def test_a_finished_job_drops_its_upload_and_its_float_copy():
    job = finished(make_queue(Clock()))
    assert job.data is None and job.processed.audio is None and len(job.processed.encoded) == 1000


def test_finished_jobs_are_dropped_after_the_retention_time():
    clock = Clock()
    queue = make_queue(clock, retention_s=60.0)
    old = finished(queue)
    clock.now = 61.0
    new = finished(queue)
    assert queue.get(old.id) is None and queue.get(new.id) is new


def test_the_oldest_finished_jobs_go_first_when_the_count_limit_is_reached():
    clock = Clock()
    queue = make_queue(clock, max_retained_jobs=3)
    jobs = []
    for second in range(5):
        clock.now = float(second)
        jobs.append(finished(queue))
    assert [queue.get(j.id) is not None for j in jobs] == [False, False, True, True, True]


def test_the_oldest_finished_jobs_go_first_when_the_byte_limit_is_reached():
    clock = Clock()
    queue = make_queue(clock, max_retained_bytes=2500)  # two and a half outputs of 1000 bytes
    jobs = []
    for second in range(4):
        clock.now = float(second)
        jobs.append(finished(queue))
    kept = [queue.get(j.id) is not None for j in jobs]
    assert kept == [False, True, True, True]  # three kept after the fourth joins: 2000 <= 2500 before it was added


def test_limits_that_are_not_positive_are_refused():
    with pytest.raises(ValueError, match="retention limits"):
        WorkQueue(output_of(1), capacity=1, workers=1, retention_s=1, max_retained_jobs=0)
