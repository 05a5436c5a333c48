"""The refresh loop: read, compute against the previous reading, draw; `q` quits."""

from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import sys
import termios
import threading
import time
import tty
from collections import deque
from collections.abc import Iterator

from rich.console import Console, Group
from rich.live import Live

from ops.top import render
from ops.top.snapshot import ReplicaView, view
from ops.top.sources import MetricsSource, PrometheusSource, Reading, Samples, active_alerts

HISTORY = 60  # refreshes kept for the sparklines: 3 minutes at the default 3 s
SNAPSHOT_WIDTH = 140


def merged(replicas: dict[str, Samples]) -> Samples:
    """All replicas' samples as one: sums, and histograms summed bucket by bucket, are the fleet's."""
    out: Samples = {}
    for samples in replicas.values():
        for name, rows in samples.items():
            out.setdefault(name, []).extend(rows)
    return out


class Top:
    def __init__(self, source: MetricsSource | PrometheusSource, alertmanager: str | None = None) -> None:
        self.source = source
        self.alertmanager = alertmanager
        self.previous: Reading | None = None
        self.previous_at: float | None = None
        self.history: deque[tuple[float | None, float | None]] = deque(maxlen=HISTORY)

    def refresh(self) -> Group:
        reading = self.source.read()
        now = time.monotonic()
        elapsed = now - self.previous_at if self.previous_at is not None and self.previous is not None else None
        before = self.previous.replicas if self.previous else {}
        replicas = [
            view(instance, samples, before.get(instance), elapsed if instance in before else None, reading.ready.get(instance))
            for instance, samples in sorted(reading.replicas.items())
        ]
        whole: ReplicaView | None = None
        if replicas:
            everything = merged(reading.replicas)
            shared = set(before) & set(reading.replicas)
            before_all = merged({k: before[k] for k in shared}) if shared else None
            whole = view("fleet", everything, before_all, elapsed if before_all is not None else None, None)
            if elapsed:
                self.history.append((whole.clips_per_minute, whole.p95_s))
        if not reading.error:
            self.previous, self.previous_at = reading, now
        active = active_alerts(self.alertmanager) if self.alertmanager else None
        return render.screen(self.source.name, replicas, whole, self.history, active, reading.fleet, reading.error)


def snapshot(top: Top, width: int = SNAPSHOT_WIDTH) -> str:
    """One plain-text screen, no colour or cursor control: for scripts, CI and bug reports."""
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, force_terminal=False, legacy_windows=False).print(top.refresh())
    return out.getvalue()


@contextlib.contextmanager
def keys() -> Iterator[int | None]:
    """The terminal in cbreak mode, so one key press arrives without Enter; restored on exit."""
    if not sys.stdin.isatty():
        yield None
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run(top: Top, interval_s: float) -> int:
    resized = threading.Event()
    previous_handler = signal.signal(signal.SIGWINCH, lambda *_: resized.set())
    console = Console()
    try:
        with keys() as fd, Live(console=console, screen=True, auto_refresh=False, transient=True) as live:
            next_read = 0.0
            frame = None
            while True:
                if time.monotonic() >= next_read:
                    frame = top.refresh()
                    next_read = time.monotonic() + interval_s
                    live.update(frame, refresh=True)
                elif resized.is_set() and frame is not None:
                    resized.clear()
                    live.update(frame, refresh=True)  # redraw at the new size without waiting for the next read
                if fd is not None and select.select([fd], [], [], 0.1)[0]:
                    if os.read(fd, 1) in (b"q", b"Q"):
                        return 0
                elif fd is None:
                    time.sleep(0.1)
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGWINCH, previous_handler)


def main(url: str | None, prometheus: str | None, alertmanager: str | None, interval_s: float, once: bool) -> int:
    if bool(url) == bool(prometheus):
        print("top: give one of --url (a worker) or --prometheus (a fleet)", file=sys.stderr)
        return 2
    if interval_s <= 0:
        print(f"top: --interval must be positive, got {interval_s:g}", file=sys.stderr)
        return 2
    source: MetricsSource | PrometheusSource = MetricsSource(url) if url else PrometheusSource(prometheus or "")
    top = Top(source, alertmanager)
    if once:
        text = snapshot(top)
        print(text, end="")
        return 1 if top.previous is None else 0
    return run(top, interval_s)
