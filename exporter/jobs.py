"""A bounded work queue with a fixed pool of worker threads, shared by both enhance routes.

Admission is immediate: a full queue refuses with QueueFull rather than
letting callers pile up, which is what keeps latency bounded for admitted work.

Finished jobs are kept for /v1/jobs clients to collect, and only theirs: a
synchronous request has its answer already. Kept jobs are bounded three ways
(age, count and bytes of output, oldest finished dropped first), so memory
does not grow with request rate.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from enhancement.errors import QueueFull
from enhancement.pipeline import Processed

logger = logging.getLogger(__name__)


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


@dataclass
class Job:
    id: str
    data: bytes | None
    source: str
    created_s: float
    state: JobState = JobState.QUEUED
    processed: Processed | None = None
    finished_s: float | None = None
    done: threading.Event = field(default_factory=threading.Event)


class WorkQueue:
    def __init__(
        self,
        process: Callable[[bytes, str, str], Processed],
        *,
        capacity: int,
        workers: int,
        retention_s: float,
        max_retained_jobs: int = 1024,
        max_retained_bytes: int = 256 * 2**20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or workers < 1 or max_retained_jobs < 1 or max_retained_bytes < 1:
            raise ValueError("capacity, workers and the retention limits must be positive")
        self._process = process
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=capacity)
        self.capacity = capacity
        self._retention_s = retention_s
        self._max_retained_jobs = max_retained_jobs
        self._max_retained_bytes = max_retained_bytes
        self._clock = clock
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._accepting = True
        self._threads = [threading.Thread(target=self._work, name=f"enhance-{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def accepting(self) -> bool:
        return self._accepting

    def submit(self, data: bytes, source: str = "", *, retain: bool = True) -> Job:
        """Queue a clip. ``retain=False`` for callers that wait on ``job.done`` themselves."""
        if not self._accepting:
            raise QueueFull("the worker is shutting down", reason="draining")
        job = Job(id=uuid.uuid4().hex, data=data, source=source, created_s=self._clock())
        try:
            self._queue.put_nowait(job)
        except queue.Full as exc:
            raise QueueFull(f"the queue is full ({self.capacity} clips waiting)") from exc
        if retain:
            with self._lock:
                self._forget_old()
                self._jobs[job.id] = job
        return job

    @property
    def retained(self) -> int:
        with self._lock:
            return len(self._jobs)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _forget_old(self) -> None:
        horizon = self._clock() - self._retention_s
        finished = sorted((j for j in self._jobs.values() if j.finished_s is not None), key=lambda j: j.finished_s)
        kept_bytes = sum(_output_bytes(j) for j in finished)
        for job in finished:
            too_many = len(self._jobs) >= self._max_retained_jobs  # >=: room for the job being added
            if job.finished_s >= horizon and not too_many and kept_bytes <= self._max_retained_bytes:
                break
            del self._jobs[job.id]
            kept_bytes -= _output_bytes(job)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            job.state = JobState.RUNNING
            try:
                job.processed = self._process(job.data, job.id, job.source)
                job.processed.audio = None  # the encoded bytes are the answer; the float copy is 2x their size
            except Exception:  # the pipeline turns errors into outcomes; this is a last guard
                logger.exception("job %s crashed the worker thread's call", job.id)
            finally:
                job.data = None  # the upload is no longer needed; free it now
                job.finished_s = self._clock()
                job.state = JobState.DONE
                job.done.set()
                self._queue.task_done()

    def drain(self, timeout_s: float) -> bool:
        """Stop intake, finish every admitted job, stop the threads. True if all finished in time."""
        self._accepting = False
        deadline = self._clock() + timeout_s
        while self._queue.unfinished_tasks and self._clock() < deadline:
            time.sleep(0.05)
        finished = not self._queue.unfinished_tasks
        for _ in self._threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break
        return finished


def _output_bytes(job: Job) -> int:
    return len(job.processed.encoded or b"") if job.processed is not None else 0
