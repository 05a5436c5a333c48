"""Feeds jobs from the shared store into this replica's work queue, and keeps the store told.

Three threads, each with one job:

- **claim**: takes a job when this replica has a free slot and nothing of its own
  waiting, so synchronous clients are served first here and idle replicas take
  the shared backlog. A claimed job runs on the work queue like any other; when
  its answer is ready it is stored, and only then acknowledged.
- **touch**: every third of the visibility timeout, tells the store this replica
  still holds its jobs, so a slow clip is never handed to a second replica.
- **report**: checks the store is reachable, and holds the reporter lease that
  makes one replica, and only one, export the fleet's gauges.

A store that cannot be reached is logged, counted and retried with backoff; it
never stops the synchronous route, which does not touch it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from worker.answers import Answer
from worker.jobs import Job, WorkQueue
from worker.jobstore.redis import Claimed, FleetReading, RedisJobStore

logger = logging.getLogger(__name__)

CLAIM_BLOCK_MS = 1000
REPORT_INTERVAL_SECONDS = 2.0
# The lease outlives three missed reports, so a brief stall does not move it, and a dead holder's
# gauges are taken over by another replica within one scrape or two.
LEASE_TTL_SECONDS = 3 * REPORT_INTERVAL_SECONDS
BACKOFF_START_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 5.0
# How long a finished job's answer is retried into an unreachable store before it is left to be
# delivered again (its entry stays pending, so another replica redoes it after the visibility timeout).
COMPLETE_RETRY_SECONDS = 60.0
# The `operation` label of enhancement_job_store_errors_total: every store call the feeder makes.
OPERATIONS = ("claim", "complete", "touch", "report")


class FeederEvents(Protocol):
    """What the feeder reports; the runtime turns these into metrics."""

    def store_reachable(self, up: bool) -> None: ...

    def store_error(self, operation: str) -> None: ...

    def redelivered(self) -> None: ...

    def abandoned(self) -> None: ...

    def duplicate(self) -> None: ...


def backoff(attempt: int) -> float:
    """Exponential with full jitter, capped."""
    return random.uniform(0, min(BACKOFF_MAX_SECONDS, BACKOFF_START_SECONDS * 2**attempt))


class Feeder:
    def __init__(self, store: RedisJobStore, queue: WorkQueue, *, slots: int, events: FeederEvents) -> None:
        self.store = store
        self._queue = queue
        self._events = events
        self._slots = threading.BoundedSemaphore(slots)
        self._held: dict[str, Claimed] = {}
        self._held_lock = threading.Lock()
        self._stopping = threading.Event()
        self._reporting = threading.Event()
        self._fleet: FleetReading | None = None  # set only while this replica holds the reporter lease
        self._fleet_read_at = 0.0
        self._threads = [
            threading.Thread(target=self._claim_loop, name="jobs-claim", daemon=True),
            threading.Thread(target=self._touch_loop, name="jobs-touch", daemon=True),
            threading.Thread(target=self._report_loop, name="jobs-report", daemon=True),
        ]

    def start(self) -> Feeder:
        for thread in self._threads:
            thread.start()
        return self

    @property
    def fleet(self) -> FleetReading | None:
        """The fleet's reading while this replica surely holds the lease, else None.

        Surely: confirmed within half the lease's TTL. A holder that stalls stops exporting
        before the lease can pass to another replica, so two never export at once.
        """
        if time.monotonic() - self._fleet_read_at > LEASE_TTL_SECONDS / 2:
            return None
        return self._fleet

    @property
    def held(self) -> int:
        with self._held_lock:
            return len(self._held)

    # --- claim ------------------------------------------------------------------------

    def _claim_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue
            if self._queue.depth > 0:
                # This replica's own clients come first; an idle replica will take the job.
                self._slots.release()
                self._stopping.wait(0.05)
                continue
            try:
                claimed = self.store.claim(CLAIM_BLOCK_MS)
                failures = 0
            except redis.RedisError as exc:
                self._slots.release()
                self._failed("claim", exc)
                self._stopping.wait(backoff(failures))
                failures += 1
                continue
            if claimed is None:
                self._slots.release()
                continue
            self._run(claimed)

    def _run(self, claimed: Claimed) -> None:
        if claimed.deliveries > 1:
            self._events.redelivered()
            logger.warning("job %s delivered again (delivery %d): the replica that held it stopped", claimed.job_id, claimed.deliveries)
        if claimed.deliveries > self.store.max_deliveries:
            self._events.abandoned()
            logger.error("job %s abandoned after %d deliveries", claimed.job_id, claimed.deliveries)
            self._store_answer(claimed, Answer.abandoned(claimed.deliveries - 1))
            return
        with self._held_lock:
            self._held[claimed.entry_id] = claimed
        self._queue.take_claimed(claimed.data, claimed.job_id, waited_s=claimed.waited_s, then=self._finisher(claimed))

    def _finisher(self, claimed: Claimed) -> Callable[[Job], None]:
        def finish(job: Job) -> None:
            self._store_answer(claimed, Answer.of(job.answer))

        return finish

    def _store_answer(self, claimed: Claimed, answer: Answer) -> None:
        deadline = time.monotonic() + COMPLETE_RETRY_SECONDS
        attempt = 0
        try:
            while True:
                try:
                    if not self.store.complete(claimed, answer):
                        self._events.duplicate()
                        logger.warning("job %s was already finished by another replica; this answer is discarded", claimed.job_id)
                    return
                except redis.RedisError as exc:
                    self._failed("complete", exc)
                    if time.monotonic() > deadline:
                        logger.error("job %s: answer not stored; it will be delivered again", claimed.job_id)
                        return
                    time.sleep(backoff(attempt))
                    attempt += 1
        finally:
            with self._held_lock:
                self._held.pop(claimed.entry_id, None)
            self._slots.release()

    # --- touch ------------------------------------------------------------------------

    def _touch_loop(self) -> None:
        interval = self.store.visibility_timeout_s / 3
        while not self._reporting.wait(interval):
            with self._held_lock:
                held = list(self._held.values())
            for claimed in held:
                try:
                    if not self.store.touch(claimed):
                        logger.warning("job %s was taken over by another replica while processed here", claimed.job_id)
                except redis.RedisError as exc:
                    self._failed("touch", exc)

    # --- report -----------------------------------------------------------------------

    def _report_loop(self) -> None:
        while True:
            self.report()
            if self._reporting.wait(REPORT_INTERVAL_SECONDS):
                return

    def report(self) -> None:
        """One round: is the store reachable, and does this replica export the fleet's gauges."""
        try:
            confirmed = time.monotonic()
            holder = self.store.hold_lease(LEASE_TTL_SECONDS)
            self._fleet = self.store.read_fleet() if holder else None
            self._fleet_read_at = confirmed
            self.store.reachable = True
            self._events.store_reachable(True)
        except redis.RedisError as exc:
            self._fleet = None
            self._failed("report", exc)

    def _failed(self, operation: str, exc: Exception) -> None:
        self.store.reachable = False
        self._events.store_error(operation)
        self._events.store_reachable(False)
        logger.warning("job store %s failed: %s", operation, exc)

    # --- stop -------------------------------------------------------------------------

    def stop(self, timeout_s: float) -> bool:
        """Stop claiming, wait for the jobs held here to be stored, give up the lease. True if all were."""
        self._stopping.set()
        self._threads[0].join(timeout=CLAIM_BLOCK_MS / 1000 + 5)
        deadline = time.monotonic() + timeout_s
        while self.held and time.monotonic() < deadline:
            time.sleep(0.05)
        finished = self.held == 0
        self._reporting.set()
        for thread in self._threads[1:]:
            thread.join(timeout=5)
        try:
            self.store.release_lease()
            if finished:
                self.store.forget_consumer()
        except redis.RedisError as exc:
            self._failed("report", exc)
        self._fleet = None
        return finished
