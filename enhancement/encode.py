"""Encode stage: WAV/FLAC to bytes, or to a file through a temporary file and a rename.

A reader never sees a half-written output: the data goes to a temporary file
in the destination directory, is flushed to disk, and only then replaces the
destination name in one atomic ``os.replace``.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from enhancement.config import OutputSettings
from enhancement.errors import OutputWriteError, Reason

FORMATS = {"wav": "WAV", "flac": "FLAC"}


def _subtype(settings: OutputSettings) -> str:
    # FLAC holds integers only.
    return "PCM_24" if settings.format == "flac" and settings.subtype == "FLOAT" else settings.subtype


def encode_bytes(samples: np.ndarray, rate: int, settings: OutputSettings) -> bytes:
    return audio_bytes(samples, rate, FORMATS[settings.format], _subtype(settings))


def audio_bytes(samples: np.ndarray, rate: int, container: str = "WAV", subtype: str = "PCM_16") -> bytes:
    """Samples as an in-memory audio file: the one builder the worker, its tools and its tests use."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=container, subtype=subtype)
    return buffer.getvalue()


TEMPORARY_NAME_PREFIX_CHARS = 64


def write_atomic(path: Path, samples: np.ndarray, rate: int, settings: OutputSettings, *, protected: Path | None = None) -> None:
    """Write ``path`` atomically; refuse to overwrite ``protected`` (the input)."""
    if protected is not None and path.resolve() == protected.resolve():
        raise OutputWriteError(f"refusing to overwrite the input {path.name}", reason=Reason.WOULD_OVERWRITE_INPUT)
    data = encode_bytes(samples, rate, settings)
    descriptor, temporary = -1, None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The name is cut so that a 255-byte output name still leaves room for the temporary one's.
        prefix = f".{path.name[:TEMPORARY_NAME_PREFIX_CHARS]}."
        descriptor, temporary = tempfile.mkstemp(prefix=prefix, suffix=".partial", dir=path.parent)
        with os.fdopen(descriptor, "wb") as handle:
            descriptor = -1
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        reason = Reason.DISK_FULL if exc.errno in (errno.ENOSPC, errno.EDQUOT) else Reason.OUTPUT_WRITE
        raise OutputWriteError(f"cannot write {path.name}: {exc.strerror or exc}", reason=reason) from exc
    finally:
        if descriptor >= 0:
            os.close(descriptor)
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
