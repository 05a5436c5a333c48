"""The pipeline's settings, section by section, each with a default that works.

Each setting with a unit carries the unit in its name. Reading them from a
YAML file and the environment is the application's job (``worker.settings``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    # An output whose WADA-SNR is more than this below its input's is poor (the quality SLI). Clean
    # input can lose a dB or two to enhancement without anyone hearing it; 3 dB is a clear loss.
    poor_snr_drop_db: float = Field(3.0, ge=0)


class OutputSettings(_Section):
    format: Literal["wav", "flac"] = "wav"
    subtype: Literal["PCM_16", "PCM_24", "FLOAT"] = "PCM_16"


class PipelineConfig(_Section):
    """Everything the pipeline reads. The application builds it from its settings (YAML, environment)."""

    audio: AudioLimits = AudioLimits()
    patterns: PatternSettings = PatternSettings()
    model: ModelSettings = ModelSettings()
    loudness: LoudnessSettings = LoudnessSettings()
    quality: QualitySettings = QualitySettings()
    output: OutputSettings = OutputSettings()
