"""Wires the pipeline to its telemetry: registry, metrics, tracer, observer, queue.

A model that cannot load does not stop the process: the worker comes up,
reports ``enhancement_model_loaded 0``, answers /readyz with 503 and refuses
enhancement requests, so the operator sees why instead of a crash loop.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import redis
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import CollectorRegistry
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from enhancement.errors import ModelUnavailable, Reason
from enhancement.model import MODEL_NAME, MetricGanEnhancer, checkpoint_identity
from enhancement.pipeline import MODEL_BREAKER, Enhancer, Pipeline
from enhancement.resilience import BREAKER_STATE_VALUE, BreakerState
from exporter.fleet import FleetCollector, JobStoreTelemetry
from exporter.metrics import Metrics, create_metrics
from exporter.resources import GpuCollector, SystemCollector
from exporter.telemetry import TelemetryObserver
from exporter.tracing import create_tracer_provider, shutdown_tracing
from worker.api.errors import ApiReason, ServiceError
from worker.faults import FaultSwitch
from worker.jobs import Job, QueueFull, Traced, WorkQueue
from worker.jobstore import JobRecord, JobStore, JobStoreUnavailable
from worker.jobstore.feeder import Feeder
from worker.jobstore.memory import MemoryJobStore
from worker.jobstore.redis import RedisJobStore
from worker.settings import Settings

logger = logging.getLogger(__name__)

DRAIN_TIMEOUT_SECONDS = 60.0
# The latency SLI judges clips shorter than this as if they lasted this long: fixed costs dominate them.
MIN_CLIP_SECONDS_FOR_LATENCY = 1.0
# A client told to come back should wait about one clip's processing time.
RETRY_AFTER_SECONDS = 2
# Intake fails fast when Redis is gone; reads may block up to the claim's wait, so their timeout is longer.
REDIS_CONNECT_TIMEOUT_SECONDS = 1.0
REDIS_SOCKET_TIMEOUT_SECONDS = 5.0

try:
    VERSION = version("enhancement-worker")
except PackageNotFoundError:  # running from a source tree without installing
    VERSION = "0.0.0+source"


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        span_exporter: SpanExporter | None = None,
        enhancer: Enhancer | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics: Metrics = create_metrics(self.registry)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.registry.register(SystemCollector())
        self.gpus = GpuCollector()
        self.registry.register(self.gpus)
        self.tracer_provider, self.traces_configured = create_tracer_provider(self.metrics, span_exporter, version=VERSION)
        self.observer = TelemetryObserver(self.metrics, self.tracer_provider.get_tracer("enhancement"))

        # A reason code, not the message: unauthenticated /readyz shows it, and the message names paths.
        self.model_error: str | None = None
        if enhancer is None:
            enhancer = self._load_model()
        else:
            self.metrics.model_loaded.labels(model=enhancer.name).set(1)
        if enhancer is not None and settings.faults.control_file is not None:
            enhancer = FaultSwitch(enhancer, settings.faults.control_file)
        device = getattr(enhancer, "device", None) or "cpu"
        self.checkpoint = checkpoint_identity(settings.model.source)
        self.metrics.build_info.info(
            {
                "version": VERSION,
                "model": MODEL_NAME,
                "checkpoint": self.checkpoint.name,
                "checkpoint_sha256": self.checkpoint.sha256,
                "device": device,
            }
        )

        service = settings.service
        self.pipeline = (
            Pipeline(settings, enhancer, observer=self.observer, model_concurrency=service.workers) if enhancer is not None else None
        )
        self.metrics.breaker_state.labels(breaker=MODEL_BREAKER).set(BREAKER_STATE_VALUE[BreakerState.CLOSED])
        self.queue = WorkQueue(
            self._process,
            capacity=service.queue_capacity,
            workers=service.workers,
            retention_s=service.job_retention_seconds,
            max_retained_jobs=service.job_retention_max_jobs,
            max_retained_bytes=service.job_retention_max_bytes,
            on_finished=self._observe_job,
        )
        self.metrics.queue_capacity.set(service.queue_capacity)
        self.metrics.queue_depth.set_function(lambda: self.queue.depth)
        self.feeder: Feeder | None = None
        self.jobs: JobStore = self._job_store()

    def _job_store(self) -> JobStore:
        """The memory store for one worker; with Redis, the shared store and the feeder that takes its jobs."""
        jobs, service = self.settings.jobs, self.settings.service
        if jobs.backend == "memory" or jobs.redis_url is None:
            return MemoryJobStore(self.queue)
        client = redis.Redis.from_url(
            jobs.redis_url, socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS, socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS
        )
        store = RedisJobStore(
            client,
            consumer=f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            prefix=jobs.key_prefix,
            max_backlog=jobs.max_backlog,
            retention_s=service.job_retention_seconds,
            max_retained_bytes=service.job_retention_max_bytes,
            visibility_timeout_s=jobs.visibility_timeout_seconds,
            max_deliveries=jobs.max_deliveries,
        )
        if self.pipeline is not None:  # a replica that cannot process takes no job from the others
            events = JobStoreTelemetry(self.metrics)
            events.store_reachable(False)  # until the first report says otherwise
            self.feeder = Feeder(store, self.queue, slots=service.workers, events=events).start()
            feeder = self.feeder
            self.registry.register(FleetCollector(lambda: feeder.fleet))
        return store

    def _load_model(self) -> MetricGanEnhancer | None:
        enhancer = MetricGanEnhancer(self.settings.model.source, self.settings.model.device)
        try:
            enhancer.load()
        except ModelUnavailable as exc:
            logger.error("model not loaded: %s", exc)
            self.model_error = exc.reason.value
            self.metrics.model_loaded.labels(model=MODEL_NAME).set(0)
            return None
        self.metrics.model_loaded.labels(model=MODEL_NAME).set(1)
        self.metrics.model_load_duration.set(enhancer.load_seconds or 0.0)
        return enhancer

    def _observe_job(self, job: Job) -> None:
        """Times seen from the client's side: queue wait, and the answer's time over the clip's length."""
        if job.started_s is not None:
            self.metrics.queue_wait.observe(job.started_s - job.submitted_s)
        result = job.answer.processed.result if job.answer is not None else None
        if result is None or result.audio_duration_s <= 0 or job.finished_s is None:
            return  # refused at decode: no clip length to judge the wait by
        answer_s = job.finished_s - job.submitted_s
        self.metrics.response_time_ratio.observe(answer_s / max(result.audio_duration_s, MIN_CLIP_SECONDS_FOR_LATENCY))

    def admit(self, data: bytes, then: Callable[[Job], None]) -> Job:
        """Queue a clip for a caller that waits for it, or refuse it with the HTTP error that says why."""
        self._check_model()
        try:
            return self.queue.submit(data, retain=False, then=then)
        except QueueFull as exc:
            raise _refusal(exc) from exc

    def admit_job(self, data: bytes) -> JobRecord:
        """Hand a clip to the job store for a client that comes back for it."""
        self._check_model()
        try:
            if not self.queue.accepting:
                raise QueueFull("the worker is shutting down", draining=True)
            return self.jobs.submit(data)
        except QueueFull as exc:
            raise _refusal(exc) from exc
        except JobStoreUnavailable as exc:
            raise _store_unavailable(exc) from exc

    def find_job(self, job_id: str) -> JobRecord:
        try:
            record = self.jobs.get(job_id)
        except JobStoreUnavailable as exc:
            raise _store_unavailable(exc) from exc
        if record is None:
            raise ServiceError(404, ApiReason.NOT_FOUND, f"no job {job_id}")
        return record

    def _check_model(self) -> None:
        if self.pipeline is None:
            message = f"model not loaded ({self.model_error or Reason.MODEL_UNAVAILABLE.value}); see the worker's log"
            raise ServiceError(503, Reason.MODEL_UNAVAILABLE, message)

    def process_now(self, data: bytes) -> Traced:
        """Process on the caller's thread, outside the queue: for inputs that are refused at once."""
        return self._process(data, uuid.uuid4().hex, "")

    def _process(self, data: bytes, clip_id: str, source: str) -> Traced:
        if self.pipeline is None:
            raise ModelUnavailable(self.model_error or "model not loaded")
        with self.observer.request() as trace_id:
            return Traced(self.pipeline.process_bytes(data, clip_id=clip_id, source=source), trace_id)

    @property
    def ready(self) -> bool:
        return self.pipeline is not None and self.queue.accepting

    def shutdown(self) -> None:
        """Stop taking shared jobs, finish admitted ones, flush spans."""
        if self.feeder is not None and not self.feeder.stop(DRAIN_TIMEOUT_SECONDS):
            logger.warning("shutdown: shared jobs still held after %.0f s; they will be delivered again", DRAIN_TIMEOUT_SECONDS)
        if not self.queue.drain(DRAIN_TIMEOUT_SECONDS):
            logger.warning("shutdown: jobs still running after %.0f s", DRAIN_TIMEOUT_SECONDS)
        if self.pipeline is not None:
            self.pipeline.close()
        shutdown_tracing(self.tracer_provider)


def _refusal(exc: QueueFull) -> ServiceError:
    status, reason = (503, ApiReason.DRAINING) if exc.draining else (429, ApiReason.QUEUE_FULL)
    return ServiceError(status, reason, str(exc), {"Retry-After": str(RETRY_AFTER_SECONDS)})


def _store_unavailable(exc: JobStoreUnavailable) -> ServiceError:
    return ServiceError(503, ApiReason.JOB_STORE_UNAVAILABLE, str(exc), {"Retry-After": str(RETRY_AFTER_SECONDS)})
