"""Scale-out: the fleet's throughput with 1, 2 and 3 replicas behind nginx, against one replica.

Each fleet runs on this machine (workers sharing Redis behind nginx, as `make demo` runs
them), with torch threads per replica = cores // replicas (at least 1). Load is closed-loop
at saturation: 4 clients per replica posting 5 s clips to /v1/enhance back to back, so
every replica always has work queued. Throughput is clips answered per second.

    python -m bench.scale_out [--seconds 30] [--replicas 1 2 3] [--json out.json]
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

from bench import common
from ops import loadgen
from ops.stack import LocalStack

CLIENTS_PER_REPLICA = 4
WARM_UP_SECONDS = 5.0


def saturate(url: str, clips: list[bytes], clients: int, seconds: float) -> tuple[int, float]:
    """Clips answered 200 by ``clients`` back-to-back clients in ``seconds``, after a warm-up."""
    stop = threading.Event()
    counted = threading.Event()
    done = [0]
    lock = threading.Lock()

    def client(index: int) -> None:
        with httpx.Client(timeout=120) as http:
            while not stop.is_set():
                answer = http.post(url + "/v1/enhance", content=clips[index % len(clips)], headers={"content-type": "audio/wav"})
                if answer.status_code == 200 and counted.is_set() and not stop.is_set():
                    with lock:
                        done[0] += 1

    with ThreadPoolExecutor(clients) as pool:
        for index in range(clients):
            pool.submit(client, index)
        time.sleep(WARM_UP_SECONDS)
        counted.set()
        started = time.perf_counter()
        time.sleep(seconds)
        stop.set()
        elapsed = time.perf_counter() - started
    return done[0], elapsed


def busy_share(before: psutil._common.scputimes, after: psutil._common.scputimes) -> float:
    """Share of the machine's CPU time that was not idle between two readings (warm-up included)."""
    spent = {field: getattr(after, field) - getattr(before, field) for field in after._fields if field not in ("guest", "guest_nice")}
    total = sum(spent.values())
    return 1 - (spent["idle"] + spent.get("iowait", 0.0)) / total if total else 0.0


def measure(replica_counts: list[int], seconds: float) -> dict:
    clips = loadgen.load_corpus(None, count=6, seconds=5.0)
    results: dict = {"cores": os.cpu_count(), "clip_seconds": 5.0, "fleets": {}}
    for replicas in replica_counts:
        # A fleet of one still runs behind nginx with Redis, so only the replica count differs.
        stack = LocalStack(Path(tempfile.mkdtemp(prefix="scale-out-")), replicas=replicas, monitoring=False, as_fleet=True).start()
        try:
            cpu_before = psutil.cpu_times()
            answered, elapsed = saturate(stack.service_url, clips, CLIENTS_PER_REPLICA * replicas, seconds)
            cpu_busy = busy_share(cpu_before, psutil.cpu_times())
            rss = [psutil.Process(p.pid).memory_info().rss / 2**20 for name, p in stack.processes if name.startswith("worker")]
        finally:
            stack.stop()
        results["fleets"][str(replicas)] = {
            "clips_per_s": round(answered / elapsed, 2),
            "audio_seconds_per_s": round(5.0 * answered / elapsed, 1),
            "torch_threads_per_replica": max(1, (os.cpu_count() or 1) // replicas),
            "rss_mib_per_replica": round(sum(rss) / len(rss), 0),
            "machine_cpu_busy": round(cpu_busy, 2),
        }
    base = results["fleets"][str(replica_counts[0])]["clips_per_s"]
    for replicas, fleet in results["fleets"].items():
        fleet["speedup"] = round(fleet["clips_per_s"] / base, 2)
        fleet["efficiency"] = round(fleet["clips_per_s"] / (base * int(replicas) / replica_counts[0]), 2)
    return results


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    results = measure(args.replicas, args.seconds)
    print(f"{results['cores']} cores; 5 s clips, {CLIENTS_PER_REPLICA} closed-loop clients per replica, through nginx")
    header = ("replicas", "clips/s", "audio s/s", "speedup", "efficiency", "threads", "RSS MiB", "CPU busy")
    print(" ".join(f"{name:>10}" for name in header))
    for replicas, r in results["fleets"].items():
        row = (replicas, r["clips_per_s"], r["audio_seconds_per_s"], r["speedup"], r["efficiency"])
        row += (r["torch_threads_per_replica"], r["rss_mib_per_replica"], r["machine_cpu_busy"])
        print(" ".join(f"{value:>10}" for value in row))
    common.save(args.json, results)


if __name__ == "__main__":
    main()
