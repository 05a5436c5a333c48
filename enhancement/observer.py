"""The one seam through which the pipeline reports what happens.

The pipeline knows nothing of Prometheus or OpenTelemetry. It calls an
observer around each clip and each stage; the exporter package implements the
observer to produce metrics, spans and exemplars. Exceptions raised inside a
stage propagate through ``stage()`` so that the observer sees them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

from enhancement.resilience import BreakerState
from enhancement.result import ClipResult, StageRecord


class PipelineObserver(Protocol):
    def clip(self, result: ClipResult) -> AbstractContextManager[None]:
        """Wraps a whole clip; ``result`` is filled in as the clip proceeds, and final when the context exits."""

    def stage(self, record: StageRecord) -> AbstractContextManager[None]:
        """Wraps one stage; ``record`` is filled in while the stage runs."""

    def breaker_transition(self, breaker: str, to_state: BreakerState) -> None:
        """Called when a circuit breaker changes state."""


class NullObserver:
    """Observes nothing; the default when no telemetry is wired in."""

    def clip(self, result: ClipResult) -> AbstractContextManager[None]:
        return nullcontext()

    def stage(self, record: StageRecord) -> AbstractContextManager[None]:
        return nullcontext()

    def breaker_transition(self, breaker: str, to_state: BreakerState) -> None:
        pass
