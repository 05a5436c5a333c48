"""Reading a live local stack in tests: Prometheus queries, waiting, and the notifications the receiver got."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from ops.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
VARIABLES = {
    "$job": "enhancement-worker",
    "$instance": ".*",
    "$service": "enhancement-worker",
    "$slo": ".*",
    "$stage": ".*",
    "$__rate_interval": "1m",
}
# Series only a fleet on the Redis job store exports; the single-worker stack has none of them.
FLEET_ONLY_SERIES = ("enhancement_jobs_", "enhancement_job_store_up")


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


def notifications(stack: LocalStack, alertname: str, status: str, since: float = 0.0) -> list[tuple[float, dict]]:
    return [
        (entry["received_at"], alert | {"externalURL": entry.get("externalURL")})
        for entry in stack.receiver.snapshot()
        for alert in entry["alerts"]
        if alert["labels"]["alertname"] == alertname and alert["status"] == status and entry["received_at"] >= since
    ]


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
