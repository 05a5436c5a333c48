"""Two in-process replicas sharing one real redis-server: any replica takes a job, any replica answers for it."""

import time

import pytest
import redis
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from helpers.audio_files import wav_bytes
from helpers.redis_server import RedisServer
from worker.api.app import create_app
from worker.jobstore.redis import RedisJobStore
from worker.runtime import Runtime
from worker.settings import load_settings


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def clip(speech):
    return wav_bytes(speech[: 16000 * 2])


def redis_env(url: str, prefix: str, **extra: str) -> dict[str, str]:
    env = {"ENHANCEMENT_JOBS__BACKEND": "redis", "ENHANCEMENT_JOBS__REDIS_URL": url, "ENHANCEMENT_JOBS__KEY_PREFIX": prefix}
    return env | {f"ENHANCEMENT_JOBS__{k.upper()}": v for k, v in extra.items()}


@pytest.fixture
def replicas(server, loaded_enhancer, request):
    """Start replicas on demand; every one is shut down (drained) at the end."""
    prefix = f"fleet-{request.node.name[:40]}-{time.monotonic_ns()}:"
    started = []

    def start(url: str | None = None, enhancer=loaded_enhancer, **extra: str):
        settings = load_settings(environ=redis_env(url or server.url, prefix, **extra))
        runtime = Runtime(settings, enhancer=enhancer, span_exporter=InMemorySpanExporter())
        client = TestClient(create_app(runtime))
        client.__enter__()
        started.append(client)
        return client, runtime

    start.prefix = prefix
    yield start
    for client in started:
        client.__exit__(None, None, None)


def wait_done(client, job_id, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = client.get(f"/v1/jobs/{job_id}").json()
        if view["state"] == "done":
            return view
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not done after {timeout_s} s")


def value(runtime, name, **labels):
    return runtime.registry.get_sample_value(name, labels)


def test_a_job_posted_to_one_replica_is_read_on_the_other(replicas, clip):
    a, runtime_a = replicas()
    b, runtime_b = replicas()
    posted = a.post("/v1/jobs", content=clip, headers={"content-type": "audio/wav"})
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["id"]
    view = wait_done(b, job_id)
    assert view["outcome"] == "success" and view["trace_id"]
    audio = b.get(f"/v1/jobs/{job_id}/audio")
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    assert audio.headers["x-enhancement-outcome"] == "success"
    assert a.get(f"/v1/jobs/{job_id}/audio").content == audio.content
    processed = sum(value(r, "enhancement_requests_total", outcome="success") or 0 for r in (runtime_a, runtime_b))
    assert processed == 1, "processed once, by one replica"
    assert b.get("/v1/jobs/0123").status_code == 404


def test_a_job_left_by_a_stopped_replica_completes_on_another_and_counts_a_redelivery(replicas, server, clip):
    client, runtime = replicas(visibility_timeout_seconds="0.5")
    dead = RedisJobStore(redis.Redis.from_url(server.url), consumer="killed-replica", prefix=replicas.prefix, visibility_timeout_s=0.5)
    runtime.feeder.stop(5)  # so the "killed" replica is the one to claim it
    job_id = dead.submit(clip).id
    assert dead.claim(block_ms=100).job_id == job_id  # ... and then it dies holding it
    other, survivor = replicas(visibility_timeout_seconds="0.5")
    view = wait_done(other, job_id)
    assert view["outcome"] == "success"
    assert value(survivor, "enhancement_job_redeliveries_total") == 1
    assert value(survivor, "enhancement_job_duplicates_total") == 0


def test_a_job_that_keeps_killing_its_replicas_ends_as_failed_not_in_a_loop(replicas, server, clip):
    dead = RedisJobStore(redis.Redis.from_url(server.url), consumer="killed", prefix=replicas.prefix, visibility_timeout_s=0.3)
    job_id = dead.submit(clip).id
    dead.claim(block_ms=100)
    client, runtime = replicas(visibility_timeout_seconds="0.3", max_deliveries="1")
    view = wait_done(client, job_id)
    assert (view["outcome"], view["reason"]) == ("failed", "internal")
    assert "deliveries" in view["error"]
    assert client.get(f"/v1/jobs/{job_id}/audio").status_code == 500
    assert value(runtime, "enhancement_jobs_abandoned_total") == 1


def test_only_one_replica_exports_the_fleet_gauges(replicas, clip):
    pairs = [replicas(), replicas()]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        exporting = [r for _, r in pairs if value(r, "enhancement_jobs_backlog") is not None]
        reported = all(value(r, "enhancement_job_store_up", backend="redis") == 1 for _, r in pairs)
        if exporting and reported:
            break
        time.sleep(0.1)
    assert len(exporting) == 1, "a sum across replicas must count the backlog once"
    assert reported, "every replica has reached the store"
    holder = exporting[0]
    assert value(holder, "enhancement_jobs_oldest_age_seconds") is not None


def test_with_the_store_down_intake_is_503_with_a_reason_and_sync_keeps_serving(replicas, tmp_path, clip):
    server = RedisServer(tmp_path).start()
    client, runtime = replicas(url=server.url)
    assert client.post("/v1/jobs", content=clip).status_code == 202
    server.stop()
    refused = client.post("/v1/jobs", content=clip)
    assert refused.status_code == 503
    assert refused.json()["reason"] == "job_store_unavailable" and refused.headers["retry-after"]
    assert client.get("/v1/jobs/abc").json()["reason"] == "job_store_unavailable"
    served = client.post("/v1/enhance", content=clip)
    assert served.status_code == 200 and served.content[:4] == b"RIFF"
    ready = client.get("/readyz")
    assert ready.status_code == 200, "the replica still serves /v1/enhance"
    assert ready.json()["components"]["jobs"]["reachable"] is False
    deadline = time.monotonic() + 10
    while value(runtime, "enhancement_job_store_up", backend="redis") != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert value(runtime, "enhancement_job_store_up", backend="redis") == 0
    assert value(runtime, "enhancement_http_responses_total", route="/v1/jobs", code="503") == 1

    server.start()  # back, with its append-only file: the job admitted before the outage is still there
    deadline = time.monotonic() + 30
    while client.post("/v1/jobs", content=clip).status_code != 202:
        assert time.monotonic() < deadline, "intake did not recover"
        time.sleep(0.2)
    server.stop()


def test_draining_replica_finishes_what_it_holds_and_leaves_the_rest(replicas, clip):
    client, runtime = replicas()
    ids = [client.post("/v1/jobs", content=clip).json()["id"] for _ in range(3)]
    client.__exit__(None, None, None)  # SIGTERM's path: stop claiming, finish held jobs, drain
    other, _ = replicas()
    for job_id in ids:
        assert wait_done(other, job_id)["outcome"] == "success"


def test_a_worker_on_the_memory_store_exports_no_job_store_series(loaded_enhancer):
    runtime = Runtime(load_settings(environ={}), enhancer=loaded_enhancer, span_exporter=InMemorySpanExporter())
    try:
        exposed = {metric.name for metric in runtime.registry.collect()}
        assert "enhancement_job_store_up" in exposed, "declared"
        samples = {s.name for metric in runtime.registry.collect() for s in metric.samples}
        assert "enhancement_job_store_up" not in samples, "a 0 here would read as the store being down"
        assert not samples & {"enhancement_jobs_backlog", "enhancement_jobs_claimed"}
        assert runtime.jobs.health() == {"ok": True, "backend": "memory", "retained": 0}
    finally:
        runtime.shutdown()
