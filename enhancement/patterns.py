"""Interruption patterns: find clicks, noise bursts, dropouts and clipping, then repair them.

All detectors work on the 16 kHz mono signal and report events in seconds
with a confidence in [0, 1]. Thresholds are relative to the clip's own local
statistics, so they hold across recording levels.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy import ndimage
from scipy.interpolate import CubicSpline

from enhancement.config import PatternSettings
from enhancement.result import PatternEvent

FRAME_S = 0.010
# Clicks are impulses; anything longer than this is a burst, not a click.
MAX_CLICK_S = 0.005
# Runs of exact digital zero are dropouts; -100 dBFS leaves room for dither-free rounding.
DROPOUT_LEVEL = 1e-5
# Only a dropout if real signal surrounds it; leading and trailing silence is padding.
DROPOUT_CONTEXT_S = 0.05
BURST_MIN_S = 0.045
CLICK_EDGE_MARGIN_S = 0.01
BURST_MAX_S = 1.5
BURST_BASELINE_FLOOR_DB = -70.0
# Neighbouring clipped runs closer than this belong to one clipping event.
CLIPPING_MERGE_S = 0.1
CLIPPING_LEVEL_TOLERANCE = 0.002


def _runs(mask: np.ndarray) -> np.ndarray:
    """Start/end (exclusive) index pairs of the True runs in ``mask``."""
    if not mask.any():
        return np.empty((0, 2), dtype=np.int64)
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return edges.reshape(-1, 2)


def _merge(runs: np.ndarray, gap: int) -> np.ndarray:
    if len(runs) == 0:
        return runs
    merged = [list(runs[0])]
    for start, end in runs[1:]:
        if start - merged[-1][1] <= gap:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return np.asarray(merged)


def _frames(x: np.ndarray, rate: int) -> np.ndarray:
    size = int(FRAME_S * rate)
    count = len(x) // size
    return x[: count * size].reshape(count, size)


def _frame_db(frames: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def _flatness(frames: np.ndarray) -> np.ndarray:
    """Spectral flatness per frame: near 0.56 for white noise, far lower for voiced speech."""
    spectrum = scipy.fft.rfft((frames * np.hanning(frames.shape[1])).astype(np.float32), n=256, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float64) + 1e-12
    band = power[:, 2:-8]  # drop DC and the top edge, where resampling filters leave nothing
    return np.exp(np.mean(np.log(band), axis=1)) / np.mean(band, axis=1)


LPC_ORDER = 16
LPC_FRAME_S = 0.032
# A click must also stand out from a 7-sample median at least as much as its neighbours do.
MEDIAN_AGREEMENT = 1.0


def _levinson(corr: np.ndarray) -> np.ndarray:
    """Levinson-Durbin for every row at once: predictor coefficients a_1..a_p per frame."""
    frames, order = corr.shape[0], corr.shape[1] - 1
    coeffs = np.zeros((frames, order))
    error = corr[:, 0].copy()
    for i in range(1, order + 1):
        acc = corr[:, i] - np.sum(coeffs[:, : i - 1] * corr[:, i - 1 : 0 : -1], axis=1) if i > 1 else corr[:, 1].copy()
        reflection = np.divide(acc, error, out=np.zeros_like(acc), where=error > 0)
        if i > 1:
            coeffs[:, : i - 1] = coeffs[:, : i - 1] - reflection[:, None] * coeffs[:, i - 2 :: -1]
        coeffs[:, i - 1] = reflection
        error = error * (1.0 - reflection**2)
    return coeffs


def _lpc_residual(x: np.ndarray, rate: int) -> np.ndarray:
    """Short-term linear-prediction error: speech is predictable, an impulse is not.

    Each 32 ms block is predicted with coefficients fitted on a Hann window twice its
    length centred on it, so both edges of the block are well predicted. All blocks are
    fitted at once (FFT autocorrelation, vectorised Levinson-Durbin).
    """
    frame = int(LPC_FRAME_S * rate)
    blocks = -(-len(x) // frame)
    padded = np.zeros((blocks + 1) * frame, dtype=np.float32)
    padded[frame // 2 : frame // 2 + len(x)] = x
    # Windows of two blocks, one block apart: a strided view, so the only copy is the windowing.
    # The correlation is taken in float32 (4x faster here): it moves by about 2e-7 of its size,
    # under the 1e-6 white-noise correction below.
    # Zero-padding by the largest lag is enough for the lags kept; written in place, so the FFT
    # needs no padded copy of its own.
    windows = np.zeros((blocks, 2 * frame + LPC_ORDER), dtype=np.float32)
    np.multiply(
        np.lib.stride_tricks.sliding_window_view(padded, 2 * frame)[::frame][:blocks],
        np.hanning(2 * frame).astype(np.float32),
        out=windows[:, : 2 * frame],
    )
    # Wiener-Khinchin: the inverse transform of the power spectrum. No matrix product here: numpy's
    # BLAS would start its own threads, which keep spinning after the call and slow the model
    # sharing these cores by 10-15%.
    spectrum = scipy.fft.rfft(windows, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    corr = scipy.fft.irfft(power, n=2 * frame + LPC_ORDER, axis=1)[:, : LPC_ORDER + 1].astype(np.float64)
    silent = corr[:, 0] <= 1e-12
    corr[:, 0] *= 1.0 + 1e-6  # white-noise correction keeps the system well conditioned
    coeffs = _levinson(corr)
    coeffs[silent] = 0.0  # nothing to predict from: the residual is the signal itself
    # The prediction, one lag at a time over every block at once, in float32 like the samples
    # themselves (the error it leaves is 1e-7 of the prediction, far under the -80 dBFS floor).
    source = np.zeros(LPC_ORDER + blocks * frame, dtype=np.float32)
    source[LPC_ORDER : LPC_ORDER + len(x)] = x
    weights = coeffs.astype(np.float32)
    residual = source[LPC_ORDER:].reshape(blocks, frame).copy()
    for lag in range(1, LPC_ORDER + 1):
        residual -= weights[:, lag - 1, None] * source[LPC_ORDER - lag : LPC_ORDER - lag + blocks * frame].reshape(blocks, frame)
    return residual.reshape(-1)[: len(x)]


def _neighbourhood_max(values: np.ndarray, reach: int, guard: int) -> np.ndarray:
    """Largest value between ``guard`` and ``reach`` samples away, on either side."""
    half = max(1, (reach - guard) // 2)
    centred = ndimage.maximum_filter1d(values, size=2 * half + 1, mode="constant")
    by = guard + half
    out = np.zeros_like(centred)
    if by >= len(centred):
        return out
    out[by:] = centred[:-by]  # the window before each sample, then the one after it, in place
    np.maximum(out[:-by], centred[by:], out=out[:-by])
    return out


# Samples per block for the cheap lower bound of the neighbourhood maximum.
BOUND_BLOCK = 16
# Past this many candidates, one full running maximum is cheaper than a window each.
MAX_SPARSE_CANDIDATES = 2000


def _prediction_ratio(predicted: np.ndarray, reach: int, guard: int, threshold: float, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Where predicted / (threshold * max(neighbourhood max, floor)) exceeds 1: the sample indices,
    ascending, and the ratios there. Everywhere else it is under 1, and never used.

    The exact neighbourhood maximum (a 300-sample running maximum, the costliest step of click
    detection) is needed only to decide which values exceed 1. A lower
    bound from 16-sample block maxima, one per block, rules most samples out first: a sample
    whose prediction error is under threshold x bound cannot exceed 1. The rest get their exact
    windows, as _neighbourhood_max has them (a side whose centre is outside the signal is 0).
    """
    n, size = len(predicted), BOUND_BLOCK
    half = max(1, (reach - guard) // 2)
    by = guard + half
    blocks = -(-n // size)
    grid = np.zeros((blocks, size), dtype=predicted.dtype)
    grid.reshape(-1)[:n] = predicted
    block_max = grid.max(axis=1)
    # Whole blocks inside each side's window for every sample of block k: the right window of
    # sample i spans i + guard .. i + guard + 2 * half, the left one i - guard - 2 * half .. i - guard.
    first = np.arange(blocks) * size
    right_lo, right_hi = -(-(first + size - 1 + guard) // size), (first + guard + 2 * half + 1) // size - 1
    left_lo, left_hi = -(-(first + size - 1 - guard - 2 * half) // size), (first - guard + 1) // size - 1
    inside = int(right_hi[0] - right_lo[0] + 1)
    run_max = ndimage.maximum_filter1d(np.concatenate([block_max, np.zeros(inside)]), size=inside, origin=-(inside // 2))[:blocks]
    right_ok = (first + size - 1 + by < n) & (right_lo < blocks)
    left_ok = (first >= by) & (left_lo >= 0) & (left_hi - left_lo + 1 == inside)
    lower = np.maximum(
        np.where(right_ok, run_max[np.clip(right_lo, 0, blocks - 1)], 0.0),
        np.where(left_ok, run_max[np.clip(left_lo, 0, blocks - 1)], 0.0),
    )
    # The grid's padding is 0, never over threshold x floor, so every candidate is a real sample.
    candidates = np.flatnonzero(grid > threshold * np.maximum(lower, floor)[:, None])
    if not len(candidates):
        return candidates, np.zeros(0)
    if len(candidates) > MAX_SPARSE_CANDIDATES:
        exact = _neighbourhood_max(predicted, reach, guard)[candidates]
    else:
        padded = np.concatenate([np.zeros(guard + 2 * half), predicted, np.zeros(guard + 2 * half)])
        offsets = np.arange(2 * half + 1)
        left = padded[candidates[:, None] + offsets[None, :]].max(axis=1, initial=0.0)
        right = padded[candidates[:, None] + 2 * guard + 2 * half + offsets[None, :]].max(axis=1, initial=0.0)
        exact = np.maximum(np.where(candidates >= by, left, 0.0), np.where(candidates + by < n, right, 0.0))
    values = predicted[candidates] / (threshold * np.maximum(exact, floor))
    over = values > 1.0
    return candidates[over], values[over]


def _index_runs(indices: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """Ascending sample indices grouped as _merge(_runs(mask), gap) groups the mask they mark:
    (first, last + 1) positions in ``indices`` of each group."""
    if not len(indices):
        return []
    breaks = np.flatnonzero(np.diff(indices) > gap + 1) + 1
    bounds = np.concatenate(([0], breaks, [len(indices)]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


# Context around a stretch for its median view to equal the whole signal's there: the 7-sample
# median (3), the 5-sample agreement window (2), and slack.
MEDIAN_CONTEXT = 16


def _median_view_agrees(x: np.ndarray, start: int, end: int, reach: int, guard: int, floor: float) -> np.ndarray:
    """For x[start:end]: does a sample, or one within 2 of it, stand out from a 7-sample median as
    much as its neighbours 1-20 ms away do? Computed on the stretch and enough context on either
    side that every value used is the one the whole signal gives (its edges are the signal's own)."""
    margin = reach + MEDIAN_CONTEXT
    lo, hi = max(0, start - margin), min(len(x), end + margin)
    part = x[lo:hi]
    outlier = np.abs(part - ndimage.median_filter(part, size=7, mode="nearest"))
    outlier_ratio = outlier / np.maximum(_neighbourhood_max(outlier, reach, guard), floor)
    return (ndimage.maximum_filter1d(outlier_ratio, size=5) > MEDIAN_AGREEMENT)[start - lo : end - lo]


def detect_clicks(x: np.ndarray, rate: int, settings: PatternSettings) -> list[PatternEvent]:
    # Judge each sample against its neighbours 1-20 ms away: glottal pulses and onsets
    # recur there, an impulse does not. Two views must agree: the linear-prediction
    # error (speech is predictable, an impulse is not) and the distance from a
    # 7-sample median (which erases anything up to 3 samples wide).
    reach, guard = int(0.020 * rate), int(0.001 * rate)
    floor = 1e-4  # -80 dBFS: below it nothing is audible as a click
    predicted = np.abs(_lpc_residual(x, rate))
    # The first view's outliers are few: kept as indices and ratios, never as whole-clip arrays.
    where, ratio = _prediction_ratio(predicted, reach, guard, settings.click_threshold, floor)
    # Both views must agree, so the median view is needed only around the first view's candidates:
    # most speech has none, and the median view is the costlier of the two.
    agreed = np.zeros(len(where), dtype=bool)
    for first, last in _index_runs(where, gap=2 * (reach + MEDIAN_CONTEXT)):
        start, end = int(where[first]), int(where[last - 1]) + 1
        agreed[first:last] = _median_view_agrees(x, start, end, reach, guard, floor)[where[first:last] - start]
    where, ratio = where[agreed], ratio[agreed]
    events = []
    for first, last in _index_runs(where, gap=int(0.001 * rate)):
        start, end = int(where[first]), int(where[last - 1]) + 1
        if (end - start) / rate > MAX_CLICK_S:
            continue
        strength = float(ratio[first:last].max())
        events.append(PatternEvent("click", start / rate, end / rate, float(min(1.0, 0.5 + 0.5 * np.log10(strength) / np.log10(4)))))
    return events


def _burst_frames(x: np.ndarray, rate: int, settings: PatternSettings, use_flatness: bool) -> tuple[np.ndarray, np.ndarray]:
    frames = _frames(x, rate)
    level = _frame_db(frames)
    # The 80th percentile over three seconds sits near the level of vowels: the loudest
    # thing speech normally does, even when a few bursts share the window. The floor keeps digital silence from making any
    # quiet frame look like an outburst.
    baseline = np.maximum(ndimage.percentile_filter(level, 80, size=301, mode="nearest"), BURST_BASELINE_FLOOR_DB)
    excess = level - baseline
    mask = excess > settings.burst_threshold_db
    if use_flatness:
        # Flatness only decides frames loud enough already: a few, where the spectra are costly.
        loud = np.flatnonzero(mask)
        mask[loud] = _flatness(frames[loud]) > settings.burst_min_flatness
    return mask, excess


def detect_bursts(x: np.ndarray, rate: int, settings: PatternSettings, *, use_flatness: bool = True) -> list[PatternEvent]:
    mask, excess = _burst_frames(x, rate, settings, use_flatness)
    frame = int(FRAME_S * rate)
    events = []
    for start, end in _merge(_runs(mask), gap=2):
        seconds = (end - start) * FRAME_S
        if not BURST_MIN_S <= seconds <= BURST_MAX_S:
            continue
        margin = float(np.median(excess[start:end])) - settings.burst_threshold_db
        confidence = min(1.0, 0.5 + margin / 12.0) if use_flatness else min(0.6, 0.3 + margin / 24.0)
        events.append(PatternEvent("burst", start * frame / rate, end * frame / rate, float(max(0.05, confidence))))
    return events


def detect_dropouts(x: np.ndarray, rate: int, settings: PatternSettings) -> list[PatternEvent]:
    quiet = np.abs(x) < DROPOUT_LEVEL
    context = int(DROPOUT_CONTEXT_S * rate)
    events = []
    for start, end in _runs(quiet):
        if (end - start) / rate * 1000 < settings.dropout_min_ms or start < context or end > len(x) - context:
            continue
        around = np.concatenate([x[start - context : start], x[end : end + context]])
        contrast_db = 20 * np.log10(np.sqrt(np.mean(around.astype(np.float64) ** 2)) / DROPOUT_LEVEL + 1e-12)
        if contrast_db < 30:  # signal around it is itself near silence: a pause, not a dropout
            continue
        exact = float(np.mean(x[start:end] == 0.0))
        confidence = 0.5 + 0.25 * exact + 0.25 * min(1.0, (contrast_db - 30) / 30)
        events.append(PatternEvent("dropout", start / rate, end / rate, float(confidence)))
    return events


def detect_clipping(x: np.ndarray, rate: int, settings: PatternSettings) -> list[PatternEvent]:
    peak = float(np.max(np.abs(x)))
    if peak <= 0:
        return []
    at_rail = np.abs(x) >= peak * (1 - CLIPPING_LEVEL_TOLERANCE)
    runs = _runs(at_rail)
    runs = runs[(runs[:, 1] - runs[:, 0]) >= settings.clipping_min_run_samples]
    # One flat top can be a slow waveform peaking; clipping shows as repeated flat tops.
    if len(runs) < 2:
        return []
    events = []
    for start, end in _merge(runs, gap=int(CLIPPING_MERGE_S * rate)):
        flat_runs = runs[(runs[:, 0] >= start) & (runs[:, 1] <= end)]
        longest = int((flat_runs[:, 1] - flat_runs[:, 0]).max())
        if len(flat_runs) < 2 and longest < 2 * settings.clipping_min_run_samples:
            continue
        confidence = min(1.0, 0.4 + 0.15 * len(flat_runs) + 0.05 * longest)
        events.append(PatternEvent("clipping", start / rate, end / rate, float(confidence)))
    return events


def _overlaps(event: PatternEvent, others: list[PatternEvent], margin_s: float) -> bool:
    return any(event.start_s <= o.end_s + margin_s and event.end_s >= o.start_s - margin_s for o in others)


def detect(x: np.ndarray, rate: int, settings: PatternSettings) -> list[PatternEvent]:
    clipping = detect_clipping(x, rate, settings)
    dropouts = detect_dropouts(x, rate, settings)
    # Overdriven speech is loud and spectrally flat, so it also looks like a burst.
    bursts = [e for e in detect_bursts(x, rate, settings) if not _overlaps(e, clipping, CLIPPING_MERGE_S)]
    # The hard edges of every other event are impulses too; they are not separate clicks.
    clicks = [e for e in detect_clicks(x, rate, settings) if not _overlaps(e, clipping + dropouts + bursts, CLICK_EDGE_MARGIN_S)]
    return sorted(clicks + bursts + dropouts + clipping, key=lambda e: e.start_s)


def detect_energy_only(x: np.ndarray, rate: int, settings: PatternSettings) -> list[PatternEvent]:
    """Fallback: frame energies alone, no spectral or sample-level analysis."""
    events = detect_bursts(x, rate, settings, use_flatness=False) + detect_dropouts(x, rate, settings)
    return sorted(events, key=lambda e: e.start_s)


def _interpolate(y: np.ndarray, start: int, end: int, context: int) -> None:
    """Replace y[start:end] by a cubic spline through the samples on either side."""
    left = np.arange(max(0, start - context), start)
    right = np.arange(end, min(len(y), end + context))
    known = np.concatenate([left, right])
    if len(left) < 2 or len(right) < 2:
        return
    y[start:end] = CubicSpline(known, y[known])(np.arange(start, end))


def _bridge(y: np.ndarray, start: int, end: int) -> None:
    """Fill a gap by cross-fading the audio just before it into the audio just after it.

    What was lost cannot be recovered; the aim is a gap the ear and the model
    take for speech, not a hard cut to silence and back.
    """
    length = end - start
    before = y[max(0, start - length) : start]
    after = y[end : end + length]
    if len(before) < length or len(after) < length:
        return
    fade = np.linspace(0.0, 1.0, length)
    y[start:end] = before * (1.0 - fade) + after * fade


def _ramp_gain(y: np.ndarray, start: int, end: int, gain: float, ramp: int) -> None:
    envelope = np.full(end - start, gain)
    ramp = min(ramp, (end - start) // 2)
    if ramp > 0:
        fade = np.linspace(1.0, gain, ramp)
        envelope[:ramp] = fade
        envelope[-ramp:] = fade[::-1]
    y[start:end] *= envelope


def suppress(x: np.ndarray, rate: int, events: list[PatternEvent]) -> np.ndarray:
    """Repair each event in a copy of ``x``: interpolate clicks and clipped peaks, attenuate bursts, bridge dropouts."""
    y = x.astype(np.float64, copy=True)
    for event in events:
        start, end = int(event.start_s * rate), int(np.ceil(event.end_s * rate))
        if event.kind == "click":
            pad = int(0.0005 * rate)
            _interpolate(y, max(0, start - pad), min(len(y), end + pad), context=int(0.002 * rate))
        elif event.kind == "burst":
            around = np.concatenate([y[max(0, start - rate // 4) : start], y[end : end + rate // 4]])
            inside = np.sqrt(np.mean(y[start:end] ** 2)) + 1e-12
            target = np.sqrt(np.mean(around**2)) if len(around) else 0.0
            _ramp_gain(y, start, end, min(1.0, target / inside), ramp=int(0.005 * rate))
        elif event.kind == "dropout":
            _bridge(y, start, end)
        elif event.kind == "clipping":
            level = np.max(np.abs(y[start:end]))
            flat = _runs(np.abs(y[start:end]) >= level * (1 - CLIPPING_LEVEL_TOLERANCE))
            for run_start, run_end in flat:
                _interpolate(y, start + run_start, start + run_end, context=8)
    return y.astype(np.float32)
