"""Quality stage: reference-free estimates for every clip (metrics against a reference live in recipes/).

WADA-SNR (Kim & Stern, Interspeech 2008) models clean speech amplitudes as
Gamma-distributed (shape 0.4) and noise as Gaussian. The statistic
G = ln E|z| - E ln|z| of a mixture rises monotonically with SNR; inverting
that curve gives the SNR. The curve is computed here once, by simulation with
a fixed seed, instead of being copied as a table.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

SPEECH_GAMMA_SHAPE = 0.4
SNR_GRID_DB = np.arange(-20.0, 101.0, 1.0)
DIGITAL_SILENCE = 1e-7
_SIMULATED_SAMPLES = 200_000
DNSMOS_DIMENSIONS = ("ovrl", "sig", "bak", "p808")
DNSMOS_WINDOW_S = 9.01  # the input length of the DNSMOS models
DNSMOS_MAX_WINDOWS = 3


def _g_statistic(z: np.ndarray) -> float:
    # Logarithms in the samples' own precision (float32 from the pipeline, several times faster than
    # float64), means accumulated in float64: G moves by about 1e-7, a millionth of a dB of SNR.
    magnitude = np.maximum(np.abs(z), 1e-10)
    return float(np.log(np.mean(magnitude, dtype=np.float64)) - np.mean(np.log(magnitude), dtype=np.float64))


@functools.lru_cache(maxsize=1)
def _wada_curve() -> np.ndarray:
    rng = np.random.default_rng(2008)
    speech = rng.gamma(SPEECH_GAMMA_SHAPE, size=_SIMULATED_SAMPLES) * rng.choice([-1.0, 1.0], size=_SIMULATED_SAMPLES)
    speech /= np.sqrt(np.mean(speech**2))
    noise = rng.standard_normal(_SIMULATED_SAMPLES)
    curve = np.array([_g_statistic(speech + noise * 10 ** (-snr / 20)) for snr in SNR_GRID_DB])
    return np.maximum.accumulate(curve)  # enforce monotonicity against simulation noise


def wada_snr_db(samples: np.ndarray) -> float:
    """Blind SNR estimate in dB, clamped to [-20, 100]."""
    magnitude = np.abs(np.asarray(samples, dtype=np.float32))
    # Digital silence (dropouts, padding) is neither speech nor Gaussian noise; a run of
    # zeros would drag E ln|z| to the floor and read as a near-perfect SNR.
    magnitude = magnitude[magnitude > DIGITAL_SILENCE]
    if len(magnitude) == 0:
        return float(SNR_GRID_DB[0])
    g = _g_statistic(magnitude / magnitude.max())
    curve = _wada_curve()
    return float(np.interp(g, curve, SNR_GRID_DB, left=SNR_GRID_DB[0], right=SNR_GRID_DB[-1]))


def warm_up() -> None:
    _wada_curve()


class RateSampler:
    """Selects exactly ``ratio`` of the calls, evenly spread, without randomness."""

    def __init__(self, ratio: float) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError("ratio must lie in [0, 1]")
        self.ratio = ratio
        self._count = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            self._count += 1
            return int(self._count * self.ratio) > int((self._count - 1) * self.ratio)


def _dnsmos_excerpts(samples: np.ndarray, rate: int) -> list[np.ndarray]:
    """Windows of exactly the model's input length, at most DNSMOS_MAX_WINDOWS of them.

    speechmos slides a 9.01 s window by 1 s and pads a short clip by doubling it, so a
    4 s clip would cost seven model runs and a minute-long clip fifty; an exact-length
    window costs one.
    """
    window = int(np.ceil(DNSMOS_WINDOW_S * rate))
    if len(samples) <= window:
        return [np.resize(samples, window)]  # np.resize repeats the clip to fill the window
    count = min(DNSMOS_MAX_WINDOWS, int(np.ceil(len(samples) / window)))
    starts = np.linspace(0, len(samples) - window, count).astype(int)
    return [samples[s : s + window] for s in starts]


def dnsmos(samples: np.ndarray, rate: int) -> dict[str, float]:
    """DNSMOS P.835 and P.808 scores (1-5) from the ONNX models shipped in ``speechmos``."""
    from speechmos import dnsmos as model

    clipped = np.clip(samples, -1.0, 1.0).astype(np.float32)
    runs = [model.run(excerpt, sr=rate) for excerpt in _dnsmos_excerpts(clipped, rate)]
    return {d: float(np.mean([r[f"{d}_mos"] for r in runs])) for d in DNSMOS_DIMENSIONS}
