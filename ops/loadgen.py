"""Open-loop load generator for the HTTP service.

Requests start on a fixed schedule (``rate`` per second) whether or not
earlier ones have finished, as real clients do; a slow worker therefore shows
up as queueing and 429s rather than as a politely reduced offered load.

With ``jobs_share`` above 0, that share of clips goes through /v1/jobs as an
asynchronous client would: submit, poll until done, collect the audio. Each
job's fate is recorded, so a run can show that none was lost.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from enhancement.decode import AUDIO_SUFFIXES
from enhancement.encode import audio_bytes

RATE_HZ = 16_000
JOB_POLL_SECONDS = 0.25


def synthetic_clip(rng: np.random.Generator, seconds: float) -> bytes:
    """A voiced-speech-like signal (gliding harmonics in syllable bursts) in noise, as WAV bytes."""
    n = int(seconds * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE_HZ
    voiced = sum(np.sin(k * phase) / k for k in range(1, 20))
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t), 0, None) ** 2
    clean = voiced * syllables
    noisy = clean / np.max(np.abs(clean)) * 0.3 + rng.standard_normal(n) * 0.3 * 10 ** (-rng.uniform(0, 20) / 20) * 0.3
    return audio_bytes(noisy.astype(np.float32), RATE_HZ)


def load_corpus(folder: Path | None, *, count: int = 8, seconds: float = 5.0, seed: int = 0) -> list[bytes]:
    if folder is not None:
        clips = [p.read_bytes() for p in sorted(folder.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES]
        if not clips:
            raise ValueError(f"no audio files in {folder}")
        return clips
    rng = np.random.default_rng(seed)
    return [synthetic_clip(rng, seconds) for _ in range(count)]


@dataclass
class LoadReport:
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    # /v1/jobs clients: job id -> its end ("collected", or what went wrong).
    jobs: dict[str, str] = field(default_factory=dict)
    # The answers to /v1/enhance alone (statuses also counts every job poll).
    enhance_statuses: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def failed(self) -> int:
        """Requests that failed the client: a 5xx or no HTTP answer at all."""
        return sum(n for code, n in self.statuses.items() if code >= 500) + sum(self.errors.values())

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q)) if self.latencies_s else float("nan")

    def summary(self) -> str:
        sent = sum(self.statuses.values()) + sum(self.errors.values())
        ok = self.statuses.get(200, 0)
        lines = [
            f"requests {sent} in {self.elapsed_s:.1f} s; {ok / self.elapsed_s if self.elapsed_s else 0:.2f} enhanced clips/s",
            f"latency of 200s: p50 {self.percentile(50) * 1000:.0f} ms, p95 {self.percentile(95) * 1000:.0f} ms, "
            f"p99 {self.percentile(99) * 1000:.0f} ms",
            "status   " + "  ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items())),
            "outcome  " + "  ".join(f"{o}: {n}" for o, n in sorted(self.outcomes.items())),
        ]
        if self.errors:
            lines.append("errors   " + "  ".join(f"{e}: {n}" for e, n in self.errors.most_common()))
        if self.jobs:
            lines.append("jobs     " + "  ".join(f"{end}: {n}" for end, n in Counter(self.jobs.values()).most_common()))
        return "\n".join(lines)


class _Clients:
    """What each request does, recording into one report."""

    def __init__(self, url: str, token: str | None, job_timeout_s: float) -> None:
        self.report = LoadReport()
        self._lock = threading.Lock()
        self._url = url.rstrip("/")
        self._headers = {"content-type": "audio/wav"} | ({"authorization": f"Bearer {token}"} if token else {})
        self._job_timeout_s = job_timeout_s

    def call(self, client: httpx.Client, method: str, path: str, body: bytes | None = None) -> httpx.Response | None:
        try:
            response = client.request(method, self._url + path, headers=self._headers, content=body)
        except httpx.HTTPError as exc:
            with self._lock:
                self.report.errors[type(exc).__name__] += 1
            return None
        with self._lock:
            self.report.statuses[response.status_code] += 1
        return response

    def enhance(self, client: httpx.Client, body: bytes) -> None:
        started = time.perf_counter()
        response = self.call(client, "POST", "/v1/enhance", body)
        if response is None:
            return
        with self._lock:
            self.report.enhance_statuses[response.status_code] += 1
            self.report.outcomes[response.headers.get("x-enhancement-outcome", "none")] += 1
            if response.status_code == 200:
                self.report.latencies_s.append(time.perf_counter() - started)

    def job(self, client: httpx.Client, body: bytes) -> None:
        started = time.perf_counter()
        submitted = self.call(client, "POST", "/v1/jobs", body)
        if submitted is None or submitted.status_code != 202:
            return
        job_id = submitted.json()["id"]
        end, outcome = self._follow(client, job_id, started)
        with self._lock:
            self.report.jobs[job_id] = end
            if end == "collected":
                self.report.latencies_s.append(time.perf_counter() - started)
                self.report.outcomes[outcome] += 1

    def _follow(self, client: httpx.Client, job_id: str, started: float) -> tuple[str, str]:
        """Poll until done, then collect the audio: (how it ended, the outcome)."""
        while time.perf_counter() - started < self._job_timeout_s:
            status = self.call(client, "GET", f"/v1/jobs/{job_id}")
            if status is not None and status.status_code == 404:
                return "lost", "none"
            if status is not None and status.status_code == 200 and status.json()["state"] == "done":
                audio = self.call(client, "GET", f"/v1/jobs/{job_id}/audio")
                collected = audio is not None and audio.status_code == 200
                return ("collected" if collected else "not collected"), status.json()["outcome"]
            time.sleep(JOB_POLL_SECONDS)
        return "timed out", "none"


def run(
    url: str,
    *,
    rate: float,
    duration_s: float,
    clips: list[bytes],
    token: str | None = None,
    concurrency: int = 16,
    progress: bool = True,
    stop: threading.Event | None = None,
    jobs_share: float = 0.0,
    job_timeout_s: float = 300.0,
) -> LoadReport:
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    if not 0.0 <= jobs_share <= 1.0:
        raise ValueError("jobs_share is a share, from 0 to 1")
    clients = _Clients(url, token, job_timeout_s)
    total = int(rate * duration_s)
    started = time.perf_counter()
    with httpx.Client(timeout=120.0) as client, ThreadPoolExecutor(max_workers=concurrency) as pool:
        for index in range(total):
            delay = started + index / rate - time.perf_counter()
            if stop is not None and stop.wait(max(delay, 0)):
                break
            if stop is None and delay > 0:
                time.sleep(delay)
            as_job = math.floor((index + 1) * jobs_share) > math.floor(index * jobs_share)  # evenly spread
            pool.submit(clients.job if as_job else clients.enhance, client, clips[index % len(clips)])
            if progress and (index + 1) % max(1, int(rate)) == 0:
                print(f"\rsent {index + 1}/{total}", end="", file=sys.stderr, flush=True)
    clients.report.elapsed_s = time.perf_counter() - started
    if progress:
        print(file=sys.stderr)
    return clients.report
