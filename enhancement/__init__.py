"""The speech-enhancement pipeline, free of any telemetry library.

    from enhancement import Pipeline, load_config
    pipeline = Pipeline.from_config(load_config())
    result = pipeline.process_file(Path("in.wav"), Path("out/in.wav"))
"""

from enhancement.config import WorkerConfig, load_config
from enhancement.errors import (
    CheckpointMismatch,
    CircuitOpen,
    ConfigError,
    EnhancementError,
    InvalidAudio,
    ModelError,
    ModelUnavailable,
    OutputWriteError,
    QueueFull,
    StageTimeout,
    TransientModelError,
)
from enhancement.pipeline import Pipeline, Processed
from enhancement.result import ClipResult, Outcome

__all__ = [
    "CheckpointMismatch", "CircuitOpen", "ClipResult", "ConfigError", "EnhancementError", "InvalidAudio",
    "ModelError", "ModelUnavailable", "Outcome", "OutputWriteError", "Pipeline", "Processed", "QueueFull",
    "StageTimeout", "TransientModelError", "WorkerConfig", "load_config",
]
