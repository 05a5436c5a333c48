"""Generates the hostile-input corpus: bytes a client might send, each with what must happen.

    python tests/hostile_corpus.py OUT_DIR     # writes the files and an index.json

Every case expects either a rejection with a named reason or a correct output ("ok").
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .audio_files import wav_bytes

RATE = 16_000


_wav = wav_bytes


def _speechlike(seconds: float, rate: int = RATE, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12)) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
    mono = 0.3 * voiced / np.max(np.abs(voiced)) + 0.01 * rng.standard_normal(len(t))
    return np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono


def _set_u32(data: bytes, offset: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("<I", out, offset, value)
    return bytes(out)


def _png() -> bytes:
    raw = b"\x00\xff\x00\x00" * 4

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _zip(inner: bytes, name: str = "clip.wav") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, inner)
    return buffer.getvalue()


def cases() -> dict[str, tuple[bytes, str]]:
    good = _wav(_speechlike(2.0))
    float_good = _wav(_speechlike(2.0), subtype="FLOAT")
    corpus: dict[str, tuple[bytes, str]] = {
        # Structure
        "zero_length": (b"", "empty"),
        "one_byte": (b"R", "undecodable"),
        "riff_only": (b"RIFF", "undecodable"),
        "header_only": (good[:44], "truncated"),
        "truncated_half": (good[: len(good) // 2], "truncated"),
        "truncated_odd_byte": (good[:-1], "truncated"),
        "claimed_length_hours": (_set_u32(good, 40, 0x7FFFFFF0), "truncated"),
        "riff_size_lies_small": (_set_u32(good, 4, 36), "ok"),
        "wrong_magic_rifx": (b"RIFX" + good[4:], "undecodable"),
        "wrong_magic_zeros": (bytes(4) + good[4:], "undecodable"),
        "wave_tag_corrupt": (good[:8] + b"WAVX" + good[12:], "undecodable"),
        "fmt_chunk_garbage": (good[:20] + bytes(16) + good[36:], "undecodable"),
        "random_bytes": (np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "undecodable"),
        "all_ff_bytes": (b"\xff" * 4096, "undecodable"),
        # Not audio
        "png_image": (_png(), "undecodable"),
        "zip_archive": (_zip(good), "undecodable"),
        "zip_bomb": (_zip(bytes(50_000_000), "bomb.bin"), "undecodable"),
        "plain_text": (b"hello, this is not audio\n" * 50, "undecodable"),
        "json_text": (json.dumps({"audio": [0.1] * 100}).encode(), "undecodable"),
        "html_page": (b"<!doctype html><html><body>audio?</body></html>", "undecodable"),
        "utf16_text": ("not audio at all".encode("utf-16"), "undecodable"),
        "elf_binary": (b"\x7fELF" + bytes(200), "undecodable"),
        # Sample rates and channels
        "rate_1_hz": (_wav(np.full(8, 0.1), rate=1), "unsupported_sample_rate"),
        "rate_1_mhz": (_set_u32(_set_u32(good, 24, 1_000_000), 28, 2_000_000), "unsupported_sample_rate"),
        "rate_4_khz": (_wav(_speechlike(1.0, rate=4000), rate=4000), "unsupported_sample_rate"),
        "rate_8_khz": (_wav(_speechlike(1.0, rate=8000), rate=8000), "ok"),
        "rate_44k1": (_wav(_speechlike(1.0, rate=44_100), rate=44_100), "ok"),
        "rate_48k_stereo": (_wav(_speechlike(1.0, rate=48_000, channels=2), rate=48_000), "ok"),
        "rate_96k": (_wav(_speechlike(1.0, rate=96_000), rate=96_000), "ok"),
        "channels_8_at_48k": (_wav(_speechlike(1.0, rate=48_000, channels=8), rate=48_000), "too_many_channels"),
        "channels_64": (_wav(_speechlike(0.6, channels=64)), "too_many_channels"),
        # Sample values
        "nan_samples": (_wav(np.full(RATE, np.nan, dtype=np.float32), subtype="FLOAT"), "non_finite"),
        "one_inf_sample": (_wav(np.r_[_speechlike(1.0), [np.inf]].astype(np.float32), subtype="FLOAT"), "non_finite"),
        "negative_inf": (_wav(np.r_[[-np.inf], _speechlike(1.0)].astype(np.float32), subtype="FLOAT"), "non_finite"),
        "silence": (_wav(np.zeros(2 * RATE)), "silent"),
        "dc_only": (_wav(np.full(2 * RATE, 0.4)), "silent"),
        "denormal_noise": (_wav((np.random.default_rng(2).standard_normal(RATE) * 1e-30).astype(np.float32), subtype="FLOAT"), "silent"),
        "full_scale_square": (_wav(np.sign(np.sin(2 * np.pi * 200 * np.arange(2 * RATE) / RATE))), "ok"),
        "float_over_full_scale": (_wav(_speechlike(2.0) * 40, subtype="FLOAT"), "ok"),
        "pure_sine": (_wav(0.5 * np.sin(2 * np.pi * 440 * np.arange(2 * RATE) / RATE)), "ok"),
        "white_noise_only": (_wav(0.3 * np.random.default_rng(3).standard_normal(2 * RATE)), "ok"),
        "single_impulse": (_wav(np.r_[np.zeros(RATE), [0.9], np.zeros(RATE)]), "ok"),
        # Lengths
        "clip_10_ms": (_wav(_speechlike(0.01)), "too_short"),
        "clip_100_ms": (_wav(_speechlike(0.1)), "too_short"),
        "clip_half_second": (_wav(_speechlike(0.5)), "ok"),
        "clip_eleven_minutes": (_wav(np.zeros(int(660 * 8000)) + 0.0, rate=8000, subtype="PCM_U8"), "too_long"),
        # Other containers and encodings
        "flac": (_wav(_speechlike(1.5), fmt="FLAC"), "ok"),
        "ogg_vorbis": (_wav(_speechlike(1.5), fmt="OGG", subtype="VORBIS"), "ok"),
        "wav_float64": (_wav(_speechlike(1.5), subtype="DOUBLE"), "ok"),
        "wav_pcm24": (_wav(_speechlike(1.5), subtype="PCM_24"), "ok"),
        "wav_ulaw": (_wav(_speechlike(1.5), subtype="ULAW"), "ok"),
        # libsndfile cannot seek in a FLAC cut after its header, nor resync in one cut mid-stream.
        "flac_truncated_after_header": (_wav(_speechlike(1.5), fmt="FLAC")[:200], "undecodable"),
        "flac_truncated_mid_stream": (_wav(_speechlike(1.5), fmt="FLAC")[:16870], "undecodable"),
        "float_wav_truncated": (float_good[: len(float_good) - 1000], "truncated"),
    }
    return corpus


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    index = {}
    for name, (data, expected) in cases().items():
        (out / f"{name}.bin").write_bytes(data)
        index[name] = expected
    (out / "index.json").write_text(json.dumps(index, indent=2))
    print(f"{len(index)} cases in {out}")


if __name__ == "__main__":
    main()
