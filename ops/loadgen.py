"""Open-loop load generator for the HTTP service.

Requests start on a fixed schedule (``rate`` per second) whether or not
earlier ones have finished, as real clients do; a slow worker therefore shows
up as queueing and 429s rather than as a politely reduced offered load.
"""

from __future__ import annotations

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
    elapsed_s: float = 0.0

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
        return "\n".join(lines)


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
) -> LoadReport:
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    headers = {"content-type": "audio/wav"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    report = LoadReport()
    lock = threading.Lock()
    endpoint = url.rstrip("/") + "/v1/enhance"

    def one(client: httpx.Client, body: bytes) -> None:
        started = time.perf_counter()
        try:
            response = client.post(endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            with lock:
                report.errors[type(exc).__name__] += 1
            return
        elapsed = time.perf_counter() - started
        with lock:
            report.statuses[response.status_code] += 1
            report.outcomes[response.headers.get("x-enhancement-outcome", "none")] += 1
            if response.status_code == 200:
                report.latencies_s.append(elapsed)

    total = int(rate * duration_s)
    started = time.perf_counter()
    with httpx.Client(timeout=120.0) as client, ThreadPoolExecutor(max_workers=concurrency) as pool:
        for index in range(total):
            delay = started + index / rate - time.perf_counter()
            if stop is not None and stop.wait(max(delay, 0)):
                break
            if stop is None and delay > 0:
                time.sleep(delay)
            pool.submit(one, client, clips[index % len(clips)])
            if progress and (index + 1) % max(1, int(rate)) == 0:
                print(f"\rsent {index + 1}/{total}", end="", file=sys.stderr, flush=True)
    report.elapsed_s = time.perf_counter() - started
    if progress:
        print(file=sys.stderr)
    return report
