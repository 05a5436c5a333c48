"""DSP fallback for the model: a Wiener filter with a minimum-statistics noise estimate."""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

FRAME = 512
HOP = 128
# The quietest tenth of frames in each bin approximates the noise floor when speech pauses.
NOISE_PERCENTILE = 10
# Never attenuate by more than 15 dB: deeper gains turn residual noise into "musical" tones.
GAIN_FLOOR = 10 ** (-15 / 20)


def wiener(samples: np.ndarray, rate: int) -> np.ndarray:
    _, _, spec = signal.stft(samples, fs=rate, nperseg=FRAME, noverlap=FRAME - HOP)
    power = np.abs(spec) ** 2
    noise = np.percentile(power, NOISE_PERCENTILE, axis=1, keepdims=True) + 1e-12
    posterior = power / noise
    gain = np.maximum(1.0 - 1.0 / np.maximum(posterior, 1e-6), 0.0)
    # Smoothing over neighbouring frames and bins trades a little resolution for far fewer artefacts.
    gain = np.maximum(ndimage.uniform_filter(gain, size=(3, 3)), GAIN_FLOOR)
    _, out = signal.istft(spec * gain, fs=rate, nperseg=FRAME, noverlap=FRAME - HOP)
    return out[: len(samples)].astype(np.float32)
