"""Loudness stage: restore the input's loudness, add the configured gain, limit true peaks.

MetricGAN+ peak-normalises its output, so its level says nothing about the
input's. The stage first measures the input's integrated loudness (ITU-R
BS.1770-4, gated), aims at that plus the gain (x1.6 amplitude = +4.08 dB by
default), and reaches it through a look-ahead true-peak limiter. Limiting
costs loudness, so the gain is corrected and the limiter re-run until the
output is on target or the limiter cannot give more.
"""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
from scipy import ndimage, signal

from enhancement.config import LoudnessSettings
from enhancement.result import LoudnessReport

MAX_PASSES = 6
# Close enough that further passes change nothing audible.
CONVERGED_LU = 0.1
# Inter-sample peaks move a little when the gain curve is applied; aim just under the ceiling.
CEILING_MARGIN_DB = 0.1
LIMITER_METHOD = "bs1770_true_peak_limiter"
CLAMP_METHOD = "rms_gain_peak_clamp"


def _db(ratio: float) -> float:
    return 20 * math.log10(max(ratio, 1e-12))


def integrated_lufs(samples: np.ndarray, rate: int) -> float:
    """Gated integrated loudness in LUFS; -70 (the absolute gate) for anything quieter."""
    loudness = pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64))
    return float(loudness) if math.isfinite(loudness) else -70.0


def _peak_envelope(samples: np.ndarray, oversampling: int) -> np.ndarray:
    """Per-sample true-peak envelope: the largest oversampled value up to the next sample."""
    upsampled = signal.resample_poly(samples.astype(np.float64), oversampling, 1)
    return np.abs(upsampled[: len(samples) * oversampling]).reshape(len(samples), oversampling).max(axis=1)


def true_peak_dbtp(samples: np.ndarray, oversampling: int = 4) -> float:
    return _db(float(_peak_envelope(samples, oversampling).max()))


def limit(samples: np.ndarray, rate: int, settings: LoudnessSettings) -> tuple[np.ndarray, float]:
    """Apply a look-ahead true-peak limiter. Returns the output and the deepest gain reduction in dB."""
    ceiling = 10 ** ((settings.ceiling_dbtp - CEILING_MARGIN_DB) / 20)
    needed = np.minimum(1.0, ceiling / np.maximum(_peak_envelope(samples, settings.oversampling_factor), 1e-12))
    if needed.min() >= 1.0:
        return samples.astype(np.float32), 0.0
    lookahead = max(1, int(settings.lookahead_ms / 1000 * rate))
    # A minimum over +-lookahead, then a moving average half as wide: the gain is fully
    # down before each peak arrives and never exceeds what the peak needs.
    gain = ndimage.minimum_filter1d(needed, size=2 * lookahead + 1, mode="nearest")
    gain = ndimage.uniform_filter1d(gain, size=lookahead + 1, mode="nearest")
    # Release: let the reduction decay exponentially instead of snapping back.
    reduction = 1.0 - gain
    coefficient = 1.0 - math.exp(-1.0 / (settings.release_ms / 1000 * rate))
    released = signal.lfilter([coefficient], [1.0, coefficient - 1.0], reduction)
    gain = 1.0 - np.maximum(reduction, released)
    return (samples * gain).astype(np.float32), -_db(float(gain.min()))


def normalise(samples: np.ndarray, rate: int, input_lufs: float, settings: LoudnessSettings) -> tuple[np.ndarray, LoudnessReport]:
    """Bring ``samples`` to input loudness + gain, true peak at or under the ceiling."""
    target = input_lufs + _db(settings.gain_ratio)
    before = integrated_lufs(samples, rate)
    gain_db = target - before
    out, reduction_db = samples, 0.0
    for _ in range(MAX_PASSES):
        out, reduction_db = limit(samples * 10 ** (gain_db / 20), rate, settings)
        error = target - integrated_lufs(out, rate)
        if abs(error) < CONVERGED_LU:
            break
        gain_db += error
    peak = true_peak_dbtp(out, settings.oversampling_factor)
    if peak > settings.ceiling_dbtp:
        out = (out * 10 ** ((settings.ceiling_dbtp - CEILING_MARGIN_DB - peak) / 20)).astype(np.float32)
        peak = true_peak_dbtp(out, settings.oversampling_factor)
    output_lufs = integrated_lufs(out, rate)
    return out, LoudnessReport(
        method=LIMITER_METHOD,
        input_lufs=input_lufs,
        output_lufs=output_lufs,
        gain_db=output_lufs - before,
        true_peak_dbtp=peak,
        limiter_gain_reduction_db=reduction_db,
        target_lufs=target,
    )


def rms_gain_with_clamp(samples: np.ndarray, input_rms: float, settings: LoudnessSettings) -> tuple[np.ndarray, float]:
    """Fallback: match the input RMS times the gain, then scale down if a sample would pass the ceiling."""
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) or 1e-12
    out = samples * (input_rms * settings.gain_ratio / rms)
    ceiling = 10 ** ((settings.ceiling_dbtp - 1.0) / 20)  # a sample-peak clamp needs headroom for inter-sample peaks
    peak = float(np.max(np.abs(out))) or 1e-12
    if peak > ceiling:
        out = out * (ceiling / peak)
    return out.astype(np.float32), _db(float(np.sqrt(np.mean(out.astype(np.float64) ** 2))) / rms)
