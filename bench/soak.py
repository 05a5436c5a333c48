"""Soak and saturation, over HTTP against `enhancement-worker serve`.

Soak: after a warm-up, at least 10,000 requests at 80% of the measured capacity (1 s clips,
one bad upload in every 25), sampling the worker's RSS after every block of requests.
Saturation: then four times the capacity for a minute; excess must get 429 while the
latency of admitted clips and the worker's RSS stay bounded.

    python -m bench.soak [--requests 10000] [--saturation-seconds 60] [--json out.json]
"""

from __future__ import annotations

import time

import psutil

from bench import common
from ops import loadgen
from tests.helpers.worker import LiveWorker

WARM_UP_REQUESTS = 1000  # torch, ONNX runtime and glibc arenas settle within the first few hundred
BLOCK_REQUESTS = 1000
SOAK_LOAD = 0.8  # of capacity: busy, but a queue that drains, so every request is admitted
SATURATION_LOAD = 4.0
BAD_UPLOAD_EVERY = 25
QUEUE_CAPACITY = 8


def corpus(seconds: float) -> list[bytes]:
    clips = loadgen.load_corpus(None, count=BAD_UPLOAD_EVERY - 1, seconds=seconds)
    return clips + [b"RIFF\x00\x00\x00\x00WAVEnot really"]


def rss_mib(worker: LiveWorker) -> float:
    return round(psutil.Process(worker.process.pid).memory_info().rss / 2**20, 1)


def capacity_per_s(url: str, clips: list[bytes]) -> float:
    report = loadgen.run(url, rate=100, duration_s=0.5, clips=clips[:-1], concurrency=1, progress=False)
    return 1 / report.percentile(50)


def summarise(report: loadgen.LoadReport) -> dict:
    sent = sum(report.statuses.values()) + sum(report.errors.values())
    return {
        "requests": sent,
        "elapsed_s": round(report.elapsed_s, 1),
        "statuses": {str(code): n for code, n in sorted(report.statuses.items())},
        "transport_errors": dict(report.errors),
        "p50_ms": round(report.percentile(50) * 1000),
        "p99_ms": round(report.percentile(99) * 1000),
        "max_ms": round(max(report.latencies_s, default=float("nan")) * 1000),
    }


def measure(requests: int, saturation_s: float, seconds: float) -> dict:
    worker = LiveWorker({"ENHANCEMENT_SERVICE__QUEUE_CAPACITY": str(QUEUE_CAPACITY)}).start()
    clips = corpus(seconds)
    try:
        capacity = capacity_per_s(worker.url, clips)
        rate = capacity * SOAK_LOAD
        loadgen.run(worker.url, rate=rate, duration_s=WARM_UP_REQUESTS / rate, clips=clips, concurrency=4, progress=False)
        rss = [rss_mib(worker)]
        combined = loadgen.LoadReport()
        started = time.monotonic()
        while sum(combined.statuses.values()) + sum(combined.errors.values()) < requests:
            block = loadgen.run(worker.url, rate=rate, duration_s=BLOCK_REQUESTS / rate, clips=clips, concurrency=4, progress=False)
            combined.latencies_s += block.latencies_s
            combined.statuses.update(block.statuses)
            combined.errors.update(block.errors)
            rss.append(rss_mib(worker))
            print(f"soak: {sum(combined.statuses.values())} requests, RSS {rss[-1]} MiB", flush=True)
        combined.elapsed_s = time.monotonic() - started

        saturation = loadgen.run(
            worker.url, rate=capacity * SATURATION_LOAD, duration_s=saturation_s, clips=clips, concurrency=32, progress=False
        )
        rss_saturated = rss_mib(worker)
        alive = worker.process.poll() is None
    finally:
        worker.terminate()
    soak = summarise(combined)
    sat = summarise(saturation)
    sat["rejected_429_share"] = round(saturation.statuses.get(429, 0) / max(1, sat["requests"]), 3)
    return {
        "clip_seconds": seconds,
        "capacity_per_s": round(capacity, 2),
        "soak_rate_per_s": round(rate, 2),
        "soak": soak,
        "rss_mib_per_block": rss,
        "rss_growth_ratio": round(rss[-1] / rss[0] - 1, 4),
        "saturation_offered_per_s": round(capacity * SATURATION_LOAD, 2),
        "saturation": sat,
        "rss_after_saturation_mib": rss_saturated,
        "worker_alive_after": alive,
    }


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--saturation-seconds", type=float, default=60.0)
    parser.add_argument("--clip-seconds", type=float, default=1.0)
    args = parser.parse_args()
    r = measure(args.requests, args.saturation_seconds, args.clip_seconds)
    soak, sat = r["soak"], r["saturation"]
    print(f"capacity {r['capacity_per_s']} clips/s of {r['clip_seconds']:g} s audio; soak at {r['soak_rate_per_s']}/s")
    print(
        f"soak: {soak['requests']} requests in {soak['elapsed_s'] / 60:.1f} min, statuses {soak['statuses']}, "
        f"transport errors {soak['transport_errors'] or 'none'}; p50 {soak['p50_ms']} ms, p99 {soak['p99_ms']} ms"
    )
    print(f"RSS per {BLOCK_REQUESTS} requests (MiB): {r['rss_mib_per_block']}: growth {r['rss_growth_ratio']:+.2%} (target < 5%)")
    print(
        f"saturation at {r['saturation_offered_per_s']}/s: statuses {sat['statuses']}, 429 share {sat['rejected_429_share']:.1%}, "
        f"admitted p99 {sat['p99_ms']} ms (max {sat['max_ms']} ms), RSS {r['rss_after_saturation_mib']} MiB, "
        f"worker alive: {r['worker_alive_after']}"
    )
    common.save(args.json, r)


if __name__ == "__main__":
    main()
