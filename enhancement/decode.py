"""Decode stage: bytes or a file in, validated 16 kHz mono float32 out.

Validation happens on the header before any samples are read, so a file that
claims hours of audio or a thousand channels costs nothing to refuse.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from enhancement.config import AudioLimits
from enhancement.errors import InvalidAudio, Reason

MODEL_SAMPLE_RATE_HZ = 16_000
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga"})
# Enough to walk past the fmt, LIST and other chunks that precede "data" in practice.
HEADER_SCAN_BYTES = 64 * 1024


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32 mono at MODEL_SAMPLE_RATE_HZ
    input_sample_rate_hz: int
    input_channels: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / MODEL_SAMPLE_RATE_HZ


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Polyphase resampling with a Kaiser-windowed anti-aliasing filter."""
    if from_hz == to_hz:
        return samples.astype(np.float32, copy=False)
    divisor = gcd(from_hz, to_hz)
    return signal.resample_poly(samples, to_hz // divisor, from_hz // divisor, axis=0).astype(np.float32)


def _riff_shortfall(header: bytes, total_size: int) -> tuple[int, int] | None:
    """For a RIFF/WAVE file: (bytes the data chunk declares, bytes actually present), if fewer are present.

    libsndfile quietly shrinks a WAV whose data chunk is cut short, so a
    truncated upload would otherwise pass as a shorter clip.
    """
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= len(header):
        chunk, size = header[offset : offset + 4], struct.unpack_from("<I", header, offset + 4)[0]
        if chunk == b"data":
            if size in (0, 0xFFFFFFFF):  # streaming writers leave the length open
                return None
            present = total_size - (offset + 8)
            return (size, present) if size > present else None
        offset += 8 + size + (size & 1)
    return None


def _check_header(info: sf._SoundFileInfo, limits: AudioLimits) -> None:
    if not limits.min_sample_rate_hz <= info.samplerate <= limits.max_sample_rate_hz:
        raise InvalidAudio(
            f"sample rate {info.samplerate} Hz is outside the accepted {limits.min_sample_rate_hz}-{limits.max_sample_rate_hz} Hz",
            reason=Reason.UNSUPPORTED_SAMPLE_RATE,
        )
    if info.channels > limits.max_channels:
        raise InvalidAudio(
            f"{info.channels} channels; at most {limits.max_channels} are accepted",
            reason=Reason.TOO_MANY_CHANNELS,
        )
    claimed_s = info.frames / info.samplerate
    if claimed_s > limits.max_duration_seconds:
        raise InvalidAudio(
            f"clip is {claimed_s:.1f} s long; the limit is {limits.max_duration_seconds:.0f} s",
            reason=Reason.TOO_LONG,
        )


def _read(source: io.BytesIO | Path, limits: AudioLimits, header: bytes, size: int) -> DecodedAudio:
    shortfall = _riff_shortfall(header, size)
    if shortfall is not None:
        raise InvalidAudio(
            f"file is truncated: the data chunk declares {shortfall[0]} bytes, only {shortfall[1]} are present",
            reason=Reason.TRUNCATED,
        )
    try:
        info = sf.info(source)
        if isinstance(source, io.BytesIO):
            source.seek(0)
        _check_header(info, limits)
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except InvalidAudio:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        detail = getattr(exc, "error_string", None) or str(exc)
        raise InvalidAudio(f"not a readable audio file: {detail}", reason=Reason.UNDECODABLE) from exc
    except OSError as exc:
        raise InvalidAudio(f"cannot read input: {exc.strerror or exc}", reason=Reason.UNREADABLE) from exc

    if info.frames > 0 and data.shape[0] < info.frames:
        raise InvalidAudio(
            f"file is truncated: header promises {info.frames} frames, only {data.shape[0]} present",
            reason=Reason.TRUNCATED,
        )
    if data.shape[0] == 0:
        raise InvalidAudio("file holds no audio frames", reason=Reason.EMPTY)
    if not np.all(np.isfinite(data)):
        raise InvalidAudio("samples contain NaN or infinity", reason=Reason.NON_FINITE)
    duration_s = data.shape[0] / rate
    if duration_s < limits.min_duration_seconds:
        raise InvalidAudio(
            f"clip is {duration_s * 1000:.0f} ms long; at least {limits.min_duration_seconds * 1000:.0f} ms is needed",
            reason=Reason.TOO_SHORT,
        )

    # Mono needs no mixing; a mean along a one-column axis is a slow strided reduction.
    mono = data[:, 0].astype(np.float64) if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float64)
    ac_rms = float(np.sqrt(np.mean((mono - mono.mean()) ** 2)))
    if ac_rms <= 10 ** (limits.silence_threshold_dbfs / 20):
        raise InvalidAudio(f"clip is silent (signal below {limits.silence_threshold_dbfs:.0f} dBFS)", reason=Reason.SILENT)
    return DecodedAudio(
        samples=resample(mono.astype(np.float32), rate, MODEL_SAMPLE_RATE_HZ),
        input_sample_rate_hz=int(rate),
        input_channels=int(info.channels),
    )


def decode_bytes(data: bytes, limits: AudioLimits) -> DecodedAudio:
    if len(data) == 0:
        raise InvalidAudio("input is empty (0 bytes)", reason=Reason.EMPTY)
    if len(data) > limits.max_input_bytes:
        raise InvalidAudio(f"input is {len(data)} bytes; the limit is {limits.max_input_bytes}", reason=Reason.TOO_LARGE)
    return _read(io.BytesIO(data), limits, data[:HEADER_SCAN_BYTES], len(data))


def decode_file(path: Path, limits: AudioLimits) -> DecodedAudio:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidAudio(f"cannot read input {path.name}: {exc.strerror}", reason=Reason.UNREADABLE) from exc
    if not path.is_file():
        raise InvalidAudio(f"{path.name} is not a regular file", reason=Reason.UNREADABLE)
    if size == 0:
        raise InvalidAudio("input is empty (0 bytes)", reason=Reason.EMPTY)
    if size > limits.max_input_bytes:
        raise InvalidAudio(f"input is {size} bytes; the limit is {limits.max_input_bytes}", reason=Reason.TOO_LARGE)
    with path.open("rb") as handle:
        header = handle.read(HEADER_SCAN_BYTES)
    return _read(path, limits, header, size)
