"""A bounded work queue with a fixed pool of worker threads, shared by both enhance routes.

Admission is immediate: a full queue refuses with QueueFull rather than
letting callers pile up, which is what keeps latency bounded for admitted work.

Finished jobs are kept for /v1/jobs clients to collect, and only theirs: a
synchronous request has its answer already. Kept jobs are bounded three ways,
oldest finished dropped first: by age (a janitor thread drops expired jobs
even when no request comes), by count, and by bytes of output (checked each
time a job finishes, so the budget holds at every moment).
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

from enhancement.pipeline import Processed

logger = logging.getLogger(__name__)

# The janitor looks for expired jobs this often at most; retention is minutes, so seconds late is fine.
MAX_SWEEP_INTERVAL_SECONDS = 10.0


class QueueFull(Exception):
    """The queue cannot take another clip: it is full, or the worker is draining."""

    def __init__(self, message: str, *, draining: bool = False) -> None:
        super().__init__(message)
        self.draining = draining


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True)
class Traced:
    """A processed clip and the trace it was processed under."""

    processed: Processed
    trace_id: str | None = None


@dataclass
class Job:
    id: str
    data: bytes | None
    source: str
    submitted_s: float = 0.0
    state: JobState = JobState.QUEUED
    answer: Traced | None = None
    started_s: float | None = None
    finished_s: float | None = None
    done: threading.Event = field(default_factory=threading.Event)
    # Called on the worker thread once the answer is ready: how a caller that does not wait hears of it.
    then: Callable[[Job], None] | None = None

    @property
    def output_bytes(self) -> int:
        return len(self.answer.processed.encoded or b"") if self.answer is not None else 0


class WorkQueue:
    def __init__(
        self,
        process: Callable[[bytes, str, str], Traced],
        *,
        capacity: int,
        workers: int,
        retention_s: float,
        max_retained_jobs: int = 1024,
        max_retained_bytes: int = 256 * 2**20,
        clock: Callable[[], float] = time.monotonic,
        sweep_interval_s: float | None = None,
        on_finished: Callable[[Job], None] | None = None,
    ) -> None:
        """``on_finished`` is told of every job once its answer is ready (the runtime times it from there)."""
        if capacity < 1 or workers < 1 or max_retained_jobs < 1 or max_retained_bytes < 1:
            raise ValueError("capacity, workers and the retention limits must be positive")
        self._process = process
        self._on_finished = on_finished
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=capacity)
        self.capacity = capacity
        self._retention_s = retention_s
        self._max_retained_jobs = max_retained_jobs
        self._max_retained_bytes = max_retained_bytes
        self._clock = clock
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._accepting = True
        self._stopped = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"enhance-{i}", daemon=True) for i in range(workers)]
        interval = sweep_interval_s if sweep_interval_s is not None else min(retention_s / 4, MAX_SWEEP_INTERVAL_SECONDS)
        self._threads.append(threading.Thread(target=self._janitor, args=(interval,), name="job-janitor", daemon=True))
        for thread in self._threads:
            thread.start()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def retained(self) -> int:
        with self._lock:
            return len(self._jobs)

    @property
    def retained_bytes(self) -> int:
        with self._lock:
            return sum(job.output_bytes for job in self._jobs.values())

    def submit(self, data: bytes, source: str = "", *, retain: bool = True, then: Callable[[Job], None] | None = None) -> Job:
        """Queue a clip. ``retain=False`` for callers that wait for the answer themselves (``job.done`` or ``then``)."""
        if not self._accepting:
            raise QueueFull("the worker is shutting down", draining=True)
        job = Job(id=uuid.uuid4().hex, data=data, source=source, submitted_s=self._clock(), then=then)
        try:
            self._queue.put_nowait(job)
        except queue.Full as exc:
            raise QueueFull(f"the queue is full ({self.capacity} clips waiting)") from exc
        if retain:
            with self._lock:
                self._jobs[job.id] = job
                self._forget_old()
        return job

    def take_claimed(self, data: bytes, job_id: str, *, waited_s: float, then: Callable[[Job], None]) -> Job:
        """Queue a job already claimed from a shared store, waiting for room rather than refusing.

        It was admitted once, by the fleet, so neither a full local queue nor a drain
        (which stops claiming first) may turn it away. ``waited_s`` is its time in the
        shared queue, counted into its queue wait.
        """
        job = Job(id=job_id, data=data, source="", submitted_s=self._clock() - waited_s, then=then)
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        # No pruning here: a status poll must not sort every kept job. The janitor drops expired
        # ones within MAX_SWEEP_INTERVAL_SECONDS, and submit() and each finish enforce the limits.
        with self._lock:
            return self._jobs.get(job_id)

    def sweep(self) -> None:
        """Drop what retention no longer covers; the janitor calls this, and so may a test."""
        with self._lock:
            self._forget_old()

    def _forget_old(self) -> None:
        """Oldest finished first, until every limit holds. Called with the lock held."""
        horizon = self._clock() - self._retention_s
        finished = sorted((j for j in self._jobs.values() if j.finished_s is not None), key=lambda j: j.finished_s or 0.0)
        kept_bytes = sum(j.output_bytes for j in finished)
        for job in finished:
            within = (
                (job.finished_s or 0.0) >= horizon and len(self._jobs) <= self._max_retained_jobs and kept_bytes <= self._max_retained_bytes
            )
            if within:
                break
            del self._jobs[job.id]
            kept_bytes -= job.output_bytes

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            job.state = JobState.RUNNING
            job.started_s = self._clock()
            try:
                job.answer = self._process(job.data or b"", job.id, job.source)
            except Exception:  # the pipeline turns errors into outcomes; this is a last guard
                logger.exception("job %s crashed the worker thread's call", job.id)
            finally:
                job.data = None  # the upload is no longer needed; free it now
                job.finished_s = self._clock()
                job.state = JobState.DONE
                with self._lock:
                    self._forget_old()  # its output now counts against the byte budget
                self._notify(job)
                job.done.set()
                self._hand_over(job)
                self._queue.task_done()

    def _notify(self, job: Job) -> None:
        if self._on_finished is None:
            return
        try:
            self._on_finished(job)
        except Exception:  # telemetry must never fail a job
            logger.exception("on_finished failed for job %s", job.id)

    def _hand_over(self, job: Job) -> None:
        if job.then is None:
            return
        try:
            job.then(job)
        except Exception:  # the callback owns its errors; the worker thread must live on
            logger.exception("the completion callback failed for job %s", job.id)

    def _janitor(self, interval_s: float) -> None:
        while not self._stopped.wait(interval_s):
            self.sweep()

    def drain(self, timeout_s: float) -> bool:
        """Stop intake, finish every admitted job, stop the threads. True if all finished in time."""
        self._accepting = False
        deadline = self._clock() + timeout_s
        while self._queue.unfinished_tasks and self._clock() < deadline:
            time.sleep(0.05)
        finished = not self._queue.unfinished_tasks
        self._stopped.set()
        for _ in self._threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break
        return finished
