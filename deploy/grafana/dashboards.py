"""Dashboards as code: writes dashboards/*.json for Grafana's file provisioning.

    python deploy/grafana/dashboards.py

A test checks the committed JSON is exactly what this writes, that every panel names a
provisioned datasource, and (against a live Prometheus) that every query returns data.
"""

from __future__ import annotations

import json
from pathlib import Path

from ops import monitoring

OUT = Path(__file__).resolve().parent / "dashboards"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
SELECTOR = 'job="$job", instance=~"$instance"'
STAGES_LEGEND = "{{stage}}"


def target(expr: str, legend: str = "", *, exemplar: bool = False, ref: str = "A") -> dict:
    return {"datasource": PROMETHEUS, "expr": expr, "legendFormat": legend, "refId": ref, "exemplar": exemplar, "range": True}


def panel(
    title: str,
    targets: list[dict],
    *,
    kind: str = "timeseries",
    unit: str = "short",
    description: str = "",
    width: int = 8,
    height: int = 8,
    thresholds: list[tuple[str, float | None]] | None = None,
) -> dict:
    for index, t in enumerate(targets):
        t["refId"] = chr(ord("A") + index)
    steps = [{"color": color, "value": value} for color, value in (thresholds or [("green", None)])]
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
        "gridPos": {"w": width, "h": height},
    }


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def layout(panels: list[dict]) -> list[dict]:
    x = y = row_height = 0
    for index, p in enumerate(panels):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24:
            x, y, row_height = 0, y + row_height, 0
        p["gridPos"].update(x=x, y=y)
        p["id"] = index + 1
        x += w
        row_height = max(row_height, h)
    return panels


def variables(extra: list[dict] | None = None) -> dict:
    def query_variable(name: str, query: str, multi: bool) -> dict:
        return {
            "name": name,
            "label": name,
            "type": "query",
            "datasource": PROMETHEUS,
            "query": {"query": query, "refId": name},
            "definition": query,
            "refresh": 2,
            "includeAll": multi,
            "multi": multi,
            "allValue": ".*" if multi else None,
            "sort": 1,
            "current": {},
        }

    return {
        "list": [
            query_variable("job", "label_values(enhancement_build_info, job)", False),
            query_variable("instance", 'label_values(enhancement_build_info{job="$job"}, instance)', True),
            *(extra or []),
        ]
    }


def dashboard(uid: str, title: str, panels: list[dict], extra_variables: list[dict] | None = None) -> dict:
    return {
        "uid": uid,
        "title": title,
        "tags": ["enhancement-worker"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": variables(extra_variables),
        "annotations": {"list": []},
        "links": [{"title": "Runbook", "url": monitoring.RUNBOOK_URL_BASE, "type": "link"}],
        "panels": layout(panels),
    }


def mean(metric: str, by: str = "") -> str:
    """The mean of a histogram over the panel's rate interval, from its _sum and _count."""
    group = f" by ({by})" if by else ""
    rate = "[$__rate_interval]"
    return f"sum{group} (rate({metric}_sum{{{SELECTOR}}}{rate})) / sum{group} (rate({metric}_count{{{SELECTOR}}}{rate}))"


def quantile(q: float, metric: str, by: str = "") -> str:
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{SELECTOR}}}[$__rate_interval])))"


