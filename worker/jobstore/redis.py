"""The shared job store on Redis: one queue and one result store for every replica.

Jobs are entries of a Redis stream read through one consumer group, so Redis
itself tracks which replica holds which job (the pending entries list):

- ``submit`` stores the upload in the job's hash and appends its id to the
  stream, refusing when the backlog is full, in one script so the check and
  the append cannot interleave with another replica's.
- ``claim`` first takes over any entry whose holder has not touched it for the
  visibility timeout (a killed replica), then reads a new one. Redis counts
  deliveries; past ``max_deliveries`` the job ends as failed instead of looping.
- ``touch`` resets a held entry's idle time while it is processed, so a slow
  clip is never taken from a live replica.
- ``complete`` stores the answer, sets its TTL, enforces the byte budget and
  only then acknowledges the entry, all in one script: a replica killed at
  any moment before it leaves the job to be delivered again, and a second
  completion (a replica wrongly presumed dead) is discarded, never stored twice.

Times come from the Redis server's clock, so replicas with skewed clocks agree
on a job's age. The scripts touch keys they compute from the prefix, which is
fine on one Redis server or a replicated pair, not on Redis Cluster.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import redis

from worker.answers import Answer
from worker.jobs import JobState, QueueFull
from worker.jobstore import JobRecord, JobStoreUnavailable

GROUP = "workers"

_SUBMIT = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local t = redis.call('TIME')
local now_ms = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('HSET', KEYS[2], 'state', 'queued', 'submitted_ms', now_ms, 'data', ARGV[3])
redis.call('XADD', KEYS[1], '*', 'id', ARGV[2])
return 1
"""

# KEYS: stream, job hash, results zset, result sizes hash, result bytes counter
# ARGV: group, entry id, job id, answer json, audio, ttl ms, max bytes, job key prefix
_COMPLETE = """
local function ack()
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
end
local state = redis.call('HGET', KEYS[2], 'state')
if not state then
  ack()
  return 0
end
-- Every completion is counted, the discarded ones too: an audit of duplicates reads this.
redis.call('HINCRBY', KEYS[2], 'completions', 1)
if state == 'done' then
  ack()
  return 0
end
local t = redis.call('TIME')
local now_ms = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('HSET', KEYS[2], 'state', 'done', 'answer', ARGV[4], 'audio', ARGV[5], 'finished_ms', now_ms)
redis.call('HDEL', KEYS[2], 'data')
redis.call('PEXPIRE', KEYS[2], ARGV[6])
local size = string.len(ARGV[5])
redis.call('ZADD', KEYS[3], now_ms, ARGV[3])
redis.call('HSET', KEYS[4], ARGV[3], size)
local total = redis.call('INCRBY', KEYS[5], size)
local function forget(member)
  total = redis.call('DECRBY', KEYS[5], tonumber(redis.call('HGET', KEYS[4], member) or '0'))
  redis.call('HDEL', KEYS[4], member)
  redis.call('ZREM', KEYS[3], member)
  redis.call('DEL', ARGV[8] .. member)
end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now_ms - tonumber(ARGV[6]))) do
  forget(member)
end
while total > tonumber(ARGV[7]) do
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0)
  if #oldest == 0 then break end
  forget(oldest[1])
end
ack()
return 1
"""

