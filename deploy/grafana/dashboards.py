"""Dashboards as code: writes dashboards/*.json for Grafana's file provisioning.

    python deploy/grafana/dashboards.py

Tests check that the committed JSON is exactly what this writes, that it type-checks against
Grafana's own schema (@grafana/schema at the pinned Grafana version, see schema/), that every
query uses every variable of its dashboard, and (against a live Prometheus) that every query
returns data.
"""

from __future__ import annotations

import json
from pathlib import Path

from ops import monitoring

OUT = Path(__file__).resolve().parent / "dashboards"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
ALERTMANAGER = {"type": "alertmanager", "uid": "alertmanager"}
ALERTMANAGER_NAME = "Alertmanager"  # the alert groups panel names its source by datasource name
SELECTOR = 'job="$job", instance=~"$instance"'
SLO_SELECTOR = 'service="$service", slo=~"$slo"'
RATE = "[$__rate_interval]"
STAGES_LEGEND = "{{stage}}"

# Units Grafana knows (https://grafana.com/docs/grafana/latest/panels-visualizations/configure-standard-options/#unit),
# and suffixes where it has none.
LUFS = "suffix: LUFS"
DBTP = "suffix: dBTP"
DB = "dB"
TIMES = "suffix:×"

BREAKER_STATES = {0: ("closed", "green"), 1: ("half-open", "orange"), 2: ("open", "red")}
MODEL_STATES = {0: ("not loaded", "red"), 1: ("loaded", "green")}
# HTTP answers an operator must see at once: shed load and unavailability.
CALLED_OUT_CODES = {"429": "orange", "503": "red"}


def target(expr: str, legend: str = "", *, exemplar: bool = False, heatmap: bool = False) -> dict:
    query = {"datasource": PROMETHEUS, "expr": expr, "legendFormat": legend, "refId": "A", "exemplar": exemplar, "range": True}
    if heatmap:
        query["format"] = "heatmap"
    return query


def value_mappings(states: dict[int, tuple[str, str]]) -> list[dict]:
    options = {str(value): {"text": text, "color": color, "index": index} for index, (value, (text, color)) in enumerate(states.items())}
    return [{"type": "value", "options": options}]


def color_overrides(colors: dict[str, str]) -> list[dict]:
    return [
        {"matcher": {"id": "byName", "options": name}, "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}]}
        for name, color in colors.items()
    ]


def _panel(kind: str, title: str, targets: list[dict], options: dict, defaults: dict, *, description: str, width: int, height: int) -> dict:
    for index, t in enumerate(targets):
        t["refId"] = chr(ord("A") + index)
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "gridPos": {"w": width, "h": height},
    }


def _defaults(unit: str, thresholds: list[tuple[str, float | None]] | None, mappings: list[dict] | None) -> dict:
    steps = [{"color": color, "value": value} for color, value in (thresholds or [("green", None)])]
    defaults: dict = {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if mappings:
        defaults["mappings"] = mappings
    return defaults


def timeseries(
    title: str,
    targets: list[dict],
    *,
    unit: str,
    description: str = "",
    width: int = 8,
    height: int = 8,
    thresholds: list[tuple[str, float | None]] | None = None,
    overrides: list[dict] | None = None,
) -> dict:
    options = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    panel = _panel(
        "timeseries", title, targets, options, _defaults(unit, thresholds, None), description=description, width=width, height=height
    )
    if thresholds:
        panel["fieldConfig"]["defaults"]["custom"] = {"thresholdsStyle": {"mode": "dashed"}}
    panel["fieldConfig"]["overrides"] = overrides or []
    return panel


def stat(
    title: str,
    targets: list[dict],
    *,
    unit: str,
    description: str = "",
    width: int = 6,
    height: int = 5,
    thresholds: list[tuple[str, float | None]] | None = None,
    mappings: list[dict] | None = None,
) -> dict:
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "auto",
        "colorMode": "background" if thresholds or mappings else "none",
        "graphMode": "none",
        "justifyMode": "auto",
        "textMode": "value_and_name" if len(targets) > 1 or targets[0]["legendFormat"].startswith("{{") else "value",
        "showPercentChange": False,
        "wideLayout": True,
    }
    return _panel(
        "stat", title, targets, options, _defaults(unit, thresholds, mappings), description=description, width=width, height=height
    )


