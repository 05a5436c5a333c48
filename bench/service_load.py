"""The HTTP service under load: loadgen against `enhancement-worker serve` at rising offered
load, to find the knee. Reports latency percentiles, throughput, the 429 share and worker RSS.

    python -m bench.service_load [--seconds 20] [--json out.json]
"""

from __future__ import annotations

import psutil

from bench import common
from ops import loadgen
from tests.helpers.worker import LiveWorker

# Offered loads as multiples of one worker's measured capacity; the last saturates it.
LOAD_STEPS = (("concurrency 1", 0.5, 1), ("concurrency 2", 1.0, 2), ("concurrency 4", 1.5, 4), ("saturation", 4.0, 16))


def capacity(url: str, clips: list[bytes]) -> float:
    report = loadgen.run(url, rate=50, duration_s=0.2, clips=clips, concurrency=1, progress=False)
    return 1 / report.percentile(50)


def measure(seconds: float) -> dict:
    worker = LiveWorker({"ENHANCEMENT_SERVICE__QUEUE_CAPACITY": "8", "ENHANCEMENT_SERVICE__WORKERS": "1"}).start()
    clips = loadgen.load_corpus(None, count=6, seconds=5.0)
    results = {}
    try:
        per_second = capacity(worker.url, clips)
        results["single_clip_capacity_per_s"] = round(per_second, 2)
        for name, load, concurrency in LOAD_STEPS:
            report = loadgen.run(
                worker.url, rate=per_second * load, duration_s=seconds, clips=clips, concurrency=concurrency, progress=False
            )
            sent = sum(report.statuses.values()) or 1
            results[name] = {
                "offered_per_s": round(per_second * load, 2),
                "throughput_per_s": round(report.statuses.get(200, 0) / report.elapsed_s, 2),
                "p50_ms": round(report.percentile(50) * 1000),
                "p95_ms": round(report.percentile(95) * 1000),
                "p99_ms": round(report.percentile(99) * 1000),
                "rejected_429_share": round(report.statuses.get(429, 0) / sent, 3),
                "worker_rss_mib": round(psutil.Process(worker.process.pid).memory_info().rss / 2**20, 1),
            }
    finally:
        worker.terminate()
    return results


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    results = measure(args.seconds)
    print(f"one worker enhances about {results['single_clip_capacity_per_s']} clips/s of 5 s audio")
    print(f"{'load':<14} {'offered/s':>9} {'done/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'429 share':>9} {'RSS MiB':>8}")
    for name, _, _ in LOAD_STEPS:
        r = results[name]
        print(
            f"{name:<14} {r['offered_per_s']:>9} {r['throughput_per_s']:>7} {r['p50_ms']:>7} {r['p95_ms']:>7} "
            f"{r['p99_ms']:>7} {r['rejected_429_share']:>9.1%} {r['worker_rss_mib']:>8}"
        )
    common.save(args.json, results)


if __name__ == "__main__":
    main()
