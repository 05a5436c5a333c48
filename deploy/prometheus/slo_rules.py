"""Builds rules/slo.yml in Sloth's three-group shape; deploy/prometheus/generate.py writes it.

The SLIs are taken where users see the request:
- availability: answers on the intake routes (POST /v1/enhance, POST /v1/jobs) that were a
  server error or a 429, plus failed async jobs collected from /v1/jobs/{id}/audio; and time
  when no replica was up, as an error ratio of its own: the SLI is the worse of the two;
- latency: clips whose answer took longer than the clip lasts (queue wait included, clips
  under 1 s counted as 1 s), from enhancement_response_time_ratio;
- quality: outputs whose SNR fell by more than the margin or whose loudness missed its target.
  Quality opens tickets only, behind a minimum count of poor clips: it never pages.

Group 1, SLI: each error ratio over 5m ... 3d from raw counters, the 30-day ratio as the mean
of the recorded 5m ratios (as Sloth does: no 30-day range over raw series), and the eligible
count over the alert windows for the minimum-traffic guard.
Group 2, objectives: objective, error budget, burn rates, budget remaining over 30 days.
Group 3, alerts: multi-window multi-burn-rate (Google SRE workbook, ch. 5), one alert per
severity as Sloth merges them: page at 14.4x over 5m and 1h (2% of the budget in an hour) or
6x over 30m and 6h (5% in six hours); ticket at 3x over 2h and 1d or 1x over 6h and 3d.
All three groups are evaluated once a minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import yaml

from ops.monitoring import SERVICE, WORKER_SELECTOR, runbook_url

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")  # 30d is built from the recorded 5m ratio
PERIOD = "30d"
INTERVAL = "1m"
INTAKE_ROUTES = "/v1/enhance|/v1/jobs"
# A clip answered within its own length (ratio 1.0, a bucket boundary of enhancement_response_time_ratio).
LATENCY_RATIO_THRESHOLD = "1.0"
SERVICE_UP = "job:enhancement_worker_up:max"


INTAKE = f'route=~"{INTAKE_ROUTES}"'
INTAKE_BAD = f'route=~"{INTAKE_ROUTES}", code=~"5..|429"'
JOB_FAILED = 'route="/v1/jobs/{job_id}/audio", code=~"5.."'


def _responses(matchers: str) -> str:
    """sum(rate()) of the worker's HTTP responses that match, as a template of {worker} and {window}."""
    escaped = matchers.replace("{", "{{").replace("}", "}}")
    return f"sum(rate(enhancement_http_responses_total{{{{{{worker}}, {escaped}}}}}[{{window}}]))"


@dataclass(frozen=True)
class Slo:
    name: str
    objective: float
    description: str
    errors: str  # PromQL with {window} and {worker} (the worker's label matchers)
    total: str
    pages: bool = True
    # Fewest bad events in the long window before an alert may fire, beyond the traffic guard.
    min_bad_events: int = 0
    downtime_counts: bool = False

    @property
    def budget(self) -> float:
        return round(1 - self.objective, 6)


SLOS = (
    Slo(
        "availability",
        0.999,
        "intake answers that were neither a server error nor a 429, with time when no replica was up counted as errors",
        f"({_responses(INTAKE_BAD)} or vector(0)) + ({_responses(JOB_FAILED)} or vector(0))",
        _responses(INTAKE),
        downtime_counts=True,
    ),
    Slo(
        "latency",
        0.99,
        "clips answered within their own length (queue wait included; clips under 1 s count as 1 s)",
        "(sum(rate(enhancement_response_time_ratio_count{{{worker}}}[{window}]))"
        f' - sum(rate(enhancement_response_time_ratio_bucket{{{{{{worker}}, le="{LATENCY_RATIO_THRESHOLD}"}}}}[{{window}}])))',
        "sum(rate(enhancement_response_time_ratio_count{{{worker}}}[{window}]))",
    ),
    Slo(
        "quality",
        0.95,
        "outputs whose SNR did not fall by more than the margin and whose loudness is on target",
        'sum(rate(enhancement_output_quality_total{{{worker}, verdict="poor"}}[{window}]))',
        "sum(rate(enhancement_output_quality_total{{{worker}}}[{window}]))",
        pages=False,
        min_bad_events=5,
    ),
)

