"""The embedded job store: jobs kept by this process's work queue, for a single worker."""

from __future__ import annotations

from worker.answers import Answer
from worker.jobs import Job, JobState, WorkQueue
from worker.jobstore import JobRecord


def record(job: Job) -> JobRecord:
    return JobRecord(job.id, job.state, Answer.of(job.answer) if job.state is JobState.DONE else None)


class MemoryJobStore:
    def __init__(self, queue: WorkQueue) -> None:
        self._queue = queue

    def submit(self, data: bytes) -> JobRecord:
        return record(self._queue.submit(data, retain=True))

    def get(self, job_id: str) -> JobRecord | None:
        job = self._queue.get(job_id)
        return record(job) if job is not None else None

    def health(self) -> dict[str, object]:
        return {"ok": True, "backend": "memory", "retained": self._queue.retained}
