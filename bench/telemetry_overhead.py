"""Telemetry overhead: the same clips with metrics, spans and exemplars on (spans exported to
an in-process OTLP/gRPC receiver) and with telemetry off, interleaved in one run.

    python -m bench.telemetry_overhead [--clips 30] [--seconds 10] [--json out.json]
"""

from __future__ import annotations

import os
import statistics
import time

from prometheus_client import CollectorRegistry

from bench import common
from enhancement.model import MetricGanEnhancer
from enhancement.pipeline import Pipeline
from exporter.metrics import create_metrics
from exporter.telemetry import TelemetryObserver
from exporter.tracing import create_tracer_provider
from recipes import corpus
from tests.helpers.otlp import OtlpReceiver
from worker.settings import load_settings


def measure(clips: int, seconds: float) -> dict:
    config = load_settings(environ={})
    enhancer = MetricGanEnhancer(config.model.source, "cpu")
    enhancer.load()
    receiver = OtlpReceiver().start()
    os.environ.update(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_EXPORTER_OTLP_INSECURE="true")
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    provider, _ = create_tracer_provider(metrics)
    observed = Pipeline(config, enhancer, observer=TelemetryObserver(metrics, provider.get_tracer("bench")))
    bare = Pipeline(config, enhancer)
    body = common.wav_bytes(corpus.held_out_pair(3, voice="en-029+m5", noise_kind="rain", snr_db=5.0, seconds=seconds).noisy)
    on, off = [], []
    try:
        for pipe in (observed, bare):
            pipe.process_bytes(body)  # warm-up
        for index in range(clips):
            # Alternate which goes first, so drift on the machine hits both sides alike.
            order = ((observed, on), (bare, off)) if index % 2 else ((bare, off), (observed, on))
            for pipe, times in order:
                started = time.perf_counter()
                pipe.process_bytes(body)
                times.append(time.perf_counter() - started)
        provider.force_flush()
    finally:
        observed.close()
        bare.close()
        provider.shutdown()
        receiver.stop()
    on_s, off_s = statistics.median(on), statistics.median(off)
    return {
        "clip_seconds": seconds,
        "clips": clips,
        "telemetry_on_ms": round(on_s * 1000, 2),
        "telemetry_off_ms": round(off_s * 1000, 2),
        "overhead_ratio": round(on_s / off_s - 1, 4),
        "spans_received": len(receiver.spans),
    }


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    result = measure(args.clips, args.seconds)
    print(
        f"telemetry on {result['telemetry_on_ms']:.1f} ms, off {result['telemetry_off_ms']:.1f} ms per "
        f"{result['clip_seconds']:g} s clip (median of {result['clips']}): overhead {result['overhead_ratio']:+.2%}; "
        f"{result['spans_received']} spans received"
    )
    common.save(args.json, result)


if __name__ == "__main__":
    main()
