"""OpenTelemetry tracing set-up, configured by the standard environment variables.

``OTEL_SERVICE_NAME`` names the service (default ``enhancement-worker``),
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) points at the
collector, ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG`` choose the
sampler and ``OTEL_TRACES_EXPORTER=none`` turns export off. Spans leave
through a BatchSpanProcessor, off the request path: an unreachable collector
costs the request nothing, and each failed export is logged and counted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from exporter.metrics import Metrics

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "enhancement-worker"
ENV_SERVICE_NAME = "OTEL_SERVICE_NAME"
ENV_TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
# How long shutdown waits for the last spans before giving up on the collector.
SHUTDOWN_FLUSH_TIMEOUT_MILLIS = 5_000


class CountingExporter(SpanExporter):
    """Wraps an exporter so that failures are counted and logged, never raised."""

    def __init__(self, inner: SpanExporter, metrics: Metrics) -> None:
        self._inner = inner
        self._failures = metrics.telemetry_export_failures.labels(signal="traces")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception:
            logger.exception("span export raised; %d spans dropped", len(spans))
            self._failures.inc()
            return SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            logger.warning("span export failed; %d spans dropped", len(spans))
            self._failures.inc()
        return result

    def shutdown(self) -> None:
        try:
            self._inner.shutdown()
        except Exception:
            logger.exception("span exporter shutdown failed")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        try:
            return self._inner.force_flush(timeout_millis)
        except Exception:
            logger.exception("span exporter flush failed")
            return False


def _default_exporter() -> SpanExporter | None:
    if os.environ.get(ENV_TRACES_EXPORTER, "otlp").strip().lower() == "none":
        return None
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def create_tracer_provider(metrics: Metrics, exporter: SpanExporter | None = None, *, version: str = "") -> tuple[TracerProvider, bool]:
    """A provider exporting through ``exporter`` (default: OTLP gRPC from the environment),
    and whether spans are exported at all."""
    resource = Resource.create({"service.name": os.environ.get(ENV_SERVICE_NAME, DEFAULT_SERVICE_NAME), "service.version": version})
    provider = TracerProvider(resource=resource)
    exporter = exporter if exporter is not None else _default_exporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(CountingExporter(exporter, metrics)))
    return provider, exporter is not None


def shutdown_tracing(provider: TracerProvider) -> None:
    try:
        provider.force_flush(SHUTDOWN_FLUSH_TIMEOUT_MILLIS)
        provider.shutdown()
    except Exception:
        logger.exception("tracing shutdown failed")
