"""Scrape cost at full label cardinality: time, bytes and series for text and OpenMetrics.

Every label value the worker can emit is populated (every stage, outcome, error reason,
fallback path, pattern kind, DNSMOS dimension), each histogram with an exemplar, then the
registry is rendered repeatedly in both formats.

    python -m bench.scrape_cost [--repeats 300] [--json out.json]
"""

from __future__ import annotations

import time

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest as text_format
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_format
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from bench import common
from enhancement.errors import INPUT_REASONS, Reason
from enhancement.fallbacks import FALLBACK_PATHS, MODEL_FAILURE_REASONS
from enhancement.quality import DNSMOS_DIMENSIONS
from enhancement.result import PATTERN_KINDS, STAGES, Outcome
from exporter.metrics import create_metrics
from exporter.resources import GpuCollector, SystemCollector
from exporter.telemetry import initialise_label_sets

DECODE_REASONS = tuple(reason.value for reason in INPUT_REASONS)
ROUTES = ("/v1/enhance", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/audio", "/metrics", "/healthz", "/readyz")
CODES = ("200", "202", "401", "404", "409", "413", "415", "422", "429", "500", "503")
EXEMPLAR = {"trace_id": "0123456789abcdef0123456789abcdef"}


def populated_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    m = create_metrics(registry)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(SystemCollector())
    registry.register(GpuCollector())
    initialise_label_sets(m)
    m.build_info.info({"version": "0.1.0", "model": "metricgan_plus", "device": "cpu"})
    for outcome in Outcome:
        m.requests.labels(outcome=outcome.value).inc()
    m.request_duration.observe(0.4, exemplar=EXEMPLAR)
    for stage in STAGES:
        m.stage_duration.labels(stage=stage).observe(0.01, exemplar=EXEMPLAR)
        for reason in (Reason.INTERNAL.value, *(r.value for r in MODEL_FAILURE_REASONS)):
            m.stage_errors.labels(stage=stage, reason=reason).inc()
    for reason in DECODE_REASONS:
        m.stage_errors.labels(stage="decode", reason=reason).inc()
    for path in FALLBACK_PATHS:
        m.fallbacks.labels(*path).inc()
    for kind in PATTERN_KINDS:
        m.patterns_detected.labels(pattern=kind).inc()
        m.pattern_confidence.labels(pattern=kind).observe(0.9)
    for dimension in DNSMOS_DIMENSIONS:
        m.dnsmos.labels(dimension=dimension).observe(3.5)
    for route in ROUTES:
        for code in CODES:
            m.http_responses.labels(route=route, code=code).inc()
    for histogram, value in (
        (m.audio_duration, 5),
        (m.real_time_factor, 0.1),
        (m.snr_improvement, 6),
        (m.output_snr, 20),
        (m.loudness_gain, 4),
        (m.output_loudness, -20),
        (m.true_peak, -1.2),
        (m.limiter_gain_reduction, 1),
    ):
        histogram.observe(value)
    m.breaker_state.labels(breaker="model").set(0)
    m.model_loaded.labels(model="metricgan_plus").set(1)
    return registry


def measure(render, registry, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        body = render(registry)
        times.append(time.perf_counter() - started)
    lines = body.decode().splitlines()
    return {
        "p50_ms": round(float(np.percentile(times, 50)) * 1000, 3),
        "p99_ms": round(float(np.percentile(times, 99)) * 1000, 3),
        "bytes": len(body),
        "lines": len(lines),
        "series": sum(1 for line in lines if line and not line.startswith("#")),
    }


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    registry = populated_registry()
    figures = {"text": measure(text_format, registry, args.repeats), "openmetrics": measure(openmetrics_format, registry, args.repeats)}
    print(f"{'format':<12} {'p50 ms':>8} {'p99 ms':>8} {'bytes':>8} {'lines':>6} {'series':>6}")
    for name, f in figures.items():
        print(f"{name:<12} {f['p50_ms']:>8.3f} {f['p99_ms']:>8.3f} {f['bytes']:>8} {f['lines']:>6} {f['series']:>6}")
    common.save(args.json, figures)


if __name__ == "__main__":
    main()