def heatmap(title: str, metric: str, *, unit: str, extra_selector: str = "", description: str = "", width: int = 12) -> dict:
    """Bucket counts per interval as a heatmap, with exemplars: a dot links to that clip's trace."""
    selector = SELECTOR + (f", {extra_selector}" if extra_selector else "")
    expr = f"sum by (le) (increase({metric}_bucket{{{selector}}}{RATE}))"
    options = {
        "calculate": False,
        "cellGap": 1,
        "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange", "exponent": 0.5, "reverse": False, "steps": 64},
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "showValue": "never",
        "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
        "yAxis": {"axisPlacement": "left", "unit": unit, "reverse": False},
    }
    return _panel(
        "heatmap",
        title,
        [target(expr, "{{le}}", exemplar=True, heatmap=True)],
        options,
        {"unit": unit},
        description=description,
        width=width,
        height=8,
    )


def alert_groups(title: str, labels: str, *, width: int = 24, height: int = 6) -> dict:
    """The alerts Alertmanager holds right now, filtered to this service."""
    return {
        "type": "alertGroups",
        "title": title,
        "description": "Active alert groups from Alertmanager (silenced and inhibited ones included), for this service.",
        "datasource": ALERTMANAGER,
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"alertmanager": ALERTMANAGER_NAME, "expandAll": True, "labels": labels},
        "gridPos": {"w": width, "h": height},
    }


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def layout(panels: list[dict]) -> list[dict]:
    x = y = row_height = 0
    for index, p in enumerate(panels):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24 or p["type"] == "row":
            x, y, row_height = 0, y + row_height, 0
        p["gridPos"].update(x=x, y=y)
        p["id"] = index + 1
        x += w
        row_height = max(row_height, h)
    return panels


def query_variable(name: str, query: str, *, multi: bool, label: str | None = None) -> dict:
    variable = {
        "name": name,
        "label": label or name,
        "type": "query",
        "datasource": PROMETHEUS,
        "query": {"query": query, "refId": name},
        "refresh": 2,
        "includeAll": multi,
        "multi": multi,
        "sort": 1,
    }
    if multi:
        variable["allValue"] = ".*"
    return variable


def worker_variables(*extra: dict) -> list[dict]:
    """job picks the deployment; instance picks replicas of a fleet, all by default."""
    return [
        query_variable("job", "label_values(enhancement_build_info, job)", multi=False),
        query_variable("instance", 'label_values(enhancement_build_info{job="$job"}, instance)', multi=True),
        *extra,
    ]


def dashboard(uid: str, title: str, panels: list[dict], variables: list[dict]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "tags": ["enhancement-worker"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        # Provisioned with allowUiUpdates: false, so an edit could not be saved anyway: say so.
        "editable": False,
        "graphTooltip": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [
            {
                "title": "Runbook",
                "tooltip": "What each alert means and what to do",
                "url": monitoring.RUNBOOK_URL_BASE,
                "type": "link",
                "icon": "doc",
                "asDropdown": False,
                "includeVars": False,
                "keepTime": False,
                "tags": [],
                "targetBlank": True,
            }
        ],
        "panels": layout(panels),
    }


def mean(metric: str, by: str = "", selector: str = SELECTOR) -> str:
    """The mean of a histogram over the panel's rate interval, from its _sum and _count."""
    group = f" by ({by})" if by else ""
    return f"sum{group} (rate({metric}_sum{{{selector}}}{RATE})) / sum{group} (rate({metric}_count{{{selector}}}{RATE}))"


def quantile(q: float, metric: str, by: str = "", selector: str = SELECTOR) -> str:
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{selector}}}{RATE})))"


def rate_by(metric: str, by: str, selector: str = SELECTOR) -> str:
    return f"sum by ({by}) (rate({metric}{{{selector}}}{RATE}))"