# Reset a held entry's idle time, only while this consumer still holds it.
_TOUCH = """
local held = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #held == 0 or held[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""

# Take or keep the reporter lease: one replica at a time exports the fleet's gauges.
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Claimed:
    """A job this replica now holds: its stream entry, its upload and how often it was delivered."""

    entry_id: str
    job_id: str
    data: bytes
    deliveries: int
    waited_s: float  # from submission to this claim, by the Redis server's clock


@dataclass(frozen=True)
class FleetReading:
    """The shared queue as a whole, read by the replica holding the reporter lease."""

    backlog: int  # admitted, not yet taken by any replica
    claimed: int  # taken by a replica, not yet finished
    oldest_age_s: float  # the oldest unfinished job's age; 0 when there is none
    result_bytes: int  # audio kept for clients to collect


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry_ms(entry_id: str) -> int:
    return int(entry_id.split("-")[0])


class RedisJobStore:
    def __init__(
        self,
        client: redis.Redis,
        *,
        consumer: str,
        prefix: str = "enhancement:",
        max_backlog: int = 256,
        retention_s: float = 900.0,
        max_retained_bytes: int = 256 * 2**20,
        visibility_timeout_s: float = 30.0,
        max_deliveries: int = 3,
    ) -> None:
        if max_backlog < 1 or max_deliveries < 1 or visibility_timeout_s <= 0 or retention_s <= 0 or max_retained_bytes < 1:
            raise ValueError("the backlog, deliveries, visibility timeout and retention limits must be positive")
        # Typed loosely on purpose: redis-py's reply types are unions of every RESP shape, and each
        # call below reads the one shape its command returns.
        self.client: Any = client
        self.consumer = consumer
        self.max_backlog = max_backlog
        self.max_deliveries = max_deliveries
        self.visibility_timeout_s = visibility_timeout_s
        self._retention_ms = int(retention_s * 1000)
        self._max_retained_bytes = max_retained_bytes
        self.prefix = prefix
        self.stream = prefix + "jobs"
        self._results = prefix + "results"
        self._sizes = prefix + "result_sizes"
        self._total = prefix + "result_bytes"
        self._lease = prefix + "reporter"
        self._submit = client.register_script(_SUBMIT)
        self._complete = client.register_script(_COMPLETE)
        self._touch = client.register_script(_TOUCH)
        self._take_lease = client.register_script(_LEASE)
        self._release_lease = client.register_script(_RELEASE)
        self._group_ready = False
        # The last call's verdict, for /readyz, which must answer without a network call of its own.
        self.reachable: bool | None = None

    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def ensure_group(self) -> None:
        """Create the consumer group once; from the stream's start, so no job admitted earlier is skipped."""
        if self._group_ready:
            return
        try:
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    # --- the routes' side -------------------------------------------------------------

    def submit(self, data: bytes) -> JobRecord:
        job_id = uuid.uuid4().hex
        try:
            self.ensure_group()
            admitted = self._submit(keys=[self.stream, self.job_key(job_id)], args=[self.max_backlog, job_id, data])
        except redis.RedisError as exc:
            self._group_ready = False
            self.reachable = False
            raise JobStoreUnavailable(f"the job store cannot be reached: {exc}") from exc
        self.reachable = True
        if not admitted:
            raise QueueFull(f"the fleet's backlog is full ({self.max_backlog} jobs unfinished)")
        return JobRecord(job_id, JobState.QUEUED)

    def get(self, job_id: str) -> JobRecord | None:
        try:
            fields = self.client.hmget(self.job_key(job_id), ["state", "answer", "audio"])
        except redis.RedisError as exc:
            self.reachable = False
            raise JobStoreUnavailable(f"the job store cannot be reached: {exc}") from exc
        self.reachable = True
        state, answer, audio = fields
        if state is None:
            return None
        job_state = JobState(_text(state))
        if job_state is not JobState.DONE:
            return JobRecord(job_id, job_state)
        return JobRecord(job_id, job_state, Answer.from_json(answer, audio or None))

    def health(self) -> dict[str, object]:
        # Reported, never required: without the store this replica still serves /v1/enhance.
        return {"ok": self.reachable is not False, "backend": "redis", "reachable": self.reachable}

    # --- the consumer's side ----------------------------------------------------------

    def claim(self, block_ms: int) -> Claimed | None:
        """The next job for this replica: an abandoned one first, else a new one (waiting up to ``block_ms``)."""
        self.ensure_group()
        idle_ms = int(self.visibility_timeout_s * 1000)
        _, stale, _ = self.client.xautoclaim(self.stream, GROUP, self.consumer, idle_ms, start_id="0-0", count=1)
        if stale:
            entry_id = _text(stale[0][0])
            return self._load(entry_id, stale[0][1])
        fresh = self.client.xreadgroup(GROUP, self.consumer, {self.stream: ">"}, count=1, block=block_ms)
        if not fresh:
            return None
        entry_id, fields = fresh[0][1][0]
        return self._load(_text(entry_id), fields)

    def _load(self, entry_id: str, fields: dict) -> Claimed | None:
        job_id = _text(fields.get(b"id") or fields.get("id") or "")
        pending = self.client.xpending_range(self.stream, GROUP, min=entry_id, max=entry_id, count=1)
        deliveries = int(pending[0]["times_delivered"]) if pending else 1
        key = self.job_key(job_id)
        data, state = self.client.hmget(key, ["data", "state"])
        if state is None or _text(state) == JobState.DONE.value:
            # Finished already (a completion raced this delivery) or gone: nothing left to do.
            self.client.xack(self.stream, GROUP, entry_id)
            self.client.xdel(self.stream, entry_id)
            return None
        self.client.hset(key, mapping={"state": JobState.RUNNING.value, "deliveries": deliveries})
        seconds, micros = self.client.time()
        waited_s = max(0.0, seconds + micros / 1e6 - _entry_ms(entry_id) / 1000)
        return Claimed(entry_id, job_id, data or b"", deliveries, waited_s)

    def touch(self, claimed: Claimed) -> bool:
        """Keep holding a job being processed; False if another replica has taken it over."""
        return bool(self._touch(keys=[self.stream], args=[GROUP, self.consumer, claimed.entry_id]))

    def complete(self, claimed: Claimed, answer: Answer) -> bool:
        """Store the answer, then acknowledge; False when another replica had already stored one."""
        keys = [self.stream, self.job_key(claimed.job_id), self._results, self._sizes, self._total]
        args: list[str | bytes | int] = [
            GROUP,
            claimed.entry_id,
            claimed.job_id,
            answer.to_json(),
            answer.audio or b"",
            self._retention_ms,
            self._max_retained_bytes,
            self.prefix + "job:",
        ]
        return bool(self._complete(keys=keys, args=args))

    # --- the fleet's gauges -----------------------------------------------------------

    def hold_lease(self, ttl_s: float) -> bool:
        return bool(self._take_lease(keys=[self._lease], args=[self.consumer, int(ttl_s * 1000)]))

    def release_lease(self) -> None:
        self._release_lease(keys=[self._lease], args=[self.consumer])

    def forget_consumer(self) -> None:
        """Leave the group on a clean stop (nothing held), so restarts do not pile up dead consumers."""
        self.client.xgroup_delconsumer(self.stream, GROUP, self.consumer)

    def read_fleet(self) -> FleetReading:
        self.ensure_group()
        with self.client.pipeline(transaction=False) as pipe:
            pipe.xlen(self.stream)
            pipe.xpending(self.stream, GROUP)
            pipe.xrange(self.stream, count=1)
            pipe.get(self._total)
            pipe.time()
            unfinished, pending, oldest, total, (seconds, micros) = pipe.execute()
        claimed = int(pending["pending"])
        age = 0.0
        if oldest:
            age = max(0.0, seconds + micros / 1e6 - _entry_ms(_text(oldest[0][0])) / 1000)
        return FleetReading(max(0, unfinished - claimed), claimed, age, int(total or 0))
