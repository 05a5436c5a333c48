"""The screen: rich renderables for each section, coloured by the thresholds the alerts use."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ops.top.snapshot import (
    CONFIDENCE_ALERT,
    FALLBACK_RATIO_ALERT,
    QUEUE_FILL_ALERT,
    SUCCESS_TARGET,
    TRUE_PEAK_CEILING_DBTP,
    ReplicaView,
)

SPARK = "▁▂▃▄▅▆▇█"
FLEET_LABELS = {"clips_per_s": "clips/s", "success_ratio": "success", "p95_s": "p95 s", "rtf": "RTF"}
FLEET_FORMATS = {"clips_per_s": "{:.2f}", "success_ratio": "{:.1%}", "p95_s": "{:.3f}", "rtf": "{:.3f}"}
MISSING = "-"


def sparkline(values: Sequence[float | None], width: int = 30) -> str:
    shown = [v for v in values[-width:]]
    known = [v for v in shown if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low or 1.0
    return "".join(" " if v is None else SPARK[min(len(SPARK) - 1, int((v - low) / span * (len(SPARK) - 1)))] for v in shown)


def number(value: float | None, fmt: str = "{:.2f}", style: str = "") -> Text:
    return Text(MISSING if value is None else fmt.format(value), style=style if value is not None else "dim")


def judged(value: float | None, fmt: str, *, bad: bool) -> Text:
    return number(value, fmt, "bold red" if bad else "green")


def seconds(value: float | None) -> Text:
    if value is None:
        return Text(MISSING, style="dim")
    return Text(f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s")


def size(value: float | None) -> str:
    if value is None:
        return MISSING
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return MISSING


def window(v: ReplicaView) -> str:
    return f"last {v.seconds:.0f} s" if v.seconds else "since start"


def status(replicas: list[ReplicaView]) -> Panel:
    table = Table(expand=True, box=None)
    for column in ("replica", "ready", "model", "breaker", "queue", "in flight"):
        table.add_column(column)
    for v in replicas:
        ready = (
            Text(MISSING, style="dim") if v.ready is None else Text("ready" if v.ready else "NOT READY", "green" if v.ready else "bold red")
        )
        fill = v.queue_fill
        table.add_row(
            v.instance,
            ready,
            Text("loaded" if v.model_loaded else "NOT LOADED", "green" if v.model_loaded else "bold red"),
            Text(v.breaker, {"closed": "green", "half-open": "yellow"}.get(v.breaker, "bold red")),
            Text(f"{v.queue_depth:.0f} / {v.queue_capacity:.0f}", "bold red" if fill is not None and fill > QUEUE_FILL_ALERT else ""),
            f"{v.inflight:.0f}",
        )
    return Panel(table, title="Status")


def throughput(replicas: list[ReplicaView], history: Sequence[tuple[float | None, float | None]]) -> Panel:
    table = Table(expand=True, box=None)
    for column in (
        "replica",
        "window",
        "clips",
        "clips/min",
        *("success", "degraded", "rejected", "failed"),
        "success ratio",
        "p95",
        "RTF",
    ):
        table.add_column(column, justify="right" if column not in ("replica", "window") else "left")
    for v in replicas:
        ratio = v.success_ratio
        table.add_row(
            v.instance,
            window(v),
            f"{v.clips:.0f}",
            number(v.clips_per_minute, "{:.1f}"),
            *(f"{v.outcomes[o]:.0f}" for o in ("success", "degraded", "rejected", "failed")),
            judged(ratio, "{:.1%}", bad=ratio is not None and ratio < SUCCESS_TARGET),
            seconds(v.p95_s),
            judged(v.rtf, "{:.3f}", bad=v.rtf is not None and v.rtf > 1.0),
        )
    rates = [h[0] for h in history]
    p95s = [h[1] for h in history]
    trend = Text.assemble(
        ("clips/min ", "dim"),
        (sparkline(rates), "cyan"),
        ("   p95 ", "dim"),
        (sparkline(p95s), "magenta"),
        (f"   target {SUCCESS_TARGET:.0%} success", "dim"),
    )
    return Panel(Group(table, trend), title="Throughput")


def stages(v: ReplicaView) -> Panel:
    table = Table(expand=True, box=None)
    for column in ("stage", "p50", "p95", "p99", "share of time"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for s in v.stages:
        table.add_row(s.name, seconds(s.p50_s), seconds(s.p95_s), seconds(s.p99_s), number(s.share, "{:.1%}"))
    if not v.stages:
        table.add_row(Text("no clips in this window", style="dim"), "", "", "", "")
    return Panel(table, title=f"Per stage ({window(v)})")


def patterns(v: ReplicaView) -> Panel:
    table = Table(expand=True, box=None)
    table.add_column("kind")
    table.add_column("events", justify="right")
    table.add_column("mean confidence", justify="right")
    for kind in sorted(set(v.patterns) | set(v.confidence)):
        confidence = v.confidence.get(kind)
        table.add_row(
            kind,
            f"{v.patterns.get(kind, 0):.0f}",
            judged(confidence, "{:.2f}", bad=confidence is not None and confidence < CONFIDENCE_ALERT),
        )
    if not v.patterns and not v.confidence:
        table.add_row("none detected", "0", Text(MISSING, style="dim"))
    return Panel(table, title="Pattern detection")


def metricgan(v: ReplicaView) -> Panel:
    table = Table(expand=True, box=None, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("SNR improvement p50", number(v.snr_improvement_db, "{:+.1f} dB"))
    for dimension, score in sorted(v.dnsmos.items()):
        table.add_row(f"DNSMOS {dimension}", number(score, "{:.2f}"))
    if not v.dnsmos:
        table.add_row("DNSMOS", Text("no sampled clip", style="dim"))
    ratio = v.fallback_ratio
    table.add_row("fallback share", judged(ratio, "{:.1%}", bad=ratio is not None and ratio > FALLBACK_RATIO_ALERT))
    for reason, count in sorted(v.fallbacks.items()):
        table.add_row(f"  fallbacks: {reason}", f"{count:.0f}")
    return Panel(table, title="MetricGAN+")


def loudness(v: ReplicaView) -> Panel:
    table = Table(expand=True, box=None, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    peak = v.true_peak_p99_dbtp
    table.add_row("gain p50", number(v.gain_db, "{:+.1f} dB"))
    table.add_row("output loudness p50", number(v.output_lufs, "{:.1f} LUFS"))
    table.add_row("true peak p99", judged(peak, "{:.2f} dBTP", bad=peak is not None and peak > TRUE_PEAK_CEILING_DBTP))
    table.add_row("limiter reduction p95", number(v.limiter_db, "{:.1f} dB"))
    share = v.within_ceiling
    table.add_row("within the -1 dBTP ceiling", judged(share, "{:.1%}", bad=share is not None and share < 0.99))
    return Panel(table, title="Loudness")


def resources(replicas: list[ReplicaView]) -> Panel:
    table = Table(expand=True, box=None)
    for column in ("replica", "CPU (cores)", "RSS", "GPU memory", "HTTP answers"):
        table.add_column(column)
    for v in replicas:
        codes = "  ".join(f"{code}: {n:.0f}" for code, n in sorted(v.http_codes.items()))
        table.add_row(
            v.instance, number(v.cpu_cores, "{:.2f}"), size(v.rss_bytes), "no GPU" if v.gpu_bytes is None else size(v.gpu_bytes), codes
        )
    return Panel(table, title="Resources")


def alerts(active: list[dict] | str | None) -> Panel:
    heartbeat = False
    body: RenderableType
    if active is None:
        body = Text("no Alertmanager given (--alertmanager URL)", style="dim")
    elif isinstance(active, str):
        body = Text(f"cannot read alerts: {active}", style="yellow")
    else:
        # The Watchdog always fires: its presence says the alerting pipeline works, not that anything is wrong.
        heartbeat = any(a["labels"].get("alertname") == "Watchdog" for a in active)
        active = [a for a in active if a["labels"].get("alertname") != "Watchdog"]
    if isinstance(active, list) and not active:
        body = Text("none firing" + ("  (Watchdog heartbeat present)" if heartbeat else ""), style="green")
    elif isinstance(active, list):
        table = Table(expand=True, box=None)
        for column in ("severity", "alert", "instance", "summary"):
            table.add_column(column)
        for alert in active:
            labels = alert["labels"]
            severity = labels.get("severity", "")
            table.add_row(
                Text(severity, {"critical": "bold red", "warning": "yellow"}.get(severity, "")),
                labels.get("alertname", ""),
                labels.get("instance", ""),
                alert.get("annotations", {}).get("summary", ""),
            )
        body = table
    return Panel(body, title="Alerts")


def screen(
    source: str,
    replicas: list[ReplicaView],
    merged: ReplicaView | None,
    history: Sequence[tuple[float | None, float | None]],
    active: list[dict] | str | None,
    fleet: dict[str, float],
    error: str | None,
) -> Group:
    header = Text.assemble(("enhancement-worker top", "bold"), f"  {source}  ", (time.strftime("%H:%M:%S"), "dim"), ("   q quits", "dim"))
    parts: list[RenderableType] = [header]
    if fleet:
        shown = {name: value for name, value in fleet.items() if not math.isnan(value)}
        parts.append(
            Text(
                "fleet over 5 min (recording rules): "
                + "  ".join(
                    f"{FLEET_LABELS[name]} {FLEET_FORMATS[name].format(shown[name]) if name in shown else MISSING}" for name in FLEET_LABELS
                ),
                style="cyan",
            )
        )
    if error:
        parts.append(Text(f"cannot read: {error}", style="bold red"))
    if merged is None:
        parts.append(alerts(active))
        return Group(*parts)
    parts += [status(replicas), throughput(replicas, history), stages(merged)]
    middle = Table.grid(expand=True)
    for _ in range(3):
        middle.add_column(ratio=1)
    middle.add_row(patterns(merged), metricgan(merged), loudness(merged))
    parts += [middle, resources(replicas), alerts(active)]
    return Group(*parts)
