"""The worker's settings: defaults, an optional YAML file, then the environment.

Every default works with no file at all. Environment variables override the
file: ``ENHANCEMENT_<SECTION>__<FIELD>``, e.g. ``ENHANCEMENT_MODEL__DEVICE=cuda``
or ``ENHANCEMENT_LOUDNESS__GAIN_RATIO=1.4``. pydantic-settings does the
reading and the merging; this module only names every bad value in one error.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from enhancement.config import PipelineConfig, _Section
from enhancement.errors import ConfigError

ENV_PREFIX = "ENHANCEMENT_"
ENV_NESTED_DELIMITER = "__"


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


class JobSettings(_Section):
    """Where /v1/jobs keeps jobs: ``memory`` for one worker, ``redis`` for a fleet sharing one queue."""

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = None  # e.g. redis://redis:6379/0; required with the redis backend
    key_prefix: str = "enhancement:"
    # Unfinished jobs the fleet admits before intake answers 429: about a minute of a 3-replica
    # fleet's work at 5 s clips, so a client is told to back off before waits grow past the latency SLO.
    max_backlog: int = Field(256, ge=1)
    # A job held this long without a sign of life from its replica goes to another. Three times
    # the touch interval; a clip's processing never needs a touch to be missed.
    visibility_timeout_seconds: float = Field(30.0, gt=0)
    # A job whose replica dies this many times ends as failed: it is likely what kills them.
    max_deliveries: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _redis_needs_url(self) -> JobSettings:
        if self.backend == "redis" and not self.redis_url:
            raise ValueError("jobs.redis_url is required when jobs.backend is redis")
        return self


class FaultSettings(_Section):
    """Fault injection for the live fault suite. Off unless ``control_file`` is set."""

    # While set, each model call reads this file: "raise" makes it raise, "hang" makes it hang.
    control_file: Path | None = None


# Where load_settings points the two sources; a context variable, so concurrent loads never mix.
_SOURCES: ContextVar[tuple[Path | None, Mapping[str, str] | None]] = ContextVar("settings_sources", default=(None, None))


class _MappingEnvSource(EnvSettingsSource):
    """The environment source, reading a given mapping instead of os.environ (for tests)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self._environ.items()}


class Settings(BaseSettings, PipelineConfig):
    """The pipeline's sections plus the application's own; a PipelineConfig the pipeline takes as is."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, extra="forbid", frozen=True)

    service: ServiceSettings = ServiceSettings()
    jobs: JobSettings = JobSettings()
    faults: FaultSettings = FaultSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path, environ = _SOURCES.get()
        env = env_settings if environ is None else _MappingEnvSource(settings_cls, environ)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env]
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"  {where}: {problem['msg']}")
    return "\n".join(lines)


def _check_file(path: Path) -> None:
    """pydantic-settings skips a missing YAML file silently; a named config file must exist and hold a mapping."""
    try:
        loaded: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")


def load_settings(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings (``environ`` defaults to the process environment); raise ConfigError naming every bad value."""
    path = Path(path) if path is not None else None
    if path is not None:
        _check_file(path)
    token = _SOURCES.set((path, environ))
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError("invalid configuration:\n" + _describe(exc)) from exc
    finally:
        _SOURCES.reset(token)