# (severity, [(burn factor, short window, long window), ...]): the windows of one alert.
BURN_ALERTS = (
    ("critical", ((14.4, "5m", "1h"), (6, "30m", "6h"))),
    ("warning", ((3, "2h", "1d"), (1, "6h", "3d"))),
)
SECONDS = {"5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600, "1d": 86400, "3d": 259200, "30d": 2592000}


def minimum_clips(slo: Slo, factor: float) -> int:
    """Fewest eligible events in the long window for which one bad one cannot reach the burn rate alone."""
    return math.floor(1 / (slo.budget * factor)) + 1


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|" if "\n" in v else None))


def _rule(rule: dict, comments: tuple[str, ...] = ()) -> list[str]:
    body = yaml.dump([rule], Dumper=_Dumper, sort_keys=False, width=120).rstrip().splitlines()
    return [f"      # {c}" for c in comments] + ["      " + line for line in body]


def _labels(slo: Slo) -> dict:
    return {"service": SERVICE, "slo": slo.name}


def _burn_alerts(slo: Slo) -> tuple[tuple[str, tuple[tuple[float, str, str], ...]], ...]:
    return tuple((severity, pairs) for severity, pairs in BURN_ALERTS if slo.pages or severity != "critical")


def _selector(slo: Slo) -> str:
    return f'{{service="{SERVICE}", slo="{slo.name}"}}'


def _sli_rules(slo: Slo) -> list[str]:
    out = []
    for window in WINDOWS:
        errors, total = (q.format(window=window, worker=WORKER_SELECTOR) for q in (slo.errors, slo.total))
        expr = f"({errors})\n/\n({total})"
        if slo.downtime_counts:
            # The worse of the answers' error ratio and the share of the window with no replica up.
            expr = (
                f'max(\n  label_replace({expr.replace(chr(10), " ")}, "sli", "answers", "", "")\n  or\n'
                f'  label_replace(1 - avg_over_time({SERVICE_UP}[{window}]), "sli", "downtime", "", "")\n)'
            )
        out += _rule({"record": f"slo:sli_error:ratio_rate{window}", "expr": expr, "labels": _labels(slo)})
    out += _rule(
        {
            "record": f"slo:sli_error:ratio_rate{PERIOD}",
            "expr": f"sum_over_time(slo:sli_error:ratio_rate5m{_selector(slo)}[{PERIOD}])\n"
            f"/\ncount_over_time(slo:sli_error:ratio_rate5m{_selector(slo)}[{PERIOD}])",
            "labels": _labels(slo),
        },
        ("The mean of the recorded 5m ratios: 30 days of raw series are never read.",),
    )
    long_windows = sorted({w for _, pairs in _burn_alerts(slo) for _, _, w in pairs}, key=SECONDS.get)
    for window in long_windows:
        total = slo.total.format(window=window, worker=WORKER_SELECTOR).replace("sum(rate(", "sum(increase(")
        out += _rule({"record": f"slo:sli_total:increase{window}", "expr": total, "labels": _labels(slo)})
        if slo.min_bad_events:
            errors = slo.errors.format(window=window, worker=WORKER_SELECTOR).replace("sum(rate(", "sum(increase(")
            out += _rule({"record": f"slo:sli_errors:increase{window}", "expr": errors, "labels": _labels(slo)})
    return out


def _objective_rules(slo: Slo) -> list[str]:
    selector = _selector(slo)
    out = _rule(
        {"record": "slo:objective:ratio", "expr": f"vector({slo.objective})", "labels": _labels(slo)},
        (f"{slo.name}: {slo.description}; objective {slo.objective:.1%} over 30 days.",),
    )
    out += _rule({"record": "slo:error_budget:ratio", "expr": f"vector({slo.budget})", "labels": _labels(slo)})
    out += _rule({"record": "slo:time_period:days", "expr": "vector(30)", "labels": _labels(slo)})
    out += _rule(
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate5m{selector}\n/ on(service, slo)\nslo:error_budget:ratio{selector}",
            "labels": _labels(slo),
        }
    )
    out += _rule(
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate{PERIOD}{selector}\n/ on(service, slo)\nslo:error_budget:ratio{selector}",
            "labels": _labels(slo),
        }
    )
    out += _rule(
        {"record": "slo:period_error_budget_remaining:ratio", "expr": f"1 - slo:period_burn_rate:ratio{selector}", "labels": _labels(slo)}
    )
    return out


