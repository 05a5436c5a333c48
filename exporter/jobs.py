"""A bounded work queue with a fixed pool of worker threads, shared by both enhance routes.

Admission is immediate: a full queue refuses with QueueFull rather than
letting callers pile up, which is what keeps latency bounded for admitted work.
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._process = process
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=capacity)
        self.capacity = capacity
        self._retention_s = retention_s
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

    def submit(self, data: bytes, source: str = "") -> Job:
        if not self._accepting:
            raise QueueFull("the worker is shutting down", reason="draining")
        job = Job(id=uuid.uuid4().hex, data=data, source=source, created_s=self._clock())
        try:
            self._queue.put_nowait(job)
        except queue.Full as exc:
            raise QueueFull(f"the queue is full ({self.capacity} clips waiting)") from exc
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _forget_old(self) -> None:
        horizon = self._clock() - self._retention_s
        for job_id in [j.id for j in self._jobs.values() if j.finished_s is not None and j.finished_s < horizon]:
            del self._jobs[job_id]

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            job.state = JobState.RUNNING
            try:
                job.processed = self._process(job.data, job.id, job.source)
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
