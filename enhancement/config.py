"""Worker settings: defaults, an optional YAML file, then environment overrides.

Every default works with no file at all. Environment variables override the
file: ``ENHANCEMENT_<SECTION>__<FIELD>``, e.g. ``ENHANCEMENT_MODEL__DEVICE=cuda``
or ``ENHANCEMENT_LOUDNESS__GAIN_RATIO=1.4``. Each setting with a unit carries
the unit in its name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from enhancement.errors import ConfigError

ENV_PREFIX = "ENHANCEMENT_"
ENV_NESTING = "__"
SHIPPED_MODEL_DIR = Path(__file__).parent / "checkpoints" / "metricgan-plus-synth"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudioLimits(_Section):
    min_duration_seconds: float = Field(0.5, gt=0)
    max_duration_seconds: float = Field(600.0, gt=0)
    max_channels: int = Field(2, ge=1, le=64)
    min_sample_rate_hz: int = Field(8_000, ge=1)
    max_sample_rate_hz: int = Field(192_000, ge=1)
    # Below this RMS (after removing DC) a clip holds no signal worth enhancing.
    silence_threshold_dbfs: float = Field(-70.0, le=0)
    max_input_bytes: int = Field(64 * 1024 * 1024, gt=0)

    @model_validator(mode="after")
    def _ranges(self) -> AudioLimits:
        if self.min_duration_seconds >= self.max_duration_seconds:
            raise ValueError("min_duration_seconds must be below max_duration_seconds")
        if self.min_sample_rate_hz > self.max_sample_rate_hz:
            raise ValueError("min_sample_rate_hz must not exceed max_sample_rate_hz")
        return self


class PatternSettings(_Section):
    enabled: bool = True
    # An impulse this many times larger than anything 1-20 ms around it is a click.
    click_threshold: float = Field(2.5, gt=1)
    # Burst frames stand this far above the local vowel level (the 80th percentile)...
    burst_threshold_db: float = Field(4.0, gt=0)
    # ...and are noise-like; voiced speech frames sit near 0.003, noise at 0.1-0.6.
    burst_min_flatness: float = Field(0.05, gt=0, lt=1)
    dropout_min_ms: float = Field(10.0, gt=0)
    clipping_min_run_samples: int = Field(3, ge=2)


class BreakerSettings(_Section):
    failure_threshold: int = Field(5, ge=1)
    recovery_timeout_seconds: float = Field(300.0, gt=0)
    half_open_successes: int = Field(3, ge=1)


class ModelSettings(_Section):
    source: Path = SHIPPED_MODEL_DIR
    device: Literal["auto", "cpu", "cuda"] = "auto"
    timeout_seconds: float = Field(30.0, gt=0)
    retry_attempts: int = Field(2, ge=1, le=10)
    retry_base_delay_seconds: float = Field(0.05, ge=0)
    retry_max_delay_seconds: float = Field(1.0, ge=0)
    breaker: BreakerSettings = BreakerSettings()


class LoudnessSettings(_Section):
    gain_ratio: float = Field(1.6, gt=0, le=10)
    ceiling_dbtp: float = Field(-1.0, le=0)
    oversampling_factor: int = Field(4, ge=4, le=16)
    lookahead_ms: float = Field(5.0, gt=0)
    release_ms: float = Field(60.0, gt=0)
    tolerance_lu: float = Field(0.5, gt=0)


class QualitySettings(_Section):
    dnsmos_sample_ratio: float = Field(0.1, ge=0, le=1)


class OutputSettings(_Section):
    format: Literal["wav", "flac"] = "wav"
    subtype: Literal["PCM_16", "PCM_24", "FLOAT"] = "PCM_16"


class ServiceSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    queue_capacity: int = Field(16, ge=1)
    auth_token_file: Path | None = None
    job_retention_seconds: float = Field(900.0, gt=0)
    # Finished /v1/jobs results kept for collection: whichever limit is reached first drops the
    # oldest. 256 MiB is about 2 hours of 16-bit 16 kHz output, far more than clients leave waiting.
    job_retention_max_jobs: int = Field(1024, ge=1)
    job_retention_max_bytes: int = Field(256 * 2**20, ge=1)
    # Off by default: with the breaker open the fallback still serves, so traffic need not move.
    ready_requires_closed_breaker: bool = False


class WorkerConfig(_Section):
    audio: AudioLimits = AudioLimits()
    patterns: PatternSettings = PatternSettings()
    model: ModelSettings = ModelSettings()
    loudness: LoudnessSettings = LoudnessSettings()
    quality: QualitySettings = QualitySettings()
    output: OutputSettings = OutputSettings()
    service: ServiceSettings = ServiceSettings()


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = key[len(ENV_PREFIX) :].lower().split(ENV_NESTING)
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return tree


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"  {where}: {problem['msg']}")
    return "\n".join(lines)


def load_config(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> WorkerConfig:
    """Build the configuration; raise ConfigError naming every bad setting."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        data = loaded
    data = _merge(data, _env_overrides(os.environ if environ is None else environ))
    try:
        return WorkerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("invalid configuration:\n" + _describe(exc)) from exc
