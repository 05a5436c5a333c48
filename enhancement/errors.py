"""One error tree for the whole pipeline.

Library exceptions (soundfile, torch, SpeechBrain, the OS) are mapped onto
these classes at the stage boundary, so callers handle a handful of types and
metrics get a small, fixed set of ``reason`` label values.
"""

from __future__ import annotations


class EnhancementError(Exception):
    """Base class. ``reason`` is a short, fixed token safe to use as a metric label."""

    reason = "internal"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class ConfigError(EnhancementError, ValueError):
    """A setting is missing or out of range; raised at construction time."""

    reason = "config"


class InvalidAudio(EnhancementError):
    """The input is not audio this worker accepts. The client must fix it."""

    reason = "invalid_audio"


class ModelError(EnhancementError):
    """The enhancement model failed on a clip."""

    reason = "model_error"


class TransientModelError(ModelError):
    """A model failure worth retrying, such as running out of device memory."""

    reason = "model_transient"


class ModelUnavailable(ModelError):
    """The model cannot be loaded or is not loaded."""

    reason = "model_unavailable"


class CheckpointMismatch(ModelUnavailable):
    """The checkpoint's parameters do not match the architecture in hyperparams.yaml."""

    reason = "checkpoint_mismatch"


class CircuitOpen(ModelError):
    """The model's circuit breaker is open, so the model was not called."""

    reason = "circuit_open"


class StageTimeout(EnhancementError):
    """A stage ran past its deadline."""

    reason = "timeout"


class QueueFull(EnhancementError):
    """The bounded work queue cannot take another clip."""

    reason = "queue_full"


class OutputWriteError(EnhancementError):
    """The enhanced audio could not be written; nothing was left behind."""

    reason = "output_write"
