"""The shared job store on a real redis-server: intake, claims, redelivery, completion, retention, the fleet's gauges."""

import time

import pytest
import redis

from helpers.redis_server import RedisServer
from worker.answers import Answer
from worker.jobs import JobState, QueueFull
from worker.jobstore import JobStoreUnavailable
from worker.jobstore.redis import RedisJobStore


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield running
    running.stop()


@pytest.fixture
def make_store(server, request):
    client = redis.Redis.from_url(server.url)
    prefix = f"test-{request.node.name[:40]}-{time.monotonic_ns()}:"

    def make(consumer: str = "replica-a", **options) -> RedisJobStore:
        return RedisJobStore(client, consumer=consumer, prefix=prefix, **options)

    return make


def done(audio: bytes = b"RIFF-audio") -> Answer:
    methods = {"enhancement": "metricgan_plus"}
    return Answer("success", clip_id="c", trace_id="ab" * 16, audio_duration_s=1.5, processing_s=0.2, methods=methods, audio=audio)


def test_a_job_submitted_on_one_replica_is_claimed_by_another_and_read_on_a_third(make_store):
    a, b, c = make_store("a"), make_store("b"), make_store("c")
    record = a.submit(b"upload")
    assert record.state is JobState.QUEUED
    assert c.get(record.id).state is JobState.QUEUED
    claimed = b.claim(block_ms=100)
    assert (claimed.job_id, claimed.data, claimed.deliveries) == (record.id, b"upload", 1)
    assert c.get(record.id).state is JobState.RUNNING
    assert b.complete(claimed, done())
    finished = c.get(record.id)
    assert finished.state is JobState.DONE
    assert finished.answer == done()
    assert c.client.hget(c.job_key(record.id), "data") is None, "the upload is dropped once answered"
    assert c.client.xlen(c.stream) == 0, "an answered job leaves the stream"
    assert c.get("no-such-job") is None


def test_a_full_backlog_refuses_intake_until_a_job_finishes(make_store):
    store = make_store(max_backlog=2)
    store.submit(b"1")
    store.submit(b"2")
    with pytest.raises(QueueFull, match="backlog is full"):
        store.submit(b"3")
    store.complete(store.claim(block_ms=100), done())
    store.submit(b"3")


def test_a_job_held_by_a_replica_that_stopped_is_delivered_again_after_the_visibility_timeout(make_store):
    dead = make_store("dead", visibility_timeout_s=0.3)
    alive = make_store("alive", visibility_timeout_s=0.3)
    record = dead.submit(b"clip")
    assert dead.claim(block_ms=100).job_id == record.id
    assert alive.claim(block_ms=50) is None, "not before the visibility timeout"
    time.sleep(0.4)
    again = alive.claim(block_ms=50)
    assert (again.job_id, again.data, again.deliveries) == (record.id, b"clip", 2)
    assert alive.complete(again, done())
    assert alive.get(record.id).state is JobState.DONE


def test_a_touched_job_is_never_taken_from_the_replica_processing_it(make_store):
    slow = make_store("slow", visibility_timeout_s=0.3)
    other = make_store("other", visibility_timeout_s=0.3)
    slow.submit(b"long clip")
    claimed = slow.claim(block_ms=100)
    for _ in range(4):
        time.sleep(0.15)
        assert slow.touch(claimed)
        assert other.claim(block_ms=10) is None
    assert not other.touch(claimed), "only the holder may touch"


def test_a_second_completion_is_discarded_and_the_first_answer_kept(make_store):
    first = make_store("first", visibility_timeout_s=0.2)
    second = make_store("second", visibility_timeout_s=0.2)
    record = first.submit(b"clip")
    slow = first.claim(block_ms=100)
    time.sleep(0.3)
    fast = second.claim(block_ms=50)
    assert second.complete(fast, done(b"fast"))
    assert not first.complete(slow, done(b"slow")), "the presumed-dead replica's answer is discarded"
    assert first.get(record.id).answer.audio == b"fast"
    assert first.client.xpending(first.stream, "workers")["pending"] == 0


def test_finished_answers_expire_after_retention(make_store):
    store = make_store(retention_s=0.3)
    record = store.submit(b"clip")
    store.complete(store.claim(block_ms=100), done())
    assert store.get(record.id).state is JobState.DONE
    time.sleep(0.5)
    assert store.get(record.id) is None
    newer = store.submit(b"clip")
    store.complete(store.claim(block_ms=100), done(b"x" * 10))
    assert store.read_fleet().result_bytes == 10, "expired answers leave the byte count"
    assert store.get(newer.id) is not None


def test_the_byte_budget_drops_the_oldest_answers_first(make_store):
    store = make_store(max_retained_bytes=25)
    ids = []
    for _ in range(3):
        ids.append(store.submit(b"clip").id)
        store.complete(store.claim(block_ms=100), done(b"a" * 10))
    assert store.get(ids[0]) is None
    assert store.get(ids[1]).answer.audio == b"a" * 10 and store.get(ids[2]) is not None
    assert store.read_fleet().result_bytes == 20


def test_the_fleet_reading_counts_waiting_and_held_jobs_and_the_oldest_age(make_store):
    store = make_store()
    assert store.read_fleet().backlog == 0 and store.read_fleet().oldest_age_s == 0
    for _ in range(3):
        store.submit(b"clip")
    time.sleep(0.2)
    store.claim(block_ms=100)
    reading = store.read_fleet()
    assert (reading.backlog, reading.claimed) == (2, 1)
    assert 0.15 < reading.oldest_age_s < 5


def test_one_replica_at_a_time_holds_the_reporter_lease(make_store):
    a, b = make_store("a"), make_store("b")
    assert a.hold_lease(0.3) and not b.hold_lease(0.3)
    assert a.hold_lease(0.3), "the holder keeps it"
    a.release_lease()
    assert b.hold_lease(0.3) and not a.hold_lease(0.3)
    time.sleep(0.4)
    assert a.hold_lease(0.3), "a holder that stopped loses it when it expires"


def test_an_unreachable_store_refuses_intake_and_lookups_with_a_named_error():
    client = redis.Redis(port=1, socket_connect_timeout=0.2)
    store = RedisJobStore(client, consumer="x")
    with pytest.raises(JobStoreUnavailable, match="cannot be reached"):
        store.submit(b"clip")
    with pytest.raises(JobStoreUnavailable):
        store.get("abc")
    assert store.health() == {"ok": False, "backend": "redis", "reachable": False}
