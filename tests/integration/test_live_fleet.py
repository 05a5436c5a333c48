"""A fleet, live: three real workers sharing a real redis-server behind Debian's nginx, scraped by
Prometheus through file_sd, with the repo's rules and both clustered Alertmanagers.

In file order (each phase leaves the fleet as the next expects; about 8 minutes in all):
a job posted to one replica is read on another; a rolling restart under load at about 70% of
the fleet's measured capacity fails no request and loses or duplicates no job; a replica killed
mid-job leaves its job to another and the alerts give a warning, no page; Redis down refuses
intake with 503 while sync serves through the two replicas left, and pages; every replica
killed pages.

Settings are the shipped ones, the visibility timeout (30 s) and every `for` included. The
figures are printed at the end and, when FLEET_REPORT names a file, written there as JSON.
"""

import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from helpers.live import FLEET_ONLY_SERIES, notifications, panel_queries, query, wait_for
from ops import loadgen
from ops.stack import LocalStack

pytestmark = pytest.mark.live

REPLICAS = 3
WAV = {"content-type": "audio/wav"}
LOAD_SHARE_OF_CAPACITY = 0.7
RESULTS: dict[str, object] = {}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    stack = LocalStack(tmp_path_factory.mktemp("fleet"), replicas=REPLICAS).start()
    wait_for(lambda: len(query(stack, 'up{job="enhancement-worker"} == 1')) == REPLICAS, 60, "Prometheus to find every replica")
    yield stack
    stack.stop()
    print("\nfleet results:", json.dumps(RESULTS, indent=1))
    if report := os.environ.get("FLEET_REPORT"):
        Path(report).write_text(json.dumps(RESULTS, indent=1) + "\n")


@pytest.fixture(scope="module")
def clips():
    return loadgen.load_corpus(None, count=6, seconds=5.0, seed=3)


def store(fleet: LocalStack) -> redis.Redis:
    return redis.Redis(port=fleet.ports["redis"])


def wait_done(url: str, job_id: str, timeout_s: float = 120.0) -> dict:
    def done():
        view = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=5).json()
        return view if view["state"] == "done" else None

    return wait_for(done, timeout_s, f"job {job_id}", poll_s=0.2)


def firing_pages(fleet: LocalStack, since: float) -> list[str]:
    return [
        alert["labels"]["alertname"]
        for entry in fleet.receiver.snapshot()
        if entry["received_at"] >= since
        for alert in entry["alerts"]
        if alert["status"] == "firing" and alert["labels"].get("severity") == "critical"
    ]


def test_a_job_posted_to_one_replica_completes_and_is_read_on_another(fleet, clips):
    first, second, third = (fleet.url(name) for name in fleet.workers)
    posted = httpx.post(first + "/v1/jobs", content=clips[0], headers=WAV, timeout=10)
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["id"]
    assert wait_done(second, job_id)["outcome"] == "success"
    audio = httpx.get(f"{third}/v1/jobs/{job_id}/audio", timeout=10)
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    through_nginx = httpx.get(f"{fleet.service_url}/v1/jobs/{job_id}/audio", timeout=10)
    assert through_nginx.content == audio.content


def test_the_shared_queue_panels_have_data(fleet):
    wanted = [(title, expr) for _, title, expr in panel_queries() if any(name in expr for name in FLEET_ONLY_SERIES)]
    assert len(wanted) >= 4
    deadline = time.monotonic() + 60
    while (empty := [title for title, expr in wanted if not query(fleet, expr)]) and time.monotonic() < deadline:
        time.sleep(2)
    assert not empty, f"shared queue panels without data: {empty}"


def measured_capacity(url: str, clips: list[bytes]) -> float:
    """Clips per second the fleet finishes with every replica busy: 8 clips per replica, all at once."""
    count = 8 * REPLICAS
    started = time.perf_counter()
    with httpx.Client(timeout=120) as client, ThreadPoolExecutor(count) as pool:
        codes = list(
            pool.map(lambda i: client.post(url + "/v1/enhance", content=clips[i % len(clips)], headers=WAV).status_code, range(count))
        )
    assert codes == [200] * count
    return count / (time.perf_counter() - started)


def test_rolling_restart_under_load_fails_no_request_and_loses_or_duplicates_no_job(fleet, clips):
    capacity = statistics.median(measured_capacity(fleet.service_url, clips) for _ in range(2))
    rate = LOAD_SHARE_OF_CAPACITY * capacity
    results: dict = {}
    load = threading.Thread(
        target=lambda: results.update(
            report=loadgen.run(fleet.service_url, rate=rate, duration_s=45, clips=clips, progress=False, concurrency=64, jobs_share=0.3)
        )
    )
    nginx_log = fleet.workdir / "nginx" / "error.log"
    logged_before = nginx_log.stat().st_size
    load.start()
    time.sleep(5)
    took = fleet.rolling_restart()
    load.join()
    report = results["report"]
    logged = nginx_log.read_bytes()[logged_before:].decode(errors="replace").splitlines()
    upstream_errors = [line for line in logged if "upstream" in line and "[error]" in line]
    RESULTS["rolling restart"] = {
        "capacity clips/s": round(capacity, 2),
        "offered clips/s": round(rate, 2),
        "restart s": [round(t, 1) for t in took],
        "statuses": dict(report.statuses),
        "errors": dict(report.errors),
        "jobs": len(report.jobs),
        "nginx upstream errors": len(upstream_errors),
    }
    assert report.failed == 0, report.summary()
    # Stronger than no failed request: each replica left nginx's rotation before its SIGTERM, so
    # nginx never met a refused or reset connection it had to retry or mark a replica down for.
    assert upstream_errors == [], "\n".join(upstream_errors[:5])
    assert report.jobs and set(report.jobs.values()) == {"collected"}, report.summary()
    client = store(fleet)
    completions = [int(client.hget(f"enhancement:job:{job_id}", "completions") or 0) for job_id in report.jobs]
    assert completions == [1] * len(report.jobs), "each job answered once: none lost, none processed twice"
    RESULTS["rolling restart"]["/v1/enhance answers"] = dict(report.enhance_statuses)