def overview() -> dict:
    rate = "[$__rate_interval]"
    panels = [
        row("Throughput and outcomes"),
        panel(
            "Clips per second by outcome",
            [target(f"sum by (outcome) (rate(enhancement_requests_total{{{SELECTOR}}}{rate}))", "{{outcome}}")],
            unit="reqps",
            description="Finished clips: success, degraded (a fallback ran), rejected (bad input), failed.",
        ),
        panel(
            "Success ratio (rejections excluded)",
            [
                target(
                    f'sum(rate(enhancement_requests_total{{{SELECTOR}, outcome="success"}}{rate}))'
                    f' / sum(rate(enhancement_requests_total{{{SELECTOR}, outcome!="rejected"}}{rate}))'
                )
            ],
            kind="stat",
            unit="percentunit",
            thresholds=[("red", None), ("orange", 0.95), ("green", 0.99)],
        ),
        panel(
            "Rejections by reason",
            [target(f'sum by (reason) (rate(enhancement_stage_errors_total{{{SELECTOR}, stage="decode"}}{rate}))', "{{reason}}")],
            unit="reqps",
        ),
        row("Latency"),
        panel(
            "Clip latency p50 / p95 / p99 (exemplars link to traces)",
            [
                target(quantile(0.5, "enhancement_request_duration_seconds"), "p50", exemplar=True),
                target(quantile(0.95, "enhancement_request_duration_seconds"), "p95", exemplar=True),
                target(quantile(0.99, "enhancement_request_duration_seconds"), "p99", exemplar=True),
            ],
            unit="s",
            width=12,
        ),
        panel(
            "Stage latency p95 (exemplars link to traces)",
            [target(quantile(0.95, "enhancement_stage_duration_seconds", "stage"), STAGES_LEGEND, exemplar=True)],
            unit="s",
            width=12,
        ),
        panel("Stage latency p50", [target(quantile(0.5, "enhancement_stage_duration_seconds", "stage"), STAGES_LEGEND)], unit="s"),
        panel("Stage latency p99", [target(quantile(0.99, "enhancement_stage_duration_seconds", "stage"), STAGES_LEGEND)], unit="s"),
        panel(
            "Real-time factor (processing / audio time)",
            [
                target(
                    mean("enhancement_real_time_factor"),
                    "mean RTF",
                )
            ],
            unit="short",
            thresholds=[("green", None), ("orange", 0.5), ("red", 1.0)],
        ),
        row("Queue and resilience"),
        panel(
            "Queue depth, capacity and in flight",
            [
                target(f"sum(enhancement_queue_depth{{{SELECTOR}}})", "queued"),
                target(f"sum(enhancement_queue_capacity{{{SELECTOR}}})", "capacity"),
                target(f"sum(enhancement_inflight_requests{{{SELECTOR}}})", "in flight"),
            ],
        ),
        panel(
            "Circuit breaker state (0 closed, 1 half-open, 2 open)",
            [target(f"max by (breaker) (enhancement_circuit_breaker_state{{{SELECTOR}}})", "{{breaker}}")],
            kind="stat",
            thresholds=[("green", None), ("orange", 1), ("red", 2)],
        ),
        panel(
            "Fallbacks by stage and reason",
            [
                target(
                    f"sum by (stage, to_method, reason) (rate(enhancement_fallbacks_total{{{SELECTOR}}}{rate}))",
                    "{{stage}} -> {{to_method}} ({{reason}})",
                )
            ],
            unit="reqps",
        ),
        panel(
            "Stage errors by reason",
            [target(f"sum by (stage, reason) (rate(enhancement_stage_errors_total{{{SELECTOR}}}{rate}))", "{{stage}}: {{reason}}")],
            unit="reqps",
            width=24,
        ),
        row("Interruption patterns"),
        panel(
            "Events detected per second by kind",
            [target(f"sum by (pattern) (rate(enhancement_patterns_detected_total{{{SELECTOR}}}{rate}))", "{{pattern}}")],
            unit="short",
            width=12,
        ),
        panel(
            "Mean detector confidence by kind",
            [
                target(
                    mean("enhancement_pattern_confidence", "pattern"),
                    "{{pattern}}",
                )
            ],
            unit="percentunit",
            width=12,
        ),
        row("Loudness"),
        panel("Output loudness p50 (LUFS)", [target(quantile(0.5, "enhancement_output_loudness_lufs"), "p50 LUFS")], unit="short"),
        panel(
            "True peak p99 (dBTP; ceiling -1)",
            [target(quantile(0.99, "enhancement_true_peak_dbtp"), "p99 dBTP")],
            unit="short",
            thresholds=[("green", None), ("red", -1.0)],
        ),
        panel("Limiter gain reduction p95 (dB)", [target(quantile(0.95, "enhancement_limiter_gain_reduction_db"), "p95 dB")], unit="short"),
        row("Quality"),
        panel(
            "SNR improvement p50 (dB, WADA-SNR out minus in)",
            [target(quantile(0.5, "enhancement_snr_improvement_db"), "p50 dB")],
            unit="short",
        ),
        panel("Output SNR p50 (dB)", [target(quantile(0.5, "enhancement_output_snr_db"), "p50 dB")], unit="short"),
        panel(
            "DNSMOS mean by dimension (sampled clips)",
            [
                target(
                    mean("enhancement_dnsmos_score", "dimension"),
                    "{{dimension}}",
                )
            ],
            unit="short",
        ),
        panel(
            "Outputs by quality verdict",
            [target(f"sum by (verdict) (rate(enhancement_output_quality_total{{{SELECTOR}}}{rate}))", "{{verdict}}")],
            unit="reqps",
            width=24,
        ),
    ]
    return dashboard("enhancement-overview", "Enhancement worker: pipeline overview", panels)


