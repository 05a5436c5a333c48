"""The regression check's comparison logic, on synthetic baselines."""

import copy
import json
import subprocess
import sys

import pytest

from bench.check import FIGURES, Figure, compare, unchecked

BASELINE = {
    "quality": {"metricgan_shipped": {"pesq_wb@5dB": 1.70, "si_snr_db@5dB": 12.0}},
    "throughput": {"10s": {"pipeline_vs_model_throughput": 0.60}},
    "memory": {"rss_after_model_mib": 700.0, "growth_ratio": 0.01},
    "telemetry_overhead": {"overhead_ratio": 0.004},
}


def changed(path: str, value: float) -> dict:
    fresh = copy.deepcopy(BASELINE)
    node = fresh
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    return fresh


def test_identical_results_pass():
    assert compare(BASELINE, BASELINE) == []


def test_a_deliberately_slowed_pipeline_is_named():
    problems = compare(BASELINE, changed("throughput.10s.pipeline_vs_model_throughput", 0.48))
    assert len(problems) == 1 and problems[0].startswith("throughput.10s.pipeline_vs_model_throughput: 0.6 -> 0.48 (-20.0%")


def test_changes_within_tolerance_pass():
    assert compare(BASELINE, changed("throughput.10s.pipeline_vs_model_throughput", 0.55)) == []
    assert compare(BASELINE, changed("quality.metricgan_shipped.pesq_wb@5dB", 1.68)) == []
    assert compare(BASELINE, changed("memory.rss_after_model_mib", 830.0)) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("quality.metricgan_shipped.pesq_wb@5dB", 1.64),
        ("memory.rss_after_model_mib", 860.0),
        ("memory.growth_ratio", 0.08),
        ("telemetry_overhead.overhead_ratio", 0.05),
    ],
)
def test_quality_memory_and_overhead_regressions_are_caught_and_named(path, value):
    [problem] = compare(BASELINE, changed(path, value))
    assert problem.startswith(f"{path}: ")


def test_improvements_never_count_as_regressions():
    assert compare(BASELINE, changed("throughput.10s.pipeline_vs_model_throughput", 0.95)) == []
    assert compare(BASELINE, changed("memory.growth_ratio", -0.02)) == []


def test_a_figure_missing_from_fresh_results_is_a_regression():
    fresh = copy.deepcopy(BASELINE)
    del fresh["quality"]
    problems = compare(BASELINE, fresh)
    assert any("missing from the fresh results" in p for p in problems)


def test_a_figure_missing_from_the_baseline_is_reported_not_skipped(tmp_path):
    baseline = copy.deepcopy(BASELINE)
    del baseline["memory"]
    newly = set(unchecked(baseline)) - set(unchecked(BASELINE))
    assert newly == {"memory.rss_after_model_mib", "memory.growth_ratio"}
    (tmp_path / "baseline.json").write_text(json.dumps(baseline))
    (tmp_path / "latest.json").write_text(json.dumps(BASELINE))
    run = subprocess.run(
        [sys.executable, "-m", "bench.check", "--baseline", str(tmp_path / "baseline.json"), "--results", str(tmp_path / "latest.json")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0 and "NOT CHECKED memory.rss_after_model_mib" in run.stdout, run.stdout


def test_the_command_exits_non_zero_and_names_each_regression(tmp_path):
    baseline, results = tmp_path / "baseline.json", tmp_path / "latest.json"
    baseline.write_text(json.dumps(BASELINE))
    results.write_text(json.dumps(changed("quality.metricgan_shipped.si_snr_db@5dB", 10.0)))
    run = subprocess.run(
        [sys.executable, "-m", "bench.check", "--baseline", str(baseline), "--results", str(results)], capture_output=True, text=True
    )
    assert run.returncode == 1 and "REGRESSION quality.metricgan_shipped.si_snr_db@5dB: 12 -> 10" in run.stdout
    results.write_text(json.dumps(BASELINE))
    ok = subprocess.run(
        [sys.executable, "-m", "bench.check", "--baseline", str(baseline), "--results", str(results)], capture_output=True, text=True
    )
    assert ok.returncode == 0 and "no regression" in ok.stdout


def test_every_checked_figure_has_a_direction():
    assert all(isinstance(f, Figure) and f.better in ("higher", "lower") and (f.relative or f.absolute) for f in FIGURES)
