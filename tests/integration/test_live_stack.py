"""The whole stack, live: the real worker, Debian's Prometheus with the repo's rules, Alertmanager
with the repo's routing, and a webhook receiver; then a fault, its alert, and its resolution.

Settings are the ones the compose file ships (5 s scrape and evaluation, 10 s `for`, 5 s
group_wait for critical alerts) with one exception: the worker's breaker recovery timeout is
5 s instead of 300 s, so that recovery, and the resolved notification, fit in a test run.
"""

import json
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from exporter import loadgen
from exporter.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
VARIABLES = {"$job": "enhancement-worker", "$instance": ".*", "$slo": ".*", "$__rate_interval": "1m"}


class Traffic:
    """Loadgen in the background until stopped: speech clips with interruptions, plus one bad upload."""

    def __init__(self, url: str, rate: float) -> None:
        self.clips = loadgen.load_corpus(ROOT / "samples") + loadgen.load_corpus(None, count=2, seconds=3.0) + [b"not audio"]
        self.url, self.rate = url, rate
        self.stop = threading.Event()
        self.statuses: dict[int, int] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            report = loadgen.run(self.url, rate=self.rate, duration_s=5, clips=self.clips, progress=False, stop=self.stop)
            for code, count in report.statuses.items():
                self.statuses[code] = self.statuses.get(code, 0) + count

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


def query(stack: LocalStack, expr: str) -> list:
    response = httpx.get(stack.url("prometheus") + "/api/v1/query", params={"query": expr}, timeout=10).json()
    assert response["status"] == "success", (expr, response)
    return response["data"]["result"]


def wait_for(condition, timeout_s: float, what: str, poll_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stack")
    fault = workdir / "fault"
    live = LocalStack(workdir, worker_env={
        "WORKER_TEST_FAULT_FILE": str(fault),
        "ENHANCEMENT_MODEL__BREAKER__RECOVERY_TIMEOUT_SECONDS": "5",
        "ENHANCEMENT_QUALITY__DNSMOS_SAMPLE_RATIO": "0.5",
    }).start()
    live.fault_file = fault
    with Traffic(live.url("worker"), rate=1.5) as traffic:
        live.traffic = traffic
        try:
            yield live
        finally:
            traffic.stop.set()
            live.stop()


def recording_rules() -> list[str]:
    import yaml

    names = set()
    for path in (ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {r["record"] for r in group["rules"] if "record" in r}
    return sorted(names)


def panel_queries() -> list[tuple[str, str, str]]:
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for name, value in VARIABLES.items():
                    expr = expr.replace(name, value)
                found.append((dashboard["uid"], panel["title"], expr))
    return found


def test_every_recording_rule_and_panel_query_has_data(stack):
    wait_for(lambda: query(stack, 'enhancement_requests_total{outcome="rejected"} > 0')
             and query(stack, "enhancement_dnsmos_score_count > 0")
             and query(stack, "enhancement_pattern_confidence_count > 0"), 120, "traffic to reach Prometheus")
    # Rates need two scrapes of a series, and some series start at their first event: poll.
    rules = recording_rules()
    deadline = time.monotonic() + 90
    while (missing := [r for r in rules if not query(stack, r)]) and time.monotonic() < deadline:
        time.sleep(5)
    assert not missing, f"recording rules without samples: {missing}"

    has_gpu = bool(query(stack, "enhancement_gpu_memory_used_bytes"))
    wanted = [(uid, title, expr) for uid, title, expr in panel_queries() if has_gpu or "GPU" not in title]
    deadline = time.monotonic() + 90
    while (empty := [(uid, title) for uid, title, expr in wanted if not query(stack, expr)]) and time.monotonic() < deadline:
        time.sleep(5)
    assert not empty, f"panels without data: {empty}"
    assert len(wanted) >= 35


def test_exemplars_are_queryable_from_prometheus(stack):
    def exemplars():
        response = httpx.get(stack.url("prometheus") + "/api/v1/query_exemplars",
                             params={"query": "enhancement_stage_duration_seconds_bucket", "start": time.time() - 600, "end": time.time()}).json()
        return [e for series in response["data"] for e in series["exemplars"]]

    found = wait_for(exemplars, 60, "exemplars")
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["labels"]["trace_id"]) for e in found)


def test_a_failing_model_pages_through_alertmanager_and_then_resolves(stack):
    def notifications(status: str):
        return [(entry["received_at"], alert) for entry in stack.receiver.snapshot() for alert in entry["alerts"]
                if alert["labels"]["alertname"] == "EnhancementCircuitBreakerOpen" and alert["status"] == status]

    assert not notifications("firing")
    started = time.time()
    stack.fault_file.write_text("raise")
    arrived, alert = wait_for(lambda: notifications("firing") and notifications("firing")[0], 120, "the breaker alert")
    mttd = arrived - started
    print(f"\nMTTD (fault -> critical notification at the webhook): {mttd:.1f} s")
    assert alert["labels"]["severity"] == "critical" and alert["labels"]["breaker"] == "model"
    assert alert["annotations"]["runbook_url"] == "docs/runbook.md#enhancementcircuitbreakeropen"
    assert mttd <= 30.0, f"MTTD {mttd:.1f} s is over the 30 s target"
    degraded = query(stack, 'enhancement_requests_total{outcome="degraded"} > 0')
    assert degraded, "the fallback must keep producing output while the breaker is open"

    recovery = time.time()
    stack.fault_file.write_text("")
    resolved_at, _ = wait_for(lambda: notifications("resolved") and notifications("resolved")[0], 180, "the resolved notification")
    print(f"recovery -> resolved notification: {resolved_at - recovery:.1f} s")
    assert 500 not in stack.traffic.statuses, stack.traffic.statuses