def slo() -> dict:
    slo_variable = {
        "name": "slo",
        "label": "SLO",
        "type": "custom",
        "query": "availability,latency,quality",
        "options": [],
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {},
    }
    selector = 'service="enhancement-worker", slo=~"$slo"'
    panels = [
        panel(
            "SLI over 30 days (good share)",
            [target(f"1 - slo:sli_error:ratio_rate30d{{{selector}}}", "{{slo}}")],
            kind="stat",
            unit="percentunit",
            width=8,
        ),
        panel("Objective", [target(f"slo:objective:ratio{{{selector}}}", "{{slo}}")], kind="stat", unit="percentunit", width=8),
        panel(
            "Error budget remaining (30 days)",
            [target(f"slo:period_error_budget_remaining:ratio{{{selector}}}", "{{slo}}")],
            kind="stat",
            unit="percentunit",
            width=8,
            thresholds=[("red", None), ("orange", 0.25), ("green", 0.5)],
        ),
        panel(
            "Burn rate now (5m) against the budget",
            [target(f"slo:current_burn_rate:ratio{{{selector}}}", "{{slo}}")],
            width=12,
            thresholds=[("green", None), ("orange", 1), ("red", 14.4)],
        ),
        panel("Burn rate over 30 days", [target(f"slo:period_burn_rate:ratio{{{selector}}}", "{{slo}}")], width=12),
        panel(
            "Error ratio by window",
            [
                target(f"slo:sli_error:ratio_rate5m{{{selector}}}", "{{slo}} 5m"),
                target(f"slo:sli_error:ratio_rate1h{{{selector}}}", "{{slo}} 1h"),
                target(f"slo:sli_error:ratio_rate6h{{{selector}}}", "{{slo}} 6h"),
                target(f"slo:sli_error:ratio_rate1d{{{selector}}}", "{{slo}} 1d"),
            ],
            unit="percentunit",
            width=24,
        ),
        panel(
            "Burn-rate alerts firing",
            [target(f'sum by (alertname) (ALERTS{{alertstate="firing", {selector}}}) or on() vector(0)', "{{alertname}}")],
            kind="stat",
            width=24,
            description="0 when no SLO alert fires.",
        ),
    ]
    return dashboard("enhancement-slo", "Enhancement worker: SLOs and error budgets", panels, [slo_variable])


def resources() -> dict:
    rate = "[$__rate_interval]"
    panels = [
        panel(
            "Worker CPU (cores)",
            [target(f"sum by (instance) (rate(process_cpu_seconds_total{{{SELECTOR}}}[$__rate_interval]))", "{{instance}}")],
        ),
        panel(
            "Host CPU busy",
            [
                target(
                    f'1 - sum by (instance) (rate(enhancement_system_cpu_seconds_total{{{SELECTOR}, mode="idle"}}{rate}))'
                    f" / sum by (instance) (rate(enhancement_system_cpu_seconds_total{{{SELECTOR}}}{rate}))",
                    "{{instance}}",
                )
            ],
            unit="percentunit",
        ),
        panel(
            "Worker resident memory",
            [target(f"sum by (instance) (process_resident_memory_bytes{{{SELECTOR}}})", "{{instance}}")],
            unit="bytes",
            thresholds=[("green", None), ("red", 8e9)],
        ),
        panel(
            "Host memory available",
            [target(f"min by (instance) (enhancement_system_memory_available_bytes{{{SELECTOR}}})", "{{instance}}")],
            unit="bytes",
        ),
        panel(
            "GPU memory used",
            [target(f"sum by (instance, gpu) (enhancement_gpu_memory_used_bytes{{{SELECTOR}}})", "{{instance}} gpu {{gpu}}")],
            unit="bytes",
            description="Absent on workers without a GPU.",
        ),
        panel(
            "GPU busy",
            [target(f"max by (instance, gpu) (enhancement_gpu_utilization_ratio{{{SELECTOR}}})", "{{instance}} gpu {{gpu}}")],
            unit="percentunit",
            description="Absent on workers without a GPU.",
        ),
        panel(
            "Model loaded",
            [target(f"max by (instance, model) (enhancement_model_loaded{{{SELECTOR}}})", "{{model}}")],
            kind="stat",
            thresholds=[("red", None), ("green", 1)],
        ),
        panel(
            "Model load time",
            [target(f"max by (instance) (enhancement_model_load_duration_seconds{{{SELECTOR}}})", "{{instance}}")],
            kind="stat",
            unit="s",
        ),
        panel(
            "Build",
            [
                target(
                    f"max by (instance, version, model, device) (enhancement_build_info{{{SELECTOR}}})",
                    "{{version}} {{model}} on {{device}}",
                )
            ],
            kind="stat",
        ),
        panel(
            "Span export failures per second",
            [
                target(
                    f"sum by (instance) (rate(enhancement_telemetry_export_failures_total{{{SELECTOR}}}[$__rate_interval]))", "{{instance}}"
                )
            ],
            unit="short",
            width=24,
        ),
    ]
    return dashboard("enhancement-resources", "Enhancement worker: resources", panels)


DASHBOARDS = {"overview.json": overview, "slo.json": slo, "resources.json": resources}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2, sort_keys=False) + "\n" for name, build in DASHBOARDS.items()}


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
