"""Builders for audio bytes, good and bad, used across the tests."""

from __future__ import annotations

import struct

import numpy as np

from enhancement.encode import audio_bytes


def wav_bytes(samples: np.ndarray, rate: int = 16_000, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    return audio_bytes(samples, rate, fmt, subtype)


def noise(seconds: float, rate: int = 16_000, channels: int = 1, level: float = 0.1, seed: int = 0) -> np.ndarray:
    shape = (int(seconds * rate), channels) if channels > 1 else (int(seconds * rate),)
    return level * np.random.default_rng(seed).standard_normal(shape)


def hostile_inputs() -> dict[str, tuple[bytes, str]]:
    """Bad inputs and the reason each must be rejected with."""
    good = wav_bytes(noise(2.0))
    lying = bytearray(good)
    struct.pack_into("<I", lying, 40, 0x7FFFFFF0)  # data chunk claims about 18 hours
    with_inf = np.r_[np.zeros(8000), [np.inf], 0.1 * np.ones(8000)].astype(np.float32)
    return {
        "empty file": (b"", "empty"),
        "truncated wav": (good[: len(good) // 2], "truncated"),
        "header only": (good[:44], "truncated"),
        "claimed length in hours": (bytes(lying), "truncated"),
        "png bytes": (b"\x89PNG\r\n\x1a\n" + bytes(200), "undecodable"),
        "plain text": (b"this is not audio at all\n" * 20, "undecodable"),
        "nan samples": (wav_bytes(np.full(16000, np.nan, dtype=np.float32), subtype="FLOAT"), "non_finite"),
        "inf sample": (wav_bytes(with_inf, subtype="FLOAT"), "non_finite"),
        "all silence": (wav_bytes(np.zeros(32000)), "silent"),
        "dc only": (wav_bytes(np.full(32000, 0.25)), "silent"),
        "0.1 s clip": (wav_bytes(noise(0.1)), "too_short"),
        "8 channels at 48 kHz": (wav_bytes(noise(1.0, rate=48_000, channels=8), rate=48_000), "too_many_channels"),
        "1 Hz sample rate": (wav_bytes(noise(1.0, rate=1), rate=1), "unsupported_sample_rate"),
    }