def status_panels() -> list[dict]:
    return [
        row("Status"),
        stat(
            "Replicas with the model loaded",
            [target(f"sum(enhancement_model_loaded{{{SELECTOR}}})", "loaded"), target(f"count(up{{{SELECTOR}}})", "replicas")],
            unit="none",
            description="A replica without its model answers 503 on /readyz and refuses clips.",
        ),
        stat(
            "Model breaker, worst replica",
            [target(f"max(enhancement_circuit_breaker_state{{{SELECTOR}}})", "breaker")],
            unit="none",
            mappings=value_mappings(BREAKER_STATES),
            description="Open: clips are served by the DSP fallback while the model is failing.",
        ),
        stat(
            "Queue: waiting / capacity",
            [target(f"sum(enhancement_queue_depth{{{SELECTOR}}}) / sum(enhancement_queue_capacity{{{SELECTOR}}})", "queue")],
            unit="percentunit",
            thresholds=[("green", None), ("orange", 0.5), ("red", 0.8)],
        ),
        stat(
            "Clips in flight",
            [target(f"sum(enhancement_inflight_requests{{{SELECTOR}}})", "in flight")],
            unit="none",
        ),
        alert_groups("Active alerts", f"service={monitoring.SERVICE}"),
    ]


# Fleet gauges come from whichever replica holds the reporter lease: filter by job, never by
# instance, or picking one replica would hide them. Absent on a worker with the in-memory store.
FLEET_SELECTOR = 'job="$job"'
FLEET_GAUGES = ("enhancement_jobs_backlog", "enhancement_jobs_claimed", "enhancement_jobs_oldest_age_seconds")
SHARED_QUEUE_ROW = "Shared job queue (Redis, fleets only)"


def shared_queue_panels() -> list[dict]:
    return [
        row(SHARED_QUEUE_ROW),
        timeseries(
            "Shared jobs waiting and in progress, fleet-wide",
            [
                target(f"sum(enhancement_jobs_backlog{{{FLEET_SELECTOR}}})", "waiting"),
                target(f"sum(enhancement_jobs_claimed{{{FLEET_SELECTOR}}})", "in progress"),
            ],
            unit="short",
            description="Exported by one replica at a time (the reporter lease), so the sum counts each job once.",
        ),
        timeseries(
            "Oldest unfinished shared job",
            [target(f"max(enhancement_jobs_oldest_age_seconds{{{FLEET_SELECTOR}}})", "oldest")],
            unit="s",
            thresholds=[("green", None), ("orange", 60), ("red", 300)],
            description="EnhancementJobsWaitingTooLong warns above 5 minutes.",
        ),
        timeseries(
            "Job store reachable, by replica",
            [target(f"min by (instance) (enhancement_job_store_up{{{SELECTOR}}})", "{{instance}}")],
            unit="none",
            thresholds=[("red", None), ("green", 1)],
            description="1: the replica's last call to Redis worked. None reaching it pages (EnhancementJobStoreDown).",
        ),
        timeseries(
            "Jobs delivered again, abandoned, answers discarded",
            [
                target(f"sum(rate(enhancement_job_redeliveries_total{{{SELECTOR}}}{RATE}))", "delivered again"),
                target(f"sum(rate(enhancement_jobs_abandoned_total{{{SELECTOR}}}{RATE}))", "abandoned"),
                target(f"sum(rate(enhancement_job_duplicates_total{{{SELECTOR}}}{RATE}))", "answer discarded"),
            ],
            unit="reqps",
            width=24,
            description="Delivered again: its replica stopped while holding it. Abandoned: too many deliveries.",
        ),
    ]


