"""1,000 concurrent connections against the fleet: admitted work is served, the excess is told
to come back (429 with Retry-After), nothing crashes and memory stays bounded.

Three replicas share Redis behind nginx (as `make demo` runs them). Two waves, each of 1,000
requests opened at the same moment, each on its own connection: 1 s clips to /v1/enhance,
then to /v1/jobs (whose admitted jobs are then followed until collected). Worker and nginx
memory is sampled every 0.2 s throughout.

    python -m bench.concurrency [--connections 1000] [--json out.json]
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

from bench import common
from ops import loadgen
from ops.stack import LocalStack

REPLICAS = 3
WARM_UP_CLIPS = 30
WAV = {"content-type": "audio/wav"}


class MemoryWatch:
    """Peak RSS per process name while running, sampled in a thread."""

    def __init__(self, stack: LocalStack) -> None:
        self._processes = {name: psutil.Process(p.pid) for name, p in stack.processes if name.startswith(("worker", "nginx", "redis"))}
        self.before = self.read()
        self.peak = dict(self.before)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def read(self) -> dict[str, float]:
        readings = {}
        for name, process in self._processes.items():
            family = [process, *process.children(recursive=True)]  # nginx's workers are children of its master
            readings[name] = sum(p.memory_info().rss for p in family) / 2**20
        return readings

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for name, rss in self.read().items():
                self.peak[name] = max(self.peak[name], rss)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def wave(url: str, path: str, body: bytes, connections: int) -> tuple[Counter, Counter, list[httpx.Response], float]:
    """``connections`` requests at once, each on its own connection."""
    statuses: Counter = Counter()
    errors: Counter = Counter()
    answers: list[httpx.Response] = []
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:

        async def one() -> None:
            try:
                answer = await client.post(url + path, content=body, headers=WAV)
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
                return
            statuses[answer.status_code] += 1
            answers.append(answer)

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(connections)))
    return statuses, errors, answers, time.perf_counter() - started


def follow(url: str, job_ids: list[str], timeout_s: float = 300.0) -> Counter:
    ends: Counter = Counter()
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=30) as client:
        for job_id in job_ids:
            while True:
                view = client.get(f"{url}/v1/jobs/{job_id}").json()
                if view["state"] == "done":
                    ends[view["outcome"]] += 1
                    break
                if time.monotonic() > deadline:
                    ends["not done"] += 1
                    break
                time.sleep(0.1)
    return ends


def summarise(statuses: Counter, errors: Counter, answers: list[httpx.Response], elapsed: float) -> dict:
    refused = [a for a in answers if a.status_code == 429]
    return {
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "transport_errors": dict(errors),
        "transport_error_count": sum(errors.values()),
        "429_with_retry_after": sum(1 for a in refused if a.headers.get("retry-after")),
        "429_with_reason": sum(1 for a in refused if a.json().get("reason") == "queue_full"),
        "seconds": round(elapsed, 1),
    }


def measure(connections: int) -> dict:
    stack = LocalStack(Path(tempfile.mkdtemp(prefix="concurrency-")), replicas=REPLICAS, monitoring=False).start()
    clip = loadgen.load_corpus(None, count=1, seconds=1.0)[0]
    results: dict = {"connections": connections, "replicas": REPLICAS}
    try:
        # Each replica runs 30 clips first, so "before" is a warm worker: model run, buffers allocated,
        # and DNSMOS (scored on a 10% sample) loaded.
        with httpx.Client(timeout=120) as client:
            for name in stack.workers:
                for _ in range(WARM_UP_CLIPS):
                    client.post(stack.url(name) + "/v1/enhance", content=clip, headers=WAV).raise_for_status()
        with MemoryWatch(stack) as memory:
            sync = asyncio.run(wave(stack.service_url, "/v1/enhance", clip, connections))
            results["sync"] = summarise(*sync)
            jobs = asyncio.run(wave(stack.service_url, "/v1/jobs", clip, connections))
            results["jobs"] = summarise(*jobs)
            admitted = [a.json()["id"] for a in jobs[2] if a.status_code == 202]
            results["jobs"]["admitted_outcomes"] = dict(follow(stack.service_url, admitted))
        results["all_ready_after"] = all(httpx.get(stack.url(n) + "/readyz", timeout=5).status_code == 200 for n in stack.workers)
        results["processes_alive_after"] = all(p.poll() is None for _, p in stack.processes)
        after = memory.read()
        results["rss_mib"] = {
            name: {"before": round(memory.before[name]), "peak": round(memory.peak[name]), "after": round(after[name])} for name in after
        }
    finally:
        stack.stop()
    return results


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--connections", type=int, default=1000)
    args = parser.parse_args()
    results = measure(args.connections)
    for kind in ("sync", "jobs"):
        r = results[kind]
        print(
            f"{kind:<5} {results['connections']} at once: statuses {r['statuses']}, transport errors {r['transport_errors'] or 0}, "
            f"429 with Retry-After {r['429_with_retry_after']}, in {r['seconds']} s"
        )
    print(f"admitted jobs ended: {results['jobs']['admitted_outcomes']}")
    print(f"all replicas ready after: {results['all_ready_after']}; every process alive: {results['processes_alive_after']}")
    for name, rss in results["rss_mib"].items():
        print(f"  {name:<9} RSS MiB before {rss['before']:>5}  peak {rss['peak']:>5}  after {rss['after']:>5}")
    common.save(args.json, results)


if __name__ == "__main__":
    main()
