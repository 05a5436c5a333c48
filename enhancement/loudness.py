"""Loudness stage: restore the input's loudness, add the configured gain, limit true peaks.

MetricGAN+ peak-normalises its output, so its level says nothing about the
input's. The stage first measures the input's integrated loudness (ITU-R
BS.1770-4, gated), aims at that plus the gain (x1.6 amplitude = +4.08 dB by
default), and reaches it through a look-ahead true-peak limiter. Limiting
costs loudness, so the gain is corrected and the limiter re-run until the
output is on target or the limiter cannot give more.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from pyloudnorm.iirfilter import IIRfilter
from scipy import ndimage, signal

from enhancement import truepeak
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


# BS.1770-4 gating: 400 ms blocks every 100 ms, an absolute gate, then one 10 LU under the mean.
BLOCK_SECONDS = 0.4
BLOCK_STEP = 0.25
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = 10.0
LOUDNESS_OFFSET_DB = -0.691


@functools.lru_cache(maxsize=8)
def _k_weighting(rate: int) -> tuple[np.ndarray, float]:
    """BS.1770's K-weighting at any rate, as pyloudnorm designs it (high shelf, then high pass),
    as two second-order sections run in one call, and the product of their passband gains."""
    shelf = IIRfilter(4.0, 1 / math.sqrt(2), 1500.0, rate, "high_shelf")
    high_pass = IIRfilter(0.0, 0.5, 38.0, rate, "high_pass")
    sections = np.array([np.concatenate([f.b / f.a[0], f.a / f.a[0]]) for f in (shelf, high_pass)])
    return sections.astype(np.float32), shelf.passband_gain * high_pass.passband_gain


def block_mean_squares(samples: np.ndarray, rate: int) -> np.ndarray:
    """K-weighted mean square of every BS.1770 gating block (400 ms, 75% overlap).

    The filter runs in float32 (a test holds it within 0.001 LU of pyloudnorm's float64); the
    energies are summed in float64. The same measurement as pyloudnorm's Meter (its filters,
    block bounds and gates), with the per-block loop replaced by one cumulative sum.
    """
    if len(samples) < BLOCK_SECONDS * rate:
        raise ValueError(f"{len(samples)} samples is shorter than one {BLOCK_SECONDS * 1000:.0f} ms gating block")
    sections, gain = _k_weighting(rate)
    weighted = signal.sosfilt(sections, samples.astype(np.float32))
    blocks = int(np.round((len(weighted) / rate - BLOCK_SECONDS) / (BLOCK_SECONDS * BLOCK_STEP))) + 1
    index = np.arange(blocks)
    lower = (BLOCK_SECONDS * (index * BLOCK_STEP) * rate).astype(np.int64)
    upper = np.minimum((BLOCK_SECONDS * (index * BLOCK_STEP + 1) * rate).astype(np.int64), len(weighted))
    # Blocks overlap by 75%, so every bound is also the bound of a 100 ms segment: each segment is
    # summed once (squares in float32, exact to 1e-7 each, summed in float64), and each block adds
    # its four. The passband gain, a constant, is applied to the sums.
    edges = np.unique(np.concatenate([lower, upper]))
    segments = np.add.reduceat(np.square(weighted), edges[edges < len(weighted)], dtype=np.float64)
    energy = np.concatenate(([0.0], np.cumsum(segments)))
    return (energy[np.searchsorted(edges, upper)] - energy[np.searchsorted(edges, lower)]) * (gain * gain / (BLOCK_SECONDS * rate))


def gated_lufs(mean_square: np.ndarray) -> float:
    """Integrated loudness from block mean squares: the absolute gate, then the relative one."""
    with np.errstate(divide="ignore"):
        block_lufs = LOUDNESS_OFFSET_DB + 10 * np.log10(mean_square)
        above_absolute = block_lufs >= ABSOLUTE_GATE_LUFS
        if not above_absolute.any():
            return ABSOLUTE_GATE_LUFS
        relative_gate = LOUDNESS_OFFSET_DB + 10 * np.log10(mean_square[above_absolute].mean()) - RELATIVE_GATE_LU
        gated = (block_lufs > relative_gate) & (block_lufs > ABSOLUTE_GATE_LUFS)
        if not gated.any():
            return ABSOLUTE_GATE_LUFS
        loudness = LOUDNESS_OFFSET_DB + 10 * np.log10(mean_square[gated].mean())
    return float(loudness) if math.isfinite(loudness) else ABSOLUTE_GATE_LUFS


def integrated_lufs(samples: np.ndarray, rate: int) -> float:
    """Gated integrated loudness of a mono signal in LUFS; -70 (the absolute gate) for anything quieter."""
    return gated_lufs(block_mean_squares(samples, rate))


def true_peak_dbtp(samples: np.ndarray, oversampling: int = 4) -> float:
    return _db(truepeak.true_peak(samples, oversampling))


def _ceiling(settings: LoudnessSettings) -> float:
    return 10 ** ((settings.ceiling_dbtp - CEILING_MARGIN_DB) / 20)


def limit(
    samples: np.ndarray, rate: int, settings: LoudnessSettings, envelope: truepeak.Envelope | None = None, gain: float = 1.0
) -> tuple[np.ndarray, float]:
    """Apply a look-ahead true-peak limiter to ``samples * gain``. Returns the output and the deepest reduction in dB.

    ``envelope`` is the true-peak envelope of ``samples`` when the caller has it: it scales with a
    constant gain, so one envelope serves every pass of ``normalise``. It is exact wherever the
    gained peak could reach the ceiling, and the limiter needs it nowhere else.
    """
    ceiling = _ceiling(settings)
    if envelope is None:
        envelope = truepeak.Envelope(samples, settings.oversampling_factor)
    # Nothing to limit when the bound, or else the exact envelope where it matters, stays under the ceiling.
    if envelope.ceiling * gain <= ceiling or (exact := envelope.exact_above(ceiling / gain)).max() * gain <= ceiling:
        return (samples * gain).astype(np.float32), 0.0
    needed = np.minimum(1.0, ceiling / np.maximum(exact * gain, 1e-12))
    samples = samples * gain
    if needed.min() >= 1.0:
        return samples.astype(np.float32), 0.0
    lookahead = max(1, int(settings.lookahead_ms / 1000 * rate))
    # A minimum over +-lookahead, then a moving average half as wide: the gain is fully
    # down before each peak arrives and never exceeds what the peak needs.
    curve = ndimage.minimum_filter1d(needed, size=2 * lookahead + 1, mode="nearest")
    curve = ndimage.uniform_filter1d(curve, size=lookahead + 1, mode="nearest")
    # Release: let the reduction decay exponentially instead of snapping back.
    reduction = 1.0 - curve
    coefficient = 1.0 - math.exp(-1.0 / (settings.release_ms / 1000 * rate))
    released = signal.lfilter([coefficient], [1.0, coefficient - 1.0], reduction)
    curve = 1.0 - np.maximum(reduction, released)
    return (samples * curve).astype(np.float32), -_db(float(curve.min()))


def normalise(samples: np.ndarray, rate: int, input_lufs: float, settings: LoudnessSettings) -> tuple[np.ndarray, LoudnessReport]:
    """Bring ``samples`` to input loudness + gain, true peak at or under the ceiling."""
    target = input_lufs + _db(settings.gain_ratio)
    blocks = block_mean_squares(samples, rate)
    before = gated_lufs(blocks)
    gain_db = target - before
    out, reduction_db = samples, 0.0
    envelope = truepeak.Envelope(samples, settings.oversampling_factor)
    for _ in range(MAX_PASSES):
        gain = 10 ** (gain_db / 20)
        out, reduction_db = limit(samples, rate, settings, envelope, gain)
        # K-weighting is linear: untouched by the limiter, the output's blocks are the input's
        # times gain squared, and only the gates need computing again.
        output_lufs = gated_lufs(blocks * gain**2) if reduction_db == 0.0 else integrated_lufs(out, rate)
        error = target - output_lufs
        if abs(error) < CONVERGED_LU:
            break
        gain_db += error
    # Untouched by the limiter, the output is the input times the gain: so is its true peak (to the
    # output's float32 rounding), and the envelope already holds the exact values it needs.
    peak = _db(envelope.peak() * gain) if reduction_db == 0.0 else true_peak_dbtp(out, settings.oversampling_factor)
    if peak > settings.ceiling_dbtp:
        trim_db = settings.ceiling_dbtp - CEILING_MARGIN_DB - peak
        out = (out * 10 ** (trim_db / 20)).astype(np.float32)
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
        tolerance_lu=settings.tolerance_lu,
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
