"""Regression check: compare fresh benchmark figures with the committed baseline.

    python -m bench.check [--baseline bench/baseline.json] [--results bench/results/latest.json]

Each figure has a direction and a tolerance: quality may not fall by more than 2%,
throughput ratios by more than 10%, memory may not grow by more than 20%; figures that sit
near zero (overhead, RSS growth) get an absolute allowance instead. Every regression is
named; any regression exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Figure:
    path: str  # dotted path into the results
    better: str  # "higher" or "lower"
    relative: float = 0.0  # allowed change as a share of the baseline
    absolute: float = 0.0  # allowed change in the figure's own unit


FIGURES = (
    Figure("quality.metricgan_shipped.pesq_wb@5dB", "higher", relative=0.02),
    Figure("quality.metricgan_shipped.si_snr_db@5dB", "higher", relative=0.02),
    Figure("quality.metricgan_shipped.stoi", "higher", relative=0.02),
    Figure("quality.metricgan_shipped.dnsmos_ovrl", "higher", relative=0.02),
    Figure("quality.wiener_fallback.pesq_wb", "higher", relative=0.02),
    Figure("pattern_accuracy.click.f1", "higher", relative=0.02),
    Figure("pattern_accuracy.burst.f1", "higher", relative=0.02),
    Figure("pattern_accuracy.dropout.f1", "higher", relative=0.02),
    Figure("pattern_accuracy.clipping.f1", "higher", relative=0.02),
    Figure("throughput.3s.pipeline_vs_model_throughput", "higher", relative=0.10),
    Figure("throughput.10s.pipeline_vs_model_throughput", "higher", relative=0.10),
    Figure("throughput.30s.pipeline_vs_model_throughput", "higher", relative=0.10),
    Figure("telemetry_overhead.overhead_ratio", "lower", absolute=0.02),
    Figure("memory.rss_after_model_mib", "lower", relative=0.20),
    Figure("memory.growth_ratio", "lower", absolute=0.05),
    # Wall-clock figures from a shared machine move a lot between runs; only gross slips count.
    Figure("scrape_cost.text.p99_ms", "lower", relative=1.0),
    Figure("scale_out.fleets.2.speedup", "higher", relative=0.15),
    # A fleet under 1,000 connections at once: every one answered (a transport error is a regression).
    Figure("concurrency.sync.transport_error_count", "lower", absolute=0.5),
)


def lookup(results: dict, path: str) -> float | None:
    node = results
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node)


def unchecked(baseline: dict, figures: tuple[Figure, ...] = FIGURES) -> list[str]:
    """Figures the baseline lacks, so that no run can be held to them: refresh the baseline."""
    return [figure.path for figure in figures if lookup(baseline, figure.path) is None]


def compare(baseline: dict, fresh: dict, figures: tuple[Figure, ...] = FIGURES) -> list[str]:
    """Human-readable regressions, each starting with the figure's path; empty when all are within tolerance."""
    problems = []
    for figure in figures:
        before, after = lookup(baseline, figure.path), lookup(fresh, figure.path)
        if before is None:
            continue  # reported by unchecked()
        if after is None:
            problems.append(f"{figure.path}: missing from the fresh results (baseline {before:g})")
            continue
        allowance = abs(before) * figure.relative + figure.absolute
        worse = before - after if figure.better == "higher" else after - before
        if worse > allowance:
            change = f"{(after - before) / abs(before):+.1%}" if before else f"{after - before:+g}"
            problems.append(f"{figure.path}: {before:g} -> {after:g} ({change}; {figure.better} is better, allowed {allowance:g})")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, default=HERE / "baseline.json")
    parser.add_argument("--results", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args()
    baseline = json.loads(args.baseline.read_text())
    problems = compare(baseline, json.loads(args.results.read_text()))
    missing = unchecked(baseline)
    for path in missing:
        print(f"  NOT CHECKED {path}: not in {args.baseline.name}; refresh it with the figures of a good run")
    if problems:
        print(f"{len(problems)} regression(s) against {args.baseline.name}:")
        for problem in problems:
            print(f"  REGRESSION {problem}")
        sys.exit(1)
    print(f"no regression against {args.baseline.name} ({len(FIGURES) - len(missing)} of {len(FIGURES)} figures checked)")


if __name__ == "__main__":
    main()
