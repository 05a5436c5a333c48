"""Prometheus storage per sample, measured on a live TSDB after a fleet's run, and what it means per day.

A fleet of 3 replicas with the stack's own Prometheus (compose's flags: 5 s worker scrape, 90 d
retention) runs under load for ``--minutes``; then a TSDB snapshot writes the head block to disk
as compaction would, and its chunks and index are measured against the samples it holds.

    python -m bench.tsdb_bytes [--minutes 10] [--json out.json]
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

import httpx

from bench import common
from ops import loadgen
from ops.stack import LocalStack

REPLICAS = 3
SCRAPE_SECONDS = 5
RETENTION_DAYS = 90
FLEETS = (1, 10, 100, 1000)
BUDGET_GB_PER_DAY = 1.0


def query(stack: LocalStack, expr: str) -> float:
    result = httpx.get(stack.url("prometheus") + "/api/v1/query", params={"query": expr}, timeout=30).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def snapshot_blocks(stack: LocalStack) -> list[Path]:
    answer = httpx.post(stack.url("prometheus") + "/api/v1/admin/tsdb/snapshot", timeout=120).json()
    folder = stack.workdir / "prometheus-data" / "snapshots" / answer["data"]["name"]
    return [meta.parent for meta in folder.glob("*/meta.json")]


def measure(minutes: float) -> dict:
    stack = LocalStack(Path(tempfile.mkdtemp(prefix="tsdb-")), replicas=REPLICAS, prometheus_flags=["--web.enable-admin-api"]).start()
    stop = threading.Event()
    try:
        clips = loadgen.load_corpus(None, count=6, seconds=4.0)
        load = threading.Thread(
            target=loadgen.run,
            args=(stack.service_url,),
            kwargs={"rate": 2.0, "duration_s": minutes * 60, "clips": clips, "progress": False, "stop": stop, "jobs_share": 0.2},
        )
        load.start()
        load.join()
        worker_series = query(stack, 'count({job="enhancement-worker"})')
        all_series = query(stack, "prometheus_tsdb_head_series")
        blocks = snapshot_blocks(stack)
        samples = sum(json.loads((block / "meta.json").read_text())["stats"]["numSamples"] for block in blocks)
        chunk_bytes = sum(f.stat().st_size for block in blocks for f in (block / "chunks").iterdir())
        index_bytes = sum((block / "index").stat().st_size for block in blocks)
    finally:
        stop.set()
        stack.stop()
    per_sample = chunk_bytes / samples
    series_per_replica = worker_series / REPLICAS
    # The index grows with series, not samples: count it once per 2-hour block (12 a day), an upper
    # bound, since compaction later merges blocks and their indexes.
    index_per_series_block = index_bytes / all_series
    daily_bytes_per_replica = series_per_replica * (86400 / SCRAPE_SECONDS * per_sample + 12 * index_per_series_block)
    per_day = {str(n): round(daily_bytes_per_replica * n / 1e9, 3) for n in FLEETS}
    return {
        "minutes": minutes,
        "samples": samples,
        "chunk_bytes": chunk_bytes,
        "index_bytes": index_bytes,
        "bytes_per_sample_chunks": round(per_sample, 3),
        "index_bytes_per_series_per_block": round(index_per_series_block, 1),
        "series_per_replica": round(series_per_replica),
        "series_in_prometheus": round(all_series),
        "worker_gb_per_day_by_replicas": per_day,
        "worker_gb_for_retention_by_replicas": {n: round(gb * RETENTION_DAYS, 1) for n, gb in per_day.items()},
    }


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    r = measure(args.minutes)
    print(
        f"{r['samples']:,} samples in {r['minutes']:g} min: {r['bytes_per_sample_chunks']} bytes/sample in chunks, "
        f"index {r['index_bytes_per_series_per_block']} bytes per series per block"
    )
    print(f"{r['series_per_replica']} series per replica at a {SCRAPE_SECONDS} s scrape")
    for n, gb in r["worker_gb_per_day_by_replicas"].items():
        verdict = "within" if gb < BUDGET_GB_PER_DAY else "over"
        kept = r["worker_gb_for_retention_by_replicas"][n]
        print(f"  {n:>5} replicas: {gb:>8} GB/day, {kept:>8} GB for {RETENTION_DAYS} days ({verdict} 1 GB/day)")
    common.save(args.json, r)


if __name__ == "__main__":
    main()
