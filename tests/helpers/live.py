"""Reading a live local stack in tests: Prometheus queries, waiting, and the notifications the receiver got."""

from __future__ import annotations

import time

import httpx

from ops.stack import LocalStack


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
