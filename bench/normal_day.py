"""A normal day, compressed: healthy but realistic traffic against the local stack, with the
shipped rules and routing, for longer than the longest `for` of any warning or critical alert.
It passes when no warning or critical notification reaches the receiver.

    make normal-day            # 40 minutes; writes bench/results/normal_day.json
    python -m bench.normal_day --minutes 40 [--json out.json]

The traffic, after a short calibration of what one worker sustains:
- a ramp from idle to 80% of that capacity (in seconds of audio per second), a plateau, and
  back down to a quiet evening;
- two bursts of concurrent uploads that briefly fill the queue and meet 429 (clients retry
  after Retry-After, as real ones do);
- clip lengths from 0.5 s to the 600 s cap: mostly 1-10 s, some 30 s and 2 minutes, and one
  10-minute clip at a quiet hour;
- clean and noisy speech (0-20 dB and a 45 dB floor) in several voices;
- a trickle of hostile uploads (truncated, undecodable, silent), one every 30 seconds.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import yaml

from bench import common
from enhancement.encode import audio_bytes
from ops.stack import PROMETHEUS_DIR, LocalStack
from recipes import corpus
from tests.helpers.hostile_corpus import cases as hostile_cases

PEAK_LOAD = 0.8
VOICES = corpus.HELD_OUT_VOICES
NOISE_KINDS = corpus.HELD_OUT_NOISE_KINDS
HOSTILE_EVERY_S = 30.0
RETRIES = 3
TICK_S = 0.1
# One more than the queue holds (16) with one clip in progress: a burst meets a few 429s, as bursts
# do, without spending more of a 99.9% availability budget than a normal day can afford.
BURST_SIZE = 18
WATCHERS = {"Watchdog", "WatchdogHeartbeatMissing"}
RULES = PROMETHEUS_DIR / "rules"


def load_shape(fraction: float) -> float:
    """Share of the peak load at this point of the day: ramp up, plateau, ramp down, quiet evening."""
    if fraction < 0.25:
        return 0.05 + 0.95 * fraction / 0.25
    if fraction < 0.55:
        return 1.0
    if fraction < 0.75:
        return 1.0 - 0.9 * (fraction - 0.55) / 0.2
    return 0.1


def make_clips(rng: np.random.Generator) -> dict[str, list[tuple[float, bytes]]]:
    """Clips by length class, clean and noisy, several voices; speech is synthesised once and cut."""
    speech = {voice: corpus.speech_clip(rng, voice, 60.0) for voice in VOICES}

    def clip(seconds: float) -> tuple[float, bytes]:
        voice = VOICES[int(rng.integers(len(VOICES)))]
        source = speech[voice]
        repeats = math.ceil(seconds * corpus.SAMPLE_RATE_HZ / len(source))
        clean = np.tile(source, repeats)[: int(seconds * corpus.SAMPLE_RATE_HZ)]
        kind = NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))]
        snr_db = 45.0 if rng.random() < 0.3 else float(rng.uniform(0, 20))  # a third arrive clean
        noisy = corpus.mix_at_snr(clean, corpus.noise(rng, kind, len(clean)), snr_db)
        return seconds, audio_bytes(noisy.astype(np.float32), corpus.SAMPLE_RATE_HZ)

    return {
        "short": [clip(float(s)) for s in rng.uniform(0.5, 10.0, 24)],
        "medium": [clip(30.0) for _ in range(3)],
        "long": [clip(120.0) for _ in range(2)],
        "cap": [clip(600.0)],
    }


class Client:
    """Sends clips open-loop, retrying a 429 after Retry-After as a well-behaved client does."""

    def __init__(self, url: str) -> None:
        self.url = url + "/v1/enhance"
        self.http = httpx.Client(timeout=300)
        self.pool = ThreadPoolExecutor(max_workers=64)
        self.statuses: Counter[int] = Counter()
        self.latencies: list[float] = []
        self.lock = threading.Lock()

    def send(self, body: bytes) -> None:
        self.pool.submit(self._send, body)

    def _send(self, body: bytes) -> None:
        for _ in range(RETRIES):
            started = time.perf_counter()
            try:
                response = self.http.post(self.url, content=body, headers={"content-type": "audio/wav"})
            except httpx.HTTPError:
                with self.lock:
                    self.statuses[0] += 1
                return
            with self.lock:
                self.statuses[response.status_code] += 1
                if response.status_code == 200:
                    self.latencies.append(time.perf_counter() - started)
            if response.status_code != 429:
                return
            time.sleep(float(response.headers.get("retry-after", 2)))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.http.close()


def calibrate(url: str, clips: list[tuple[float, bytes]]) -> float:
    """Seconds of audio one worker processes per second, over the short clips of the day sent one
    after another: their per-clip costs (the HTTP round trip, decode, DNSMOS on every tenth clip)
    are part of what the worker can sustain, not only the model's speed on one long clip."""
    with httpx.Client(timeout=120) as http:
        http.post(url + "/v1/enhance", content=clips[0][1])  # warm-up
        started = time.perf_counter()
        for _, body in clips:
            http.post(url + "/v1/enhance", content=body)
        return sum(seconds for seconds, _ in clips) / (time.perf_counter() - started)


def notifications(stack: LocalStack) -> list[dict]:
    return [
        {
            "at": round(entry["received_at"], 1),
            "alertname": alert["labels"]["alertname"],
            "severity": alert["labels"].get("severity"),
            "status": alert["status"],
        }
        for entry in stack.receiver.snapshot()
        for alert in entry["alerts"]
        if alert["labels"]["alertname"] not in WATCHERS
    ]


