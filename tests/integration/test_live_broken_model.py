"""The case the stack exists for: a worker whose model cannot load.

The local stack starts as compose does, waiting only for each component's liveness: Prometheus
and both Alertmanagers come up beside a worker that answers /healthz but not /readyz, and the
alert that names the cause, EnhancementModelNotLoaded, reaches the receiver. It is not inhibited
by the capacity page the same fault raises, because it says which replica and why.
"""

import time

import httpx
import pytest

from ops.stack import ALERTMANAGERS, LocalStack

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def broken_stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("broken-stack")
    empty_model_dir = workdir / "no-model"
    empty_model_dir.mkdir()
    stack = LocalStack(workdir, worker_env={"ENHANCEMENT_MODEL__SOURCE": str(empty_model_dir)})
    try:
        yield stack.start(worker_ready=False)
    finally:
        stack.stop()


def firing(stack: LocalStack, alertname: str) -> list[dict]:
    return [
        alert | {"received_at": entry["received_at"]}
        for entry in stack.receiver.snapshot()
        for alert in entry["alerts"]
        if alert["labels"]["alertname"] == alertname and alert["status"] == "firing"
    ]


def test_monitoring_comes_up_beside_a_worker_that_is_alive_but_not_ready(broken_stack):
    assert httpx.get(broken_stack.url("worker") + "/healthz").status_code == 200
    ready = httpx.get(broken_stack.url("worker") + "/readyz")
    assert ready.status_code == 503
    model = ready.json()["components"]["model"]
    assert (model["loaded"], model["error"], model["checkpoint"], model["checkpoint_sha256"]) == (
        False,
        "model_unavailable",
        "no-model",
        "missing",
    )
    for name in ("prometheus", *ALERTMANAGERS):
        assert httpx.get(broken_stack.url(name) + "/-/ready").status_code == 200, name


def test_the_model_not_loaded_warning_reaches_the_receiver_beside_the_capacity_page(broken_stack):
    deadline = time.monotonic() + 300
    while not (firing(broken_stack, "EnhancementModelNotLoaded") and firing(broken_stack, "EnhancementCapacityLow")):
        assert time.monotonic() < deadline, [e["alerts"][0]["labels"]["alertname"] for e in broken_stack.receiver.snapshot()]
        time.sleep(1)
    [cause] = firing(broken_stack, "EnhancementModelNotLoaded")
    assert cause["labels"]["severity"] == "warning"
    assert cause["labels"]["instance"] == f"127.0.0.1:{broken_stack.ports['worker']}"
    assert firing(broken_stack, "EnhancementCapacityLow")[0]["labels"]["severity"] == "critical"
    query = httpx.get(
        broken_stack.url("prometheus") + "/api/v1/query", params={"query": 'enhancement_build_info{checkpoint_sha256="missing"}'}
    )
    assert query.json()["data"]["result"], "build_info says the worker has no checkpoint"
