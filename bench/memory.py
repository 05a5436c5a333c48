"""Memory: resident set after the model loads, and its growth over thousands of clips.

Runs the whole pipeline with telemetry on (metrics and spans into an in-memory sink that is
cleared as it goes) in this process, and compares the RSS after a warm-up with the RSS at
the end.

    python -m bench.memory [--requests 3000] [--seconds 1] [--json out.json]
"""

from __future__ import annotations

import gc

import psutil
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from bench import common
from enhancement.model import MetricGanEnhancer
from enhancement.pipeline import Pipeline
from exporter.metrics import create_metrics
from exporter.telemetry import TelemetryObserver
from recipes import corpus
from worker.settings import load_settings

WARM_UP_REQUESTS = 100


def rss_bytes() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def measure(requests: int, seconds: float) -> dict:
    before_model = rss_bytes()
    config = load_settings(environ={})
    enhancer = MetricGanEnhancer(config.model.source, "cpu")
    enhancer.load()
    after_model = rss_bytes()
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    pipe = Pipeline(config, enhancer, observer=TelemetryObserver(create_metrics(CollectorRegistry()), provider.get_tracer("bench")))
    bodies = [
        common.wav_bytes(corpus.held_out_pair(i, voice=v, noise_kind="fan", snr_db=10.0, seconds=seconds).noisy)
        for i, v in enumerate(corpus.HELD_OUT_VOICES)
    ] + [b"not audio"]
    try:
        for index in range(WARM_UP_REQUESTS):
            pipe.process_bytes(bodies[index % len(bodies)])
        spans.clear()
        start = rss_bytes()
        for index in range(requests):
            pipe.process_bytes(bodies[index % len(bodies)])
            if index % 200 == 0:
                spans.clear()
        end = rss_bytes()
    finally:
        pipe.close()
    return {
        "rss_before_model_mib": round(before_model / 2**20, 1),
        "rss_after_model_mib": round(after_model / 2**20, 1),
        "rss_after_warm_up_mib": round(start / 2**20, 1),
        "rss_after_run_mib": round(end / 2**20, 1),
        "requests": requests,
        "growth_ratio": round(end / start - 1, 4),
    }


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    r = measure(args.requests, args.seconds)
    print(
        f"RSS: {r['rss_before_model_mib']} MiB before the model, {r['rss_after_model_mib']} MiB loaded, "
        f"{r['rss_after_warm_up_mib']} MiB after warm-up, {r['rss_after_run_mib']} MiB after {r['requests']} more "
        f"clips: growth {r['growth_ratio']:+.2%}"
    )
    common.save(args.json, r)


if __name__ == "__main__":
    main()