def query_cost_ms(stack: LocalStack, expr: str) -> float:
    """Prometheus's own evaluation time for one instant query (its query stats)."""
    response = httpx.get(stack.url("prometheus") + "/api/v1/query", params={"query": expr, "stats": "all"}, timeout=60).json()
    return float(response["data"]["stats"]["timings"]["evalTotalTime"]) * 1000


def rules_cost(stack: LocalStack, rule_file: Path) -> dict[str, float]:
    """Per group: milliseconds to evaluate every rule once on this Prometheus's data, and per minute at the group's interval."""
    costs = {}
    for group in yaml.safe_load(rule_file.read_text())["groups"]:
        per_evaluation = sum(query_cost_ms(stack, rule["expr"]) for rule in group["rules"])
        per_minute = per_evaluation * 60 / interval_seconds(group.get("interval", "5s"))
        costs[group["name"]] = {"per_evaluation_ms": round(per_evaluation, 2), "per_minute_ms": round(per_minute, 1)}
    return costs


def interval_seconds(duration: str) -> float:
    return float(duration[:-1]) * {"s": 1, "m": 60}[duration[-1]]


def rule_costs(stack: LocalStack) -> dict[str, float]:
    result = httpx.get(stack.url("prometheus") + "/api/v1/query", params={"query": "prometheus_rule_group_last_duration_seconds"}).json()
    return {s["metric"]["rule_group"].split(";")[-1]: round(float(s["value"][1]) * 1000, 2) for s in result["data"]["result"]}


def run(minutes: float, seed: int = 7, compare_rules: Path | None = None) -> dict:
    rng = np.random.default_rng(seed)
    print("synthesising speech ...", flush=True)
    clips = make_clips(rng)
    hostile = [data for data, reason in hostile_cases().values() if reason != "ok"]
    workdir = Path(tempfile.mkdtemp(prefix="normal-day-"))
    stack = LocalStack(workdir).start()
    try:
        capacity = calibrate(stack.url("worker"), clips["short"])
        mean_short = float(np.mean([seconds for seconds, _ in clips["short"]]))
        print(f"one worker sustains {capacity:.1f} s of audio per second; {minutes:g} minutes of traffic", flush=True)
        client = Client(stack.url("worker"))
        total_s = minutes * 60
        started = time.monotonic()
        sent = Counter()
        events = {"burst": [0.35, 0.5], "cap": [0.85], "long": [0.2, 0.6], "medium": [0.3, 0.4, 0.45]}
        done: set[tuple[str, float]] = set()
        next_hostile = HOSTILE_EVERY_S
        ticks = 0
        while (elapsed := time.monotonic() - started) < total_s:
            fraction = elapsed / total_s
            rate = PEAK_LOAD * capacity * load_shape(fraction) / mean_short  # short clips a second
            for _ in range(rng.poisson(rate * TICK_S)):  # Poisson arrivals, as independent clients make
                client.send(clips["short"][int(rng.integers(len(clips["short"])))][1])
                sent["short"] += 1
            for kind, moments in events.items():
                for moment in moments:
                    if fraction >= moment and (kind, moment) not in done:
                        done.add((kind, moment))
                        if kind == "burst":
                            for _, body in clips["short"][:BURST_SIZE]:
                                client.send(body)
                            sent["burst"] += BURST_SIZE
                        else:
                            client.send(clips[kind][len(done) % len(clips[kind])][1])
                            sent[kind] += 1
            if elapsed >= next_hostile:
                client.send(hostile[int(rng.integers(len(hostile)))])
                sent["hostile"] += 1
                next_hostile += HOSTILE_EVERY_S
            time.sleep(max(0.0, started + (ticks := ticks + 1) * TICK_S - time.monotonic()))
        client.close()
        time.sleep(60)  # one more evaluation and group_wait for anything pending at the end
        received = notifications(stack)
        alerts = [n for n in received if n["severity"] in ("warning", "critical") and n["status"] == "firing"]
        latencies = np.array(client.latencies)
        audio_s = float(
            httpx.get(
                stack.url("prometheus") + "/api/v1/query",
                params={"query": "max_over_time(sum(rate(enhancement_audio_duration_seconds_sum[1m]))[1h:15s])"},
            ).json()["data"]["result"][0]["value"][1]
        )
        return {
            "minutes": minutes,
            "peak_audio_s_per_s": round(audio_s, 1),
            "peak_load_share": round(audio_s / capacity, 2),
            "capacity_audio_s_per_s": round(capacity, 1),
            "sent": dict(sent),
            "statuses": {str(k): v for k, v in sorted(client.statuses.items())},
            "latency_s": {"p50": round(float(np.percentile(latencies, 50)), 3), "p99": round(float(np.percentile(latencies, 99)), 3)},
            "warning_or_critical_notifications": alerts,
            "all_notifications": received,
            "rule_group_last_duration_ms": rule_costs(stack),
            "slo_rules_cost": {
                "shipped": rules_cost(stack, RULES / "slo.yml"),
                **({"compared": rules_cost(stack, compare_rules)} if compare_rules else {}),
            },
            "passed": not alerts,
        }
    finally:
        stack.stop()


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--compare-rules", type=Path, help="another SLO rule file to time on the same data")
    args = parser.parse_args()
    figures = run(args.minutes, compare_rules=args.compare_rules)
    for key in (
        "capacity_audio_s_per_s",
        "peak_audio_s_per_s",
        "peak_load_share",
        "sent",
        "statuses",
        "latency_s",
        "rule_group_last_duration_ms",
        "slo_rules_cost",
    ):
        print(f"{key:<32} {figures[key]}")
    print(f"warning or critical notifications: {len(figures['warning_or_critical_notifications'])}")
    for alert in figures["warning_or_critical_notifications"]:
        print(f"  {alert}")
    common.save(args.json, figures)
    raise SystemExit(0 if figures["passed"] else 1)


if __name__ == "__main__":
    main()
