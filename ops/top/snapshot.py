"""What the screen shows, computed from two readings of a replica (or one, since it started).

With a previous reading, counters and histograms are taken as the difference between the two:
rates and quantiles over the refresh interval, as Prometheus's rate() would give. Without one
(the first refresh, or ``--once``), they are the totals since the worker started.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from enhancement.result import STAGES
from ops.top.sources import Samples

OUTCOMES = ("success", "degraded", "rejected", "failed")
BREAKER_STATES = {0: "closed", 1: "half-open", 2: "open"}
# The thresholds the alert rules use (deploy/prometheus/src/alerts.yml, slo_rules.py).
SUCCESS_TARGET = 0.95
QUEUE_FILL_ALERT = 0.8
TRUE_PEAK_CEILING_DBTP = -1.0
CONFIDENCE_ALERT = 0.5
FALLBACK_RATIO_ALERT = 0.1


def _matches(labels: dict[str, str], match: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in match.items())


def total(samples: Samples, name: str, **match: str) -> float:
    return sum(value for labels, value in samples.get(name, []) if _matches(labels, match))


def by_label(samples: Samples, name: str, label: str, **match: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for labels, value in samples.get(name, []):
        if _matches(labels, match) and label in labels:
            found[labels[label]] = found.get(labels[label], 0.0) + value
    return found


def difference(current: Samples, previous: Samples | None) -> Samples:
    """Counter and histogram samples as increases since the previous reading; gauges as they are.

    A counter lower than before means the worker restarted: its value since then is the increase.
    """
    if previous is None:
        return current
    before = {(name, tuple(sorted(labels.items()))): value for name, rows in previous.items() for labels, value in rows}
    out: Samples = {}
    for name, rows in current.items():
        cumulative = name.endswith(("_total", "_bucket", "_count", "_sum")) and not name.endswith("_created")
        for labels, value in rows:
            if cumulative:
                old = before.get((name, tuple(sorted(labels.items()))), 0.0)
                value = value - old if value >= old else value
            out.setdefault(name, []).append((labels, value))
    return out


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """histogram_quantile over cumulative bucket counts, interpolating inside the bucket as Prometheus does."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    count = buckets[bounds[-1]]
    if count <= 0:
        return None
    rank = q * count
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if math.isinf(bound):
                return lower_bound
            inside = buckets[bound] - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / inside if inside else 1.0)
        lower_bound, lower_count = bound, buckets[bound]
    return bounds[-2] if len(bounds) > 1 else None


def histogram(samples: Samples, name: str, **match: str) -> dict[float, float]:
    buckets: dict[float, float] = {}
    for labels, value in samples.get(name + "_bucket", []):
        if _matches(labels, match):
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    return buckets


def mean(samples: Samples, name: str, **match: str) -> float | None:
    count = total(samples, name + "_count", **match)
    return total(samples, name + "_sum", **match) / count if count else None


@dataclass
class StageView:
    name: str
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    share: float | None


@dataclass
class ReplicaView:
    """One replica over one refresh interval (``seconds``), or since its start when ``seconds`` is None."""

    instance: str
    seconds: float | None
    ready: bool | None
    model_loaded: bool
    breaker: str
    queue_depth: float
    queue_capacity: float
    inflight: float
    outcomes: dict[str, float]
    p95_s: float | None
    rtf: float | None
    stages: list[StageView]
    patterns: dict[str, float]
    confidence: dict[str, float]
    snr_improvement_db: float | None
    dnsmos: dict[str, float]
    fallbacks: dict[str, float]
    gain_db: float | None
    output_lufs: float | None
    true_peak_p99_dbtp: float | None
    limiter_db: float | None
    within_ceiling: float | None
    cpu_cores: float | None
    rss_bytes: float | None
    gpu_bytes: float | None
    http_codes: dict[str, float] = field(default_factory=dict)

    @property
    def clips(self) -> float:
        return sum(self.outcomes.values())

    @property
    def clips_per_minute(self) -> float | None:
        return self.clips * 60 / self.seconds if self.seconds else None

    @property
    def success_ratio(self) -> float | None:
        judged = self.clips - self.outcomes.get("rejected", 0.0)
        return self.outcomes.get("success", 0.0) / judged if judged else None

    @property
    def queue_fill(self) -> float | None:
        return self.queue_depth / self.queue_capacity if self.queue_capacity else None

    @property
    def fallback_ratio(self) -> float | None:
        judged = self.clips - self.outcomes.get("rejected", 0.0)
        return sum(self.fallbacks.values()) / judged if judged else None


