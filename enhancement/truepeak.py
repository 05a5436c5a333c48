"""True peak as BS.1770 measures it (oversampled 4x), computed only where it can matter.

The oversampled signal is what ``scipy.signal.resample_poly`` gives, and each of its values is
a short dot product: output phase ``p`` of sample ``n`` is ``sum_d K[p, d] * x[n - d]`` over the
21 samples around ``n`` (the polyphase branches of resample_poly's own Kaiser-windowed filter).
So no oversampled value near ``n`` can exceed ``G * max|x[n-10 .. n+10]|`` (taken here over 16-sample
blocks and their neighbours, a looser bound that costs one reshape), where ``G`` is the
largest branch's L1 norm (2.24, 7 dB, at 4x). Wherever that bound is under the level that
matters, the exact value cannot matter either, and is never computed: below the limiter's
ceiling for the envelope, below the sample peak for the final reading. Speech spends most of its
samples far under its peaks, so most of the 4x work is skipped, and every value that is computed
is the full 4x value (the tests compare with resample_poly over whole clips).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import signal

# resample_poly's design: half-length 10 x the factor, Kaiser beta 5, cut-off at the input's Nyquist.
HALF_SPAN = 10
KAISER_BETA = 5.0
# Bound granularity, in samples; at least HALF_SPAN so that three blocks cover any filter window.
BLOCK = 16


@functools.lru_cache(maxsize=4)
def polyphase(oversampling: int) -> tuple[np.ndarray, float]:
    """The branch matrix K (oversampling x 21, for x[n+10] .. x[n-10]) and its bound G."""
    half = HALF_SPAN * oversampling
    taps = signal.firwin(2 * half + 1, 1.0 / oversampling, window=("kaiser", KAISER_BETA)) * oversampling
    branches = np.zeros((oversampling, 2 * HALF_SPAN + 1))
    for phase in range(oversampling):
        for column, d in enumerate(range(-HALF_SPAN, HALF_SPAN + 1)):
            index = oversampling * d + phase + half
            if 0 <= index <= 2 * half:
                branches[phase, column] = taps[index]
    return branches, float(np.abs(branches).sum(axis=1).max())


def reference_envelope(samples: np.ndarray, oversampling: int) -> np.ndarray:
    """The full 4x envelope, every sample: the largest oversampled value up to the next sample."""
    upsampled = signal.resample_poly(samples.astype(np.float64), oversampling, 1)
    return np.abs(upsampled[: len(samples) * oversampling]).reshape(len(samples), oversampling).max(axis=1)


def block_count(samples: np.ndarray) -> int:
    return -(-len(samples) // BLOCK)


def exact_blocks(samples: np.ndarray, blocks: np.ndarray, oversampling: int) -> np.ndarray:
    """The envelope over whole blocks (len(blocks) x BLOCK), exactly as reference_envelope has it there.

    Past the signal's end the rows hold the filter's tail, which the envelope does not include:
    callers keep the first len(samples) values.
    """
    branches, _ = polyphase(oversampling)
    padded = np.zeros(len(samples) + BLOCK + 2 * HALF_SPAN)
    padded[HALF_SPAN : HALF_SPAN + len(samples)] = samples
    # Each block with HALF_SPAN samples of context on either side, then every sample's window of
    # 21 as a strided view: x[n - 10] .. x[n + 10], reversed to match the branch columns.
    segments = padded[blocks[:, None] * BLOCK + np.arange(BLOCK + 2 * HALF_SPAN)[None, :]]
    windows = np.lib.stride_tricks.sliding_window_view(segments, 2 * HALF_SPAN + 1, axis=1)[:, :, ::-1]
    return np.abs(windows @ branches.T).max(axis=2)


def block_bounds(samples: np.ndarray, oversampling: int) -> np.ndarray:
    """Per block, an upper bound of the envelope on it: G times the sample peak of the block and its two neighbours.

    A window of +-HALF_SPAN samples around any sample lies inside its own block and the two beside it.
    """
    _, gain = polyphase(oversampling)
    magnitude = np.zeros(block_count(samples) * BLOCK)
    magnitude[: len(samples)] = np.abs(samples)
    peaks = magnitude.reshape(-1, BLOCK).max(axis=1)
    widened = peaks.copy()
    widened[1:] = np.maximum(widened[1:], peaks[:-1])
    widened[:-1] = np.maximum(widened[:-1], peaks[1:])
    return gain * widened


def bound(samples: np.ndarray, oversampling: int) -> np.ndarray:
    """The block bounds, per sample."""
    return np.repeat(block_bounds(samples, oversampling), BLOCK)[: len(samples)]


class Envelope:
    """The true-peak envelope of one signal, made exact lazily: only above the levels asked about."""

    def __init__(self, samples: np.ndarray, oversampling: int) -> None:
        self._samples = samples
        self._oversampling = oversampling
        self._bounds = block_bounds(samples, oversampling)
        self._rows = np.repeat(self._bounds[:, None], BLOCK, axis=1)  # the envelope, one row per block
        self._exact = np.zeros(len(self._bounds), dtype=bool)

    @property
    def ceiling(self) -> float:
        """No value of the envelope exceeds this."""
        return float(self._bounds.max(initial=0.0))

    def peak(self) -> float:
        """The true peak: exact on every block that could hold it.

        Phase 0 of the oversampled signal is the signal itself (times the filter's 1.0006 centre
        tap), so the true peak is at least the sample peak, and only blocks whose bound reaches
        that can hold it.
        """
        floor = float(np.max(np.abs(self._samples), initial=0.0)) * 0.999
        return float(self.exact_above(floor).max(initial=0.0))

    def exact_above(self, level: float) -> np.ndarray:
        """The envelope, exact wherever it could exceed ``level``; elsewhere a bound that does not exceed it."""
        todo = np.flatnonzero((self._bounds > level) & ~self._exact)
        if len(todo):
            self._rows[todo] = exact_blocks(self._samples, todo, self._oversampling)
            self._exact[todo] = True
        return self._rows.reshape(-1)[: len(self._samples)]


def true_peak(samples: np.ndarray, oversampling: int) -> float:
    """The largest oversampled magnitude, equal to reference_envelope(...).max()."""
    return Envelope(samples, oversampling).peak()