def overview() -> dict:
    stage_variable = query_variable(
        "stage", 'label_values(enhancement_stage_duration_seconds_count{job="$job"}, stage)', multi=True, label="stage"
    )
    stage_heatmap = heatmap(
        "Stage latency: $stage",
        "enhancement_stage_duration_seconds",
        unit="s",
        extra_selector='stage=~"$stage"',
        width=8,
        description="One heatmap per stage (the panel repeats over the stage variable); exemplars open the clip's trace.",
    )
    stage_heatmap.update(repeat="stage", repeatDirection="h", maxPerRow=3)
    panels = [
        *status_panels(),
        row("Throughput and answers"),
        timeseries(
            "Clips per second by outcome",
            [target(rate_by("enhancement_requests_total", "outcome"), "{{outcome}}")],
            unit="reqps",
            description="Finished clips: success, degraded (a fallback ran), rejected (bad input), failed.",
        ),
        timeseries(
            "HTTP answers by status code",
            [target(rate_by("enhancement_http_responses_total", "code"), "{{code}}")],
            unit="reqps",
            overrides=color_overrides(CALLED_OUT_CODES),
            description="429: shed because the queue is full (clients retry). 503: not ready or draining.",
        ),
        stat(
            "Shed (429) and unavailable (503)",
            [
                target(f'sum(rate(enhancement_http_responses_total{{{SELECTOR}, code="429"}}{RATE})) or vector(0)', "429 shed"),
                target(f'sum(rate(enhancement_http_responses_total{{{SELECTOR}, code="503"}}{RATE})) or vector(0)', "503 unavailable"),
            ],
            unit="reqps",
            width=8,
            height=8,
            thresholds=[("green", None), ("orange", 0.01), ("red", 0.1)],
        ),
        timeseries(
            "Success ratio (rejections excluded)",
            [
                target(
                    f'sum(rate(enhancement_requests_total{{{SELECTOR}, outcome="success"}}{RATE}))'
                    f' / sum(rate(enhancement_requests_total{{{SELECTOR}, outcome!="rejected"}}{RATE}))',
                    "success",
                )
            ],
            unit="percentunit",
            thresholds=[("red", None), ("orange", 0.95), ("green", 0.99)],
        ),
        timeseries(
            "Rejections by reason",
            [target(f'sum by (reason) (rate(enhancement_stage_errors_total{{{SELECTOR}, stage="decode"}}{RATE}))', "{{reason}}")],
            unit="reqps",
        ),
        timeseries(
            "Clips per second by replica",
            [target(rate_by("enhancement_requests_total", "instance"), "{{instance}}")],
            unit="reqps",
            description="An uneven split means the balancer or one replica is unwell.",
        ),
        row("Latency"),
        timeseries(
            "Time in queue against time in processing (p50, p95)",
            [
                target(quantile(0.5, "enhancement_queue_wait_seconds"), "queue p50"),
                target(quantile(0.95, "enhancement_queue_wait_seconds"), "queue p95"),
                target(quantile(0.5, "enhancement_request_duration_seconds"), "processing p50", exemplar=True),
                target(quantile(0.95, "enhancement_request_duration_seconds"), "processing p95", exemplar=True),
            ],
            unit="s",
            width=12,
            description="Queue wait growing while processing stays flat means too little capacity, not a slow model.",
        ),
        timeseries(
            "Answer time over clip length, p95 (the latency SLI)",
            [target(quantile(0.95, "enhancement_response_time_ratio"), "p95")],
            unit=TIMES,
            width=12,
            thresholds=[("green", None), ("red", 1.0)],
            description="Queue wait plus processing, over the clip's length: above 1, a client waits longer than its audio lasts.",
        ),
        heatmap("Clip processing time", "enhancement_request_duration_seconds", unit="s", width=12),
        heatmap("Queue wait", "enhancement_queue_wait_seconds", unit="s", width=12),
        stage_heatmap,
        timeseries(
            "Stage latency p95 (exemplars link to traces)",
            [target(quantile(0.95, "enhancement_stage_duration_seconds", "stage"), STAGES_LEGEND, exemplar=True)],
            unit="s",
            width=12,
        ),
        timeseries(
            "Share of processing time by stage",
            [
                target(
                    f"sum by (stage) (rate(enhancement_stage_duration_seconds_sum{{{SELECTOR}}}{RATE}))"
                    f" / scalar(sum(rate(enhancement_stage_duration_seconds_sum{{{SELECTOR}}}{RATE})))",
                    STAGES_LEGEND,
                )
            ],
            unit="percentunit",
            width=12,
        ),
        timeseries(
            "Real-time factor (processing / audio time)",
            [target(mean("enhancement_real_time_factor"), "mean RTF")],
            unit=TIMES,
            thresholds=[("green", None), ("orange", 0.5), ("red", 1.0)],
        ),
        row("Resilience"),
        timeseries(
            "Circuit breaker state by replica",
            [target(f"max by (instance, breaker) (enhancement_circuit_breaker_state{{{SELECTOR}}})", "{{instance}} {{breaker}}")],
            unit="none",
            thresholds=[("green", None), ("orange", 1), ("red", 2)],
            description="0 closed, 1 half-open, 2 open.",
        ),
        timeseries(
            "Fallbacks by stage and reason",
            [
                target(
                    rate_by("enhancement_fallbacks_total", "stage, to_method, reason"),
                    "{{stage}} -> {{to_method}} ({{reason}})",
                )
            ],
            unit="reqps",
        ),
        timeseries(
            "Stage errors by reason",
            [target(rate_by("enhancement_stage_errors_total", "stage, reason"), "{{stage}}: {{reason}}")],
            unit="reqps",
        ),
        *shared_queue_panels(),
        row("Interruption patterns"),
        timeseries(
            "Events detected per second by kind",
            [target(rate_by("enhancement_patterns_detected_total", "pattern"), "{{pattern}}")],
            unit="short",
            width=12,
        ),
        timeseries(
            "Mean detector confidence by kind",
            [target(mean("enhancement_pattern_confidence", "pattern"), "{{pattern}}")],
            unit="percentunit",
            width=12,
        ),
        row("Loudness"),
        timeseries("Output loudness p50", [target(quantile(0.5, "enhancement_output_loudness_lufs"), "p50")], unit=LUFS),
        timeseries(
            "True peak p99 (ceiling -1 dBTP)",
            [target(quantile(0.99, "enhancement_true_peak_dbtp"), "p99")],
            unit=DBTP,
            thresholds=[("green", None), ("red", -1.0)],
        ),
        timeseries("Limiter gain reduction p95", [target(quantile(0.95, "enhancement_limiter_gain_reduction_db"), "p95")], unit=DB),
        row("Quality"),
        timeseries(
            "SNR improvement p50 (WADA-SNR out minus in)",
            [target(quantile(0.5, "enhancement_snr_improvement_db"), "p50")],
            unit=DB,
        ),
        timeseries("Output SNR p50", [target(quantile(0.5, "enhancement_output_snr_db"), "p50")], unit=DB),
        timeseries(
            "DNSMOS mean by dimension (sampled clips, 1 to 5)",
            [target(mean("enhancement_dnsmos_score", "dimension"), "{{dimension}}")],
            unit="none",
        ),
        timeseries(
            "Outputs by quality verdict",
            [target(rate_by("enhancement_output_quality_total", "verdict"), "{{verdict}}")],
            unit="reqps",
            width=24,
        ),
    ]
    return dashboard("enhancement-overview", "Enhancement worker: pipeline overview", panels, worker_variables(stage_variable))