def _alert_rule(slo: Slo, severity: str, pairs: tuple[tuple[float, str, str], ...]) -> list[str]:
    selector = _selector(slo)
    kind = "Page" if severity == "critical" else "Ticket"
    name = f"EnhancementSLO{slo.name.capitalize()}Burn{kind}"
    branches, comments = [], []
    for factor, short, long in pairs:
        threshold = round(factor * slo.budget, 6)
        guard = minimum_clips(slo, factor)
        branch = (
            f"(\n  slo:sli_error:ratio_rate{short}{selector} > {threshold}\n"
            f"  and on(service, slo)\n  slo:sli_error:ratio_rate{long}{selector} > {threshold}\n"
            f"  and on(service, slo)\n  slo:sli_total:increase{long}{selector} >= {guard}"
        )
        if slo.min_bad_events:
            branch += f"\n  and on(service, slo)\n  slo:sli_errors:increase{long}{selector} >= {slo.min_bad_events}"
        branches.append(branch + "\n)")
        comments.append(
            f"{factor}x over {short} and {long} ({factor * SECONDS[long] / SECONDS[PERIOD]:.0%} of the budget in {long}),"
            f" with at least {guard} eligible clips in {long}"
        )
    if slo.min_bad_events:
        comments.append(f"and at least {slo.min_bad_events} bad ones, so that a clean clip or two never fires it.")
    else:
        comments.append("so that a single bad clip at a quiet hour cannot fire it alone.")
    factors = " or ".join(f"{factor}x" for factor, _, _ in pairs)
    rule = {
        "alert": name,
        "expr": "\nor on(service, slo)\n".join(branches),
        # Long enough to ride out one bad evaluation, short next to the windows themselves.
        "for": "2m" if severity == "critical" else "15m",
        "labels": {"severity": severity, **_labels(slo)},
        "annotations": {
            "summary": f"The {slo.name} SLO is burning its error budget {factors} too fast.",
            "description": (
                f"{{{{ $labels.slo }}}} errors are {{{{ $value | humanizePercentage }}}} of eligible clips over the "
                f"alert's short window (budget {slo.budget:.1%} over 30 days)."
            ),
            "runbook_url": runbook_url(name),
        },
    }
    return _rule(rule, tuple(comments))


def render() -> str:
    out = ["# Generated by deploy/prometheus/generate.py from slo_rules.py; edit that file, not this one.", "groups:"]

    out += ["  - name: enhancement-slo-sli", f"    interval: {INTERVAL}", "    rules:"]
    # Whether any replica is up, recorded each minute: the downtime side of the availability SLI.
    # Only once the service has been up within the hour: a stack that is still starting (targets
    # not yet scraped, or refused until the model loads) is not an outage. A target that is gone
    # altogether records nothing; EnhancementWorkerAbsent pages for that, and an outage longer than
    # an hour has long paged as EnhancementServiceDown before it stops counting here.
    out += _rule(
        {
            "record": SERVICE_UP,
            "expr": f"max by (job, service) (up{{{WORKER_SELECTOR}}})\nand on(job, service)\n"
            f"max by (job, service) (max_over_time(up{{{WORKER_SELECTOR}}}[1h])) == 1",
        }
    )
    for slo in SLOS:
        out += _sli_rules(slo)

    out += ["  - name: enhancement-slo-objectives", f"    interval: {INTERVAL}", "    rules:"]
    for slo in SLOS:
        out += _objective_rules(slo)

    out += ["  - name: enhancement-slo-alerts", f"    interval: {INTERVAL}", "    rules:"]
    for slo in SLOS:
        for severity, pairs in _burn_alerts(slo):
            out += _alert_rule(slo, severity, pairs)
    return "\n".join(out) + "\n"
