"""What processing a clip produced: outcome, per-stage records, events, figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

STAGES = (
    "decode",
    "pattern_detection",
    "pattern_suppression",
    "enhancement",
    "loudness",
    "quality",
    "encode",
)

PATTERN_KINDS = ("click", "burst", "dropout", "clipping")


class Outcome(str, Enum):
    SUCCESS = "success"
    DEGRADED = "degraded"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def produced_audio(self) -> bool:
        return self in (Outcome.SUCCESS, Outcome.DEGRADED)


@dataclass(frozen=True)
class PatternEvent:
    kind: str
    start_s: float
    end_s: float
    confidence: float


@dataclass(frozen=True)
class Fallback:
    stage: str
    from_method: str
    to_method: str
    reason: str


@dataclass
class StageRecord:
    """One stage's run. Filled in by the stage while it runs."""

    name: str
    method: str = ""
    duration_s: float = 0.0
    status: str = "ok"
    error_reason: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    fallbacks: list[Fallback] = field(default_factory=list)

    def use(self, method: str) -> None:
        self.method = method

    def fall_back(self, to_method: str, reason: str) -> None:
        """Record that the current method failed and ``to_method`` takes over."""
        self.fallbacks.append(Fallback(self.name, self.method, to_method, reason))
        self.method = to_method
        self.status = "fallback"


@dataclass
class LoudnessReport:
    method: str
    input_lufs: float
    output_lufs: float
    gain_db: float
    true_peak_dbtp: float
    limiter_gain_reduction_db: float
    target_lufs: float
    tolerance_lu: float  # loudness.tolerance_lu: how far from the target still counts as on target

    @property
    def on_target(self) -> bool:
        return abs(self.output_lufs - self.target_lufs) <= self.tolerance_lu


@dataclass
class QualityReport:
    input_snr_db: float
    output_snr_db: float
    dnsmos: dict[str, float] | None = None
    poor_snr_drop_db: float = 3.0  # quality.poor_snr_drop_db: an SNR fall beyond this makes the output poor

    @property
    def snr_improvement_db(self) -> float:
        return self.output_snr_db - self.input_snr_db


@dataclass
class ClipResult:
    clip_id: str
    source: str = ""
    output: str | None = None
    outcome: Outcome = Outcome.FAILED
    error: str | None = None
    error_reason: str | None = None
    input_sample_rate_hz: int | None = None
    input_channels: int | None = None
    audio_duration_s: float = 0.0
    processing_s: float = 0.0
    stages: list[StageRecord] = field(default_factory=list)
    events: list[PatternEvent] = field(default_factory=list)
    loudness: LoudnessReport | None = None
    quality: QualityReport | None = None

    @property
    def fallbacks(self) -> list[Fallback]:
        return [f for stage in self.stages for f in stage.fallbacks]

    @property
    def real_time_factor(self) -> float | None:
        """Processing time over audio time; below 1 is faster than real time."""
        if self.audio_duration_s <= 0:
            return None
        return self.processing_s / self.audio_duration_s

    @property
    def poor_output(self) -> bool:
        """Whether the output got worse: SNR fell by more than the margin, loudness missed its target,
        or either could not be measured (nothing vouches for it)."""
        if self.quality is None or self.loudness is None:
            return True
        return self.quality.snr_improvement_db < -self.quality.poor_snr_drop_db or not self.loudness.on_target

    def stage(self, name: str) -> StageRecord | None:
        return next((s for s in self.stages if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["real_time_factor"] = self.real_time_factor
        data["fallbacks"] = [asdict(f) for f in self.fallbacks]
        if self.loudness is not None:
            data["loudness"]["on_target"] = self.loudness.on_target
        if self.quality is not None:
            data["quality"]["snr_improvement_db"] = self.quality.snr_improvement_db
        return data