def counter(fleet: LocalStack, replica: str, name: str) -> float:
    text = httpx.get(fleet.url(replica) + "/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples if sample.name == name)


def holder_of(fleet: LocalStack, entry_id: str) -> str | None:
    pending = store(fleet).xpending_range("enhancement:jobs", "workers", min=entry_id, max=entry_id, count=1)
    if not pending:
        return None
    pid = int(pending[0]["consumer"].decode().split("-")[-2])
    return next(name for name, process in fleet.processes if process.pid == pid)


def test_a_replica_killed_mid_job_leaves_its_job_to_another_and_only_warns(fleet):
    since = time.time()
    long_clip = loadgen.synthetic_clip(np.random.default_rng(9), 120.0)
    posted = httpx.post(fleet.service_url + "/v1/jobs", content=long_clip, headers=WAV, timeout=30)
    job_id = posted.json()["id"]
    client = store(fleet)

    def held():
        if client.hget(f"enhancement:job:{job_id}", "state") != b"running":
            return None
        for entry_id, fields in client.xrange("enhancement:jobs"):
            if fields[b"id"].decode() == job_id:
                return holder_of(fleet, entry_id.decode())
        return None

    victim = wait_for(held, 30, "a replica to take the long job and start it", poll_s=0.02)
    fleet.kill(victim)  # SIGKILL: no drain, the job is held and unfinished
    survivors = [name for name in fleet.workers if name != victim]
    view = wait_done(fleet.url(survivors[0]), job_id, timeout_s=150)
    assert view["outcome"] == "success"
    assert int(client.hget(f"enhancement:job:{job_id}", "completions")) == 1
    assert sum(counter(fleet, name, "enhancement_job_redeliveries_total") for name in survivors) == 1, "the survivor counted it"

    warning = wait_for(lambda: notifications(fleet, "EnhancementWorkerDown", "firing", since), 300, "EnhancementWorkerDown")
    RESULTS["one replica killed: warning after s"] = round(warning[0][0] - since, 1)
    assert warning[0][1]["labels"]["severity"] == "warning"
    pages = firing_pages(fleet, since)
    assert pages == [], f"two replicas of three still serve: nobody is paged, yet {pages} paged"


def test_redis_down_refuses_intake_with_503_keeps_sync_serving_and_pages(fleet, clips):
    # After the replica loss, so that the intake errors it causes (and the SLO burn they may
    # page on) cannot be mistaken for a page about the lost replica.
    since = time.time()
    fleet.kill("redis")
    refused = httpx.post(fleet.service_url + "/v1/jobs", content=clips[1], headers=WAV, timeout=10)
    assert refused.status_code == 503 and refused.json()["reason"] == "job_store_unavailable", refused.text
    assert refused.headers["retry-after"]
    # Sync keeps serving through the page's `for` minute and its delivery.
    report = loadgen.run(fleet.service_url, rate=1.0, duration_s=75, clips=clips, progress=False)
    assert report.failed == 0 and report.statuses[200] == sum(report.statuses.values()), report.summary()
    alive = [name for name in fleet.workers if dict(fleet.processes)[name].poll() is None]
    ready = [httpx.get(fleet.url(name) + "/readyz", timeout=5) for name in alive]
    assert all(r.status_code == 200 and r.json()["components"]["jobs"]["reachable"] is False for r in ready)
    page = wait_for(lambda: notifications(fleet, "EnhancementJobStoreDown", "firing", since), 60, "EnhancementJobStoreDown")
    RESULTS["job store down: page after s"] = round(page[0][0] - since, 1)

    fleet.restart("redis")
    wait_for(
        lambda: httpx.post(fleet.service_url + "/v1/jobs", content=clips[1], headers=WAV, timeout=10).status_code == 202,
        30,
        "intake to recover",
    )
    wait_for(lambda: notifications(fleet, "EnhancementJobStoreDown", "resolved", since), 120, "the page to resolve")


def test_killing_every_replica_pages(fleet):
    since = time.time()
    for name in fleet.workers:
        if dict(fleet.processes)[name].poll() is None:
            fleet.kill(name)
    page = wait_for(lambda: notifications(fleet, "EnhancementServiceDown", "firing", since), 180, "EnhancementServiceDown")
    RESULTS["every replica killed: page after s"] = round(page[0][0] - since, 1)
    assert page[0][1]["labels"]["severity"] == "critical"
