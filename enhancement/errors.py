"""One error tree for the whole pipeline, and the one list of reasons it gives.

Library exceptions (soundfile, torch, SpeechBrain, the OS) are mapped onto
these classes at the stage boundary, so callers handle a handful of types and
metrics get a small, fixed set of ``reason`` label values: the members of
``Reason``, and nothing else.
"""

from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    """Why a clip was refused, a stage failed or a fallback was taken; safe as a metric label."""

    # Internal and set-up failures.
    INTERNAL = "internal"
    CONFIG = "config"
    # Input the client must fix (HTTP 422, CLI exit 2).
    INVALID_AUDIO = "invalid_audio"
    EMPTY = "empty"
    TRUNCATED = "truncated"
    UNDECODABLE = "undecodable"
    UNREADABLE = "unreadable"
    NON_FINITE = "non_finite"
    SILENT = "silent"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    TOO_MANY_CHANNELS = "too_many_channels"
    UNSUPPORTED_SAMPLE_RATE = "unsupported_sample_rate"
    TOO_LARGE = "too_large"
    # The model, each with the Wiener fallback behind it.
    MODEL_ERROR = "model_error"
    MODEL_TRANSIENT = "model_transient"
    MODEL_UNAVAILABLE = "model_unavailable"
    MODEL_NON_FINITE = "model_non_finite"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    DEVICE_UNAVAILABLE = "device_unavailable"
    CIRCUIT_OPEN = "circuit_open"
    TIMEOUT = "timeout"
    # The other stages' fallbacks.
    DETECTOR_ERROR = "detector_error"
    SUPPRESSOR_ERROR = "suppressor_error"
    DSP_ERROR = "dsp_error"
    LOUDNESS_ERROR = "loudness_error"
    QUALITY_ERROR = "quality_error"
    DNSMOS_ERROR = "dnsmos_error"
    # Writing the output.
    OUTPUT_WRITE = "output_write"
    DISK_FULL = "disk_full"
    WOULD_OVERWRITE_INPUT = "would_overwrite_input"

    def __str__(self) -> str:
        return self.value


# The reasons decode gives for refusing an input: the `reason` of every 422.
INPUT_REASONS = (
    Reason.EMPTY,
    Reason.TRUNCATED,
    Reason.UNDECODABLE,
    Reason.UNREADABLE,
    Reason.NON_FINITE,
    Reason.SILENT,
    Reason.TOO_SHORT,
    Reason.TOO_LONG,
    Reason.TOO_MANY_CHANNELS,
    Reason.UNSUPPORTED_SAMPLE_RATE,
    Reason.TOO_LARGE,
)


class EnhancementError(Exception):
    """Base class. ``reason`` is a member of ``Reason``, safe to use as a metric label."""

    reason: Reason = Reason.INTERNAL

    def __init__(self, message: str, *, reason: Reason | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = Reason(reason)


class ConfigError(EnhancementError, ValueError):
    """A setting is missing or out of range; raised at construction time."""

    reason = Reason.CONFIG


class InvalidAudio(EnhancementError):
    """The input is not audio this worker accepts. The client must fix it."""

    reason = Reason.INVALID_AUDIO


class ModelError(EnhancementError):
    """The enhancement model failed on a clip."""

    reason = Reason.MODEL_ERROR


class TransientModelError(ModelError):
    """A model failure worth retrying, such as running out of device memory."""

    reason = Reason.MODEL_TRANSIENT


class ModelUnavailable(ModelError):
    """The model cannot be loaded or is not loaded."""

    reason = Reason.MODEL_UNAVAILABLE


class CheckpointMismatch(ModelUnavailable):
    """The checkpoint's parameters do not match the architecture in hyperparams.yaml."""

    reason = Reason.CHECKPOINT_MISMATCH


class CircuitOpen(ModelError):
    """The model's circuit breaker is open, so the model was not called."""

    reason = Reason.CIRCUIT_OPEN


class StageTimeout(EnhancementError):
    """A stage ran past its deadline."""

    reason = Reason.TIMEOUT


class OutputWriteError(EnhancementError):
    """The enhanced audio could not be written; nothing was left behind."""

    reason = Reason.OUTPUT_WRITE
