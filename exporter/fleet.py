"""The shared job queue's telemetry: this replica's view of the store, and the fleet's gauges.

Counters are counted where the event happens (the replica that took over a job
counts the redelivery), so a sum across replicas counts each event once. The
backlog, the jobs in progress, the oldest job's age and the retained bytes
belong to the fleet, not to a replica: only the replica holding the reporter
lease exports them, so ``sum`` across replicas is the fleet's value and never a
multiple of it. When the holder stops, another takes the lease within seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from exporter.metrics import Metrics


class FleetValues(Protocol):
    @property
    def backlog(self) -> int: ...

    @property
    def claimed(self) -> int: ...

    @property
    def oldest_age_s(self) -> float: ...

    @property
    def result_bytes(self) -> int: ...


class JobStoreTelemetry:
    """The feeder's events as metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def store_reachable(self, up: bool) -> None:
        self._metrics.job_store_up.labels(backend="redis").set(1 if up else 0)

    def store_error(self, operation: str) -> None:
        self._metrics.job_store_errors.labels(operation=operation).inc()

    def redelivered(self) -> None:
        self._metrics.job_redeliveries.inc()

    def abandoned(self) -> None:
        self._metrics.jobs_abandoned.inc()

    def duplicate(self) -> None:
        self._metrics.job_duplicates.inc()


class FleetCollector(Collector):
    """Yields the fleet's gauges while ``read`` returns a reading (this replica holds the lease), else nothing."""

    def __init__(self, read: Callable[[], FleetValues | None]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        reading = self._read()
        if reading is None:
            return
        yield GaugeMetricFamily(
            "enhancement_jobs_backlog", "Shared jobs admitted and not yet taken by any replica, fleet-wide.", reading.backlog
        )
        yield GaugeMetricFamily(
            "enhancement_jobs_claimed", "Shared jobs taken by a replica and not yet finished, fleet-wide.", reading.claimed
        )
        yield GaugeMetricFamily(
            "enhancement_jobs_oldest_age_seconds", "Age of the oldest unfinished shared job, in seconds; 0 when none.", reading.oldest_age_s
        )
        yield GaugeMetricFamily(
            "enhancement_job_results_bytes", "Bytes of finished shared jobs' audio kept for collection, fleet-wide.", reading.result_bytes
        )
