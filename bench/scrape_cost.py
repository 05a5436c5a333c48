"""Scrape cost at full label cardinality: time, bytes and series for text and OpenMetrics.

Every label set the worker can emit is populated, each histogram with an exemplar, then the
registry is rendered repeatedly in both formats. "Can emit" is taken from the declared sets,
not a cross product: every stage, outcome, fallback path, pattern kind and DNSMOS dimension;
stage errors as they can escape a stage (decode's input reasons, and an internal error in
any stage: every other failure is caught by its fallback chain); HTTP status codes as each
route declares them. It then times each collector's collection alone, to show where the
time goes.

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
from enhancement.fallbacks import FALLBACK_PATHS
from enhancement.quality import DNSMOS_DIMENSIONS
from enhancement.result import PATTERN_KINDS, STAGES, Outcome
from exporter.fleet import FleetCollector
from exporter.metrics import create_metrics
from exporter.resources import GpuCollector, SystemCollector
from exporter.telemetry import initialise_label_sets
from worker.api.routes import enhance, health, jobs
from worker.jobstore.feeder import OPERATIONS
from worker.jobstore.redis import FleetReading

DECODE_REASONS = tuple(reason.value for reason in INPUT_REASONS)
EXEMPLAR = {"trace_id": "0123456789abcdef0123456789abcdef"}


def http_pairs() -> list[tuple[str, str]]:
    """(route, status code) as the routers declare them: their responses and their success code."""
    pairs = [("unmatched", "404")]
    for router in (enhance.router, jobs.router, health.router):
        for route in router.routes:
            codes = {str(route.status_code or 200), *(str(code) for code in (route.responses or {}))}
            pairs += [(route.path, code) for code in sorted(codes)]
    return pairs


def collection_costs(registry: CollectorRegistry, repeats: int) -> list[tuple[str, int, float]]:
    """(first family name, samples, median ms) per collector, costliest first."""
    costs = []
    for collector, names in list(registry._collector_to_names.items()):  # the registry keeps no public list
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            families = list(collector.collect())
            times.append(time.perf_counter() - started)
        name = names[0] if names else type(collector).__name__
        costs.append((name, sum(len(f.samples) for f in families), round(float(np.median(times)) * 1000, 4)))
    return sorted(costs, key=lambda row: -row[2])


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
        m.stage_errors.labels(stage=stage, reason=Reason.INTERNAL.value).inc()
    for reason in DECODE_REASONS:
        m.stage_errors.labels(stage="decode", reason=reason).inc()
    for path in FALLBACK_PATHS:
        m.fallbacks.labels(*path).inc()
    for kind in PATTERN_KINDS:
        m.patterns_detected.labels(pattern=kind).inc()
        m.pattern_confidence.labels(pattern=kind).observe(0.9)
    for dimension in DNSMOS_DIMENSIONS:
        m.dnsmos.labels(dimension=dimension).observe(3.5)
    for route, code in http_pairs():
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
    m.job_store_up.labels(backend="redis").set(1)
    for operation in OPERATIONS:
        m.job_store_errors.labels(operation=operation).inc()
    registry.register(FleetCollector(lambda: FleetReading(backlog=3, claimed=2, oldest_age_s=4.0, result_bytes=10**6)))
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
    costs = collection_costs(registry, 100)
    print(f"\ncollection alone: {sum(c[2] for c in costs):.3f} ms in all; the costliest collectors:")
    for name, samples, ms in costs[:8]:
        print(f"  {name:<48} {samples:>5} samples {ms:>7.3f} ms")
    figures["collection_ms"] = {name: ms for name, _, ms in costs}
    common.save(args.json, figures)


if __name__ == "__main__":
    main()
