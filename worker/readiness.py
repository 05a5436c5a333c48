"""Production-readiness checks behind ``enhancement-worker check-config``."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

from enhancement.errors import EnhancementError
from enhancement.model import MetricGanEnhancer, resolve_device
from worker.settings import Settings

# The model, torch and a handful of clips in flight fit in well under this.
MIN_AVAILABLE_MEMORY_BYTES = 1024**3


@dataclass(frozen=True)
class MemoryReading:
    """The one memory check, shared by /readyz and check-config."""

    available_bytes: int

    @property
    def enough(self) -> bool:
        return self.available_bytes >= MIN_AVAILABLE_MEMORY_BYTES


def read_memory() -> MemoryReading:
    return MemoryReading(psutil.virtual_memory().available)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _model_check(config: Settings) -> list[Check]:
    checks = []
    try:
        device = resolve_device(config.model.device)
        checks.append(Check("device available", True, f"{device} (requested {config.model.device})"))
    except EnhancementError as exc:
        return [Check("device available", False, str(exc)), Check("model loadable", False, "skipped: no device")]
    enhancer = MetricGanEnhancer(config.model.source, device)
    try:
        enhancer.load()
        checks.append(
            Check("model loadable", True, f"{config.model.source} ({enhancer.parameter_count:,} parameters, {enhancer.load_seconds:.2f} s)")
        )
    except EnhancementError as exc:
        checks.append(Check("model loadable", False, str(exc)))
    return checks


def _telemetry_check() -> Check:
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return Check("telemetry configured", True, "traces explicitly disabled (OTEL_TRACES_EXPORTER=none)")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        return Check("telemetry configured", True, f"OTLP traces to {endpoint}")
    return Check("telemetry configured", False, "set OTEL_EXPORTER_OTLP_ENDPOINT, or OTEL_TRACES_EXPORTER=none to run without traces")


def production_report(config: Settings) -> list[Check]:
    checks = [Check("config valid", True, "all settings within range")]
    checks += _model_check(config)
    memory = read_memory()
    checks.append(
        Check(
            "memory enough",
            memory.enough,
            f"{memory.available_bytes / 1024**3:.1f} GiB available, {MIN_AVAILABLE_MEMORY_BYTES / 1024**3:.0f} GiB needed",
        )
    )
    token_file = config.service.auth_token_file
    if token_file is not None:
        checks.append(Check("auth token readable", token_file.is_file(), str(token_file)))
    else:
        checks.append(Check("auth token", True, "none configured: /v1/* is open", required=False))
    checks.append(_telemetry_check())
    return checks
