"""Where /v1/jobs keeps its jobs: in this process (one worker), or in Redis (a fleet).

Both stores give the routes the same two calls, ``submit`` and ``get``, and the
same refusals: ``QueueFull`` when the backlog is full or the worker is draining,
``JobStoreUnavailable`` when the shared store cannot be reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from worker.answers import Answer
from worker.jobs import JobState


class JobStoreUnavailable(Exception):
    """The shared job store cannot be reached; job intake and lookups are refused until it returns."""


@dataclass(frozen=True)
class JobRecord:
    id: str
    state: JobState
    answer: Answer | None = None  # set once the state is DONE


class JobStore(Protocol):
    def submit(self, data: bytes) -> JobRecord: ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def health(self) -> dict[str, object]: ...
