"""What a finished clip leaves for its client: the outcome, why, the trace, and the audio.

One plain record for both routes and both job stores: the synchronous route
answers from it at once, the memory store keeps it, and the Redis store keeps
it as JSON next to the audio bytes, so any replica can answer for any job.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from enhancement.errors import Reason
from enhancement.result import Outcome
from worker.jobs import Traced


@dataclass(frozen=True)
class Answer:
    outcome: str
    clip_id: str = ""
    error: str | None = None
    reason: str | None = None
    trace_id: str | None = None
    audio_duration_s: float = 0.0
    processing_s: float = 0.0
    methods: dict[str, str | None] = field(default_factory=dict)
    fallbacks: list[dict[str, Any]] = field(default_factory=list)
    audio: bytes | None = None

    @classmethod
    def of(cls, traced: Traced | None) -> Answer:
        """The answer for a processed clip; ``None`` (the pipeline itself crashed) is an internal failure."""
        if traced is None:
            return cls(Outcome.FAILED.value, error="the clip could not be processed", reason=Reason.INTERNAL.value)
        result = traced.processed.result
        return cls(
            outcome=result.outcome.value,
            clip_id=result.clip_id,
            error=result.error,
            reason=result.error_reason,
            trace_id=traced.trace_id,
            audio_duration_s=result.audio_duration_s,
            processing_s=result.processing_s,
            methods={s.name: s.method for s in result.stages},
            fallbacks=[dict(f.__dict__) for f in result.fallbacks],
            audio=traced.processed.encoded,
        )

    @classmethod
    def abandoned(cls, deliveries: int) -> Answer:
        """A job no worker could finish: each one that took it stopped before storing a result."""
        message = f"no worker finished this clip in {deliveries} deliveries; each stopped while processing it"
        return cls(Outcome.FAILED.value, error=message, reason=Reason.INTERNAL.value)

    def to_json(self) -> str:
        """Everything but the audio, which a store keeps as bytes beside it."""
        return json.dumps({k: v for k, v in asdict(self).items() if k != "audio"})

    @classmethod
    def from_json(cls, text: str | bytes, audio: bytes | None) -> Answer:
        return cls(**json.loads(text), audio=audio)