def slo() -> dict:
    variables = [
        query_variable("service", "label_values(slo:objective:ratio, service)", multi=False),
        query_variable("slo", 'label_values(slo:objective:ratio{service="$service"}, slo)', multi=True, label="SLO"),
    ]
    panels = [
        stat(
            "SLI over 30 days (good share)",
            [target(f"1 - slo:sli_error:ratio_rate30d{{{SLO_SELECTOR}}}", "{{slo}}")],
            unit="percentunit",
            width=8,
        ),
        stat("Objective", [target(f"slo:objective:ratio{{{SLO_SELECTOR}}}", "{{slo}}")], unit="percentunit", width=8),
        stat(
            "Error budget remaining (30 days)",
            [target(f"slo:period_error_budget_remaining:ratio{{{SLO_SELECTOR}}}", "{{slo}}")],
            unit="percentunit",
            width=8,
            thresholds=[("red", None), ("orange", 0.25), ("green", 0.5)],
        ),
        timeseries(
            "Error budget burn-down (30 days)",
            [target(f"slo:period_error_budget_remaining:ratio{{{SLO_SELECTOR}}}", "{{slo}}")],
            unit="percentunit",
            width=24,
            thresholds=[("red", None), ("orange", 0.25), ("green", 0.5)],
            description="The share of the 30-day budget left; set the time range to 30 days to see the whole period.",
        ),
        timeseries(
            "Burn rate now (5m) against the budget",
            [target(f"slo:current_burn_rate:ratio{{{SLO_SELECTOR}}}", "{{slo}}")],
            unit=TIMES,
            width=12,
            thresholds=[("green", None), ("orange", 1), ("red", 14.4)],
            description="1 spends the budget exactly over 30 days; 14.4 for an hour pages.",
        ),
        timeseries(
            "Burn rate over 30 days",
            [target(f"slo:period_burn_rate:ratio{{{SLO_SELECTOR}}}", "{{slo}}")],
            unit=TIMES,
            width=12,
            thresholds=[("green", None), ("red", 1)],
        ),
        timeseries(
            "Error ratio by window (the burn alerts' inputs)",
            [
                target(f"slo:sli_error:ratio_rate5m{{{SLO_SELECTOR}}}", "{{slo}} 5m"),
                target(f"slo:sli_error:ratio_rate1h{{{SLO_SELECTOR}}}", "{{slo}} 1h"),
                target(f"slo:sli_error:ratio_rate6h{{{SLO_SELECTOR}}}", "{{slo}} 6h"),
                target(f"slo:sli_error:ratio_rate1d{{{SLO_SELECTOR}}}", "{{slo}} 1d"),
            ],
            unit="percentunit",
            width=24,
        ),
        stat(
            "Burn-rate alerts firing",
            [target(f'count(ALERTS{{alertstate="firing", {SLO_SELECTOR}}}) or on() vector(0)', "firing")],
            unit="none",
            width=8,
            thresholds=[("green", None), ("red", 1)],
            description="0 when no SLO alert fires.",
        ),
        alert_groups("Active alerts", "service=$service", width=16, height=5),
    ]
    return dashboard("enhancement-slo", "Enhancement worker: SLOs and error budgets", panels, variables)


