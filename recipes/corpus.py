"""Synthetic noisy-speech corpus: the data recipe behind the shipped checkpoint.

Speech comes from espeak-ng (Debian package ``espeak-ng``), noise from seeded
generators. Voices, sentences and noise kinds are split into disjoint training
and held-out sets, so that evaluation measures generalisation rather than
memory. Everything is deterministic given the seed.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from scipy import signal

from enhancement.decode import resample

SAMPLE_RATE_HZ = 16_000

# Voices are accent + variant pairs. Held-out voices use variants and accents
# that never appear in training, so the evaluation hears unseen speakers.
TRAIN_VOICES = (
    "en-us+m1",
    "en-us+f1",
    "en-gb+m3",
    "en-gb+f2",
    "en-gb-x-rp+m2",
    "en-029+f3",
    "en-us-nyc+m4",
    "en-gb-x-gbcwmd+f5",
)
HELD_OUT_VOICES = (
    "en-gb-scotland+m7",
    "en-gb-x-gbclan+f4",
    "en-us+m6",
    "en-029+m5",
)

TRAIN_NOISE_KINDS = ("white", "pink", "brown", "babble", "hum", "band")
HELD_OUT_NOISE_KINDS = ("fan", "cafe", "street", "rain")

_SUBJECTS = (
    "the engineer",
    "my neighbour",
    "a small child",
    "the old captain",
    "our teacher",
    "the quiet driver",
    "a tired nurse",
    "the young pilot",
    "his sister",
    "the farmer",
    "a careful doctor",
    "the gardener",
    "her cousin",
    "the musician",
    "a local baker",
)
_VERBS = (
    "carried",
    "painted",
    "opened",
    "found",
    "repaired",
    "counted",
    "described",
    "noticed",
    "cleaned",
    "followed",
    "ordered",
    "borrowed",
    "measured",
    "packed",
)
_OBJECTS = (
    "the wooden box",
    "seven green bottles",
    "a heavy letter",
    "the broken radio",
    "two silver keys",
    "the kitchen window",
    "a bright lantern",
    "the narrow bridge",
    "four paper maps",
    "the blue bicycle",
    "a long ladder",
    "the winter coat",
)
_TAILS = (
    "before the rain started",
    "near the harbour",
    "after a long day",
    "without a word",
    "in the early morning",
    "during the storm",
    "at the edge of town",
    "for the third time",
    "while the kettle boiled",
    "under the bright lights",
    "on a cold evening",
    "by the station",
)


def sentence(rng: np.random.Generator) -> str:
    """A plain English sentence; varied enough to cover most phonemes."""
    parts = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_TAILS)]
    if rng.random() < 0.5:
        parts += ["and then", rng.choice(_VERBS), rng.choice(_OBJECTS)]
    return " ".join(parts) + "."


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str, *, speed_wpm: int = 160, pitch: int = 50) -> np.ndarray:
    """Synthesise ``text`` with espeak-ng and return float32 mono at 16 kHz."""
    completed = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed_wpm), "-p", str(pitch), "--stdout", text],
        check=True,
        capture_output=True,
        timeout=60,
    )
    audio, rate = sf.read(io.BytesIO(completed.stdout), dtype="float32")
    return resample(audio, rate, SAMPLE_RATE_HZ)


def speech_clip(rng: np.random.Generator, voice: str, seconds: float) -> np.ndarray:
    """Sentences from one voice, separated by short pauses, cut or padded to ``seconds``."""
    target = int(seconds * SAMPLE_RATE_HZ)
    pieces: list[np.ndarray] = []
    total = 0
    while total < target:
        audio = speak(sentence(rng), voice, speed_wpm=int(rng.integers(130, 190)), pitch=int(rng.integers(30, 70)))
        pause = np.zeros(int(rng.uniform(0.1, 0.4) * SAMPLE_RATE_HZ), dtype=np.float32)
        pieces += [audio, pause]
        total += len(audio) + len(pause)
    clip = np.concatenate(pieces)[:target]
    peak = float(np.max(np.abs(clip))) or 1.0
    return (clip / peak * 0.5).astype(np.float32)


def _shaped_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise whose power spectrum falls as 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, d=1.0 / SAMPLE_RATE_HZ)
    freqs[0] = freqs[1]
    spectrum /= freqs ** (exponent / 2.0)
    return np.fft.irfft(spectrum, n)


def _babble(rng: np.random.Generator, n: int, voices: tuple[str, ...], talkers: int) -> np.ndarray:
    mix = np.zeros(n)
    for _ in range(talkers):
        talker = speech_clip(rng, str(rng.choice(voices)), n / SAMPLE_RATE_HZ + 0.5)
        offset = int(rng.integers(0, len(talker) - n + 1))
        mix += talker[offset : offset + n]
    return mix


def _tones(rng: np.random.Generator, n: int, fundamental_hz: float, harmonics: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE_HZ
    return sum(
        rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * fundamental_hz * k * t + rng.uniform(0, 2 * np.pi)) for k in range(1, harmonics + 1)
    )


def _slow_envelope(rng: np.random.Generator, n: int, rate_hz: float, depth: float) -> np.ndarray:
    points = max(4, int(n / SAMPLE_RATE_HZ * rate_hz) + 2)
    control = rng.uniform(1.0 - depth, 1.0, size=points)
    return np.interp(np.linspace(0, points - 1, n), np.arange(points), control)


def noise(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    """A noise excerpt of ``n`` samples of the named kind (unit RMS)."""
    if kind == "white":
        x = rng.standard_normal(n)
    elif kind == "pink":
        x = _shaped_noise(rng, n, 1.0)
    elif kind == "brown":
        x = _shaped_noise(rng, n, 2.0)
    elif kind == "babble":
        x = _babble(rng, n, TRAIN_VOICES, int(rng.integers(3, 7)))
    elif kind == "hum":
        x = _tones(rng, n, float(rng.choice([50.0, 60.0])), 12) + 0.05 * rng.standard_normal(n)
    elif kind == "band":
        low = rng.uniform(100, 3000)
        sos = signal.butter(4, [low, min(low * rng.uniform(1.5, 4.0), 7800)], "bandpass", fs=SAMPLE_RATE_HZ, output="sos")
        x = signal.sosfilt(sos, rng.standard_normal(n))
    elif kind == "fan":
        # Broadband air noise with a blade-pass tone: stationary but coloured.
        x = _shaped_noise(rng, n, 1.5) + 0.3 * _tones(rng, n, rng.uniform(80, 240), 4) / 1.0
    elif kind == "cafe":
        clatter = np.zeros(n)
        for start in rng.integers(0, n, size=max(1, n // SAMPLE_RATE_HZ * 3)):
            length = min(n - start, int(0.02 * SAMPLE_RATE_HZ))
            clatter[start : start + length] += rng.standard_normal(length) * np.exp(-np.arange(length) / 40)
        x = _babble(rng, n, HELD_OUT_VOICES, int(rng.integers(4, 8))) + 0.3 * clatter
    elif kind == "street":
        x = (_shaped_noise(rng, n, 2.0) + 0.5 * _shaped_noise(rng, n, 1.0)) * _slow_envelope(rng, n, 0.7, 0.8)
    elif kind == "rain":
        sos = signal.butter(2, 1500, "highpass", fs=SAMPLE_RATE_HZ, output="sos")
        x = signal.sosfilt(sos, rng.standard_normal(n)) * _slow_envelope(rng, n, 4.0, 0.5)
    else:
        raise ValueError(f"unknown noise kind {kind!r}")
    x = np.asarray(x, dtype=np.float64)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def mix_at_snr(clean: np.ndarray, noise_excerpt: np.ndarray, snr_db: float) -> np.ndarray:
    """Scale the noise so that the speech-to-noise power ratio is ``snr_db``."""
    speech_power = float(np.mean(clean.astype(np.float64) ** 2))
    noise_power = float(np.mean(noise_excerpt.astype(np.float64) ** 2)) + 1e-20
    scale = np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10.0)))
    return (clean + scale * noise_excerpt).astype(np.float32)


@dataclass(frozen=True)
class NoisyPair:
    clean: np.ndarray
    noisy: np.ndarray
    voice: str
    noise_kind: str
    snr_db: float


def held_out_pair(seed: int, *, voice: str, noise_kind: str, snr_db: float, seconds: float = 4.0) -> NoisyPair:
    """One evaluation pair built only from held-out voices and noise kinds."""
    if voice not in HELD_OUT_VOICES or noise_kind not in HELD_OUT_NOISE_KINDS:
        raise ValueError("held-out pairs must use held-out voices and noise kinds")
    rng = np.random.default_rng([seed, HELD_OUT_VOICES.index(voice), HELD_OUT_NOISE_KINDS.index(noise_kind)])
    clean = speech_clip(rng, voice, seconds)
    noisy = mix_at_snr(clean, noise(rng, noise_kind, len(clean)), snr_db)
    peak = float(np.max(np.abs(noisy)))
    if peak > 0.99:
        clean, noisy = clean * (0.99 / peak), noisy * (0.99 / peak)
    return NoisyPair(clean=clean, noisy=noisy, voice=voice, noise_kind=noise_kind, snr_db=snr_db)
