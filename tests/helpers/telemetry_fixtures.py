"""Helpers for the observability tests: a fresh registry and an in-memory span sink per test."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics, create_metrics
from exporter.telemetry import TelemetryObserver


@dataclass
class Telemetry:
    registry: CollectorRegistry
    metrics: Metrics
    spans: InMemorySpanExporter
    observer: TelemetryObserver

    def value(self, name: str, **labels: str) -> float:
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found


def fresh_telemetry() -> Telemetry:
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return Telemetry(registry, metrics, spans, TelemetryObserver(metrics, provider.get_tracer("test")))