def resources() -> dict:
    panels = [
        timeseries(
            "Worker CPU (cores)",
            [target(f"sum by (instance) (rate(process_cpu_seconds_total{{{SELECTOR}}}{RATE}))", "{{instance}}")],
            unit="none",
        ),
        timeseries(
            "Host CPU busy",
            [
                target(
                    f'1 - sum by (instance) (rate(enhancement_system_cpu_seconds_total{{{SELECTOR}, mode="idle"}}{RATE}))'
                    f" / sum by (instance) (rate(enhancement_system_cpu_seconds_total{{{SELECTOR}}}{RATE}))",
                    "{{instance}}",
                )
            ],
            unit="percentunit",
        ),
        timeseries(
            "Worker resident memory",
            [target(f"sum by (instance) (process_resident_memory_bytes{{{SELECTOR}}})", "{{instance}}")],
            unit="bytes",
            thresholds=[("green", None), ("red", 8e9)],
        ),
        timeseries(
            "Host memory available",
            [target(f"min by (instance) (enhancement_system_memory_available_bytes{{{SELECTOR}}})", "{{instance}}")],
            unit="bytes",
        ),
        timeseries(
            "GPU memory used",
            [target(f"sum by (instance, gpu) (enhancement_gpu_memory_used_bytes{{{SELECTOR}}})", "{{instance}} gpu {{gpu}}")],
            unit="bytes",
            description="Absent on workers without a GPU.",
        ),
        timeseries(
            "GPU busy",
            [target(f"max by (instance, gpu) (enhancement_gpu_utilization_ratio{{{SELECTOR}}})", "{{instance}} gpu {{gpu}}")],
            unit="percentunit",
            description="Absent on workers without a GPU.",
        ),
        stat(
            "Model loaded",
            [target(f"max by (instance) (enhancement_model_loaded{{{SELECTOR}}})", "{{instance}}")],
            unit="none",
            mappings=value_mappings(MODEL_STATES),
        ),
        stat(
            "Model load time",
            [target(f"max by (instance) (enhancement_model_load_duration_seconds{{{SELECTOR}}})", "{{instance}}")],
            unit="s",
        ),
        stat(
            "Build and weights",
            [
                target(
                    f"max by (instance, version, checkpoint, checkpoint_sha256, device) (enhancement_build_info{{{SELECTOR}}})",
                    "{{version}} {{checkpoint}} {{checkpoint_sha256}} on {{device}}",
                )
            ],
            unit="none",
            width=12,
            description="checkpoint: shipped, or the directory of other weights; the hash tells two images apart.",
        ),
        timeseries(
            "Span export failures per second",
            [target(f"sum by (instance) (rate(enhancement_telemetry_export_failures_total{{{SELECTOR}}}{RATE}))", "{{instance}}")],
            unit="short",
            width=24,
        ),
    ]
    return dashboard("enhancement-resources", "Enhancement worker: resources", panels, worker_variables())


DASHBOARDS = {"overview.json": overview, "slo.json": slo, "resources.json": resources}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2, sort_keys=False) + "\n" for name, build in DASHBOARDS.items()}


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
