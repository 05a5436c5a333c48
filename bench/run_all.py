"""Every benchmark in one run: `make bench`. Prints each table and writes
bench/results/<name>.json plus bench/results/latest.json (all figures together).

    python -m bench.run_all [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# name -> (module, full-run arguments, quick-run arguments)
BENCHMARKS = {
    "throughput": ("bench.throughput", ["--repeats", "15"], ["--repeats", "2", "--seconds", "3", "10"]),
    "telemetry_overhead": ("bench.telemetry_overhead", ["--clips", "40"], ["--clips", "6"]),
    "scrape_cost": ("bench.scrape_cost", ["--repeats", "300"], ["--repeats", "30"]),
    "service_load": ("bench.service_load", ["--seconds", "20"], ["--seconds", "5"]),
    "scale_out": ("bench.scale_out", ["--seconds", "30"], ["--seconds", "5", "--replicas", "1", "2"]),
    "concurrency": ("bench.concurrency", ["--connections", "1000"], ["--connections", "200"]),
    "memory": ("bench.memory", ["--requests", "2500", "--seconds", "0.5"], ["--requests", "200", "--seconds", "0.5"]),
    "quality": ("bench.quality", [], []),
    "pattern_accuracy": ("bench.pattern_accuracy", ["--clips", "40"], ["--clips", "8"]),
}


def run(names: list[str], quick: bool) -> dict:
    RESULTS.mkdir(exist_ok=True)
    combined = {}
    for name in names:
        module, full, short = BENCHMARKS[name]
        out = RESULTS / f"{name}.json"
        print(f"\n== {name} ==", flush=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", module, *(short if quick else full), "--json", str(out)], check=True)
        print(f"({time.monotonic() - started:.0f} s)", flush=True)
        combined[name] = json.loads(out.read_text())
    (RESULTS / "latest.json").write_text(json.dumps(combined, indent=2) + "\n")
    return combined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=list(BENCHMARKS))
    args = parser.parse_args()
    started = time.monotonic()
    run(args.only, args.quick)
    print(f"\nall figures in {RESULTS / 'latest.json'} ({(time.monotonic() - started) / 60:.1f} min)")


if __name__ == "__main__":
    main()
