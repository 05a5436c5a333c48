"""The speech-enhancement pipeline, free of any telemetry library and of any web framework.

from enhancement import Pipeline, PipelineConfig
pipeline = Pipeline.from_config(PipelineConfig())
result = pipeline.process_file(Path("in.wav"), Path("out/in.wav"))
"""

from enhancement.config import PipelineConfig
from enhancement.errors import (
    CheckpointMismatch,
    CircuitOpen,
    ConfigError,
    EnhancementError,
    InvalidAudio,
    ModelError,
    ModelUnavailable,
    OutputWriteError,
    Reason,
    StageTimeout,
    TransientModelError,
)
from enhancement.pipeline import Pipeline, Processed
from enhancement.result import ClipResult, Outcome

__all__ = [
    "CheckpointMismatch",
    "CircuitOpen",
    "ClipResult",
    "ConfigError",
    "EnhancementError",
    "InvalidAudio",
    "ModelError",
    "ModelUnavailable",
    "Outcome",
    "OutputWriteError",
    "Pipeline",
    "PipelineConfig",
    "Processed",
    "Reason",
    "StageTimeout",
    "TransientModelError",
]