def view(instance: str, current: Samples, previous: Samples | None, seconds: float | None, ready: bool | None) -> ReplicaView:
    d = difference(current, previous)
    stage_sums = by_label(d, "enhancement_stage_duration_seconds_sum", "stage")
    all_stage_time = sum(stage_sums.values())
    ran = {stage for stage, count in by_label(d, "enhancement_stage_duration_seconds_count", "stage").items() if count}
    stage_names = [s for s in STAGES if s in ran] + sorted(ran - set(STAGES))
    stages = []
    for stage in stage_names:
        buckets = histogram(d, "enhancement_stage_duration_seconds", stage=stage)
        stages.append(
            StageView(
                stage,
                quantile(0.5, buckets),
                quantile(0.95, buckets),
                quantile(0.99, buckets),
                stage_sums[stage] / all_stage_time if all_stage_time else None,
            )
        )
    confidence_counts = by_label(d, "enhancement_pattern_confidence_count", "pattern")
    confidence_sums = by_label(d, "enhancement_pattern_confidence_sum", "pattern")
    dnsmos_counts = by_label(d, "enhancement_dnsmos_score_count", "dimension")
    dnsmos_sums = by_label(d, "enhancement_dnsmos_score_sum", "dimension")
    peaks = histogram(d, "enhancement_true_peak_dbtp")
    peak_count = max(peaks.values(), default=0.0)
    gpu = current.get("enhancement_gpu_memory_used_bytes")
    cpu = total(d, "process_cpu_seconds_total")
    breaker = max((value for _, value in current.get("enhancement_circuit_breaker_state", [])), default=0.0)
    return ReplicaView(
        instance=instance,
        seconds=seconds,
        ready=ready,
        model_loaded=total(current, "enhancement_model_loaded") >= 1,
        breaker=BREAKER_STATES.get(int(breaker), str(breaker)),
        queue_depth=total(current, "enhancement_queue_depth"),
        queue_capacity=total(current, "enhancement_queue_capacity"),
        inflight=total(current, "enhancement_inflight_requests"),
        outcomes={o: by_label(d, "enhancement_requests_total", "outcome").get(o, 0.0) for o in OUTCOMES},
        p95_s=quantile(0.95, histogram(d, "enhancement_request_duration_seconds")),
        rtf=mean(d, "enhancement_real_time_factor"),
        stages=stages,
        patterns={k: v for k, v in by_label(d, "enhancement_patterns_detected_total", "pattern").items() if v},
        confidence={k: confidence_sums[k] / n for k, n in confidence_counts.items() if n},
        # Histograms with negative buckets carry no _sum (OpenMetrics), so these are medians.
        snr_improvement_db=quantile(0.5, histogram(d, "enhancement_snr_improvement_db")),
        dnsmos={k: dnsmos_sums[k] / n for k, n in dnsmos_counts.items() if n},
        fallbacks={k: v for k, v in by_label(d, "enhancement_fallbacks_total", "reason").items() if v},
        gain_db=quantile(0.5, histogram(d, "enhancement_loudness_gain_db")),
        output_lufs=quantile(0.5, histogram(d, "enhancement_output_loudness_lufs")),
        true_peak_p99_dbtp=quantile(0.99, peaks),
        limiter_db=quantile(0.95, histogram(d, "enhancement_limiter_gain_reduction_db")),
        within_ceiling=peaks.get(TRUE_PEAK_CEILING_DBTP, 0.0) / peak_count if peak_count else None,
        cpu_cores=cpu / seconds if seconds else None,
        rss_bytes=total(current, "process_resident_memory_bytes") or None,
        gpu_bytes=sum(value for _, value in gpu) if gpu else None,
        http_codes=_client_codes(d),
    )


def _client_codes(samples: Samples) -> dict[str, float]:
    """Answers to clients, by status code: the /v1 routes, not probes and scrapes."""
    codes: dict[str, float] = {}
    for labels, value in samples.get("enhancement_http_responses_total", []):
        if value and labels.get("route", "").startswith("/v1/"):
            codes[labels["code"]] = codes.get(labels["code"], 0.0) + value
    return codes
