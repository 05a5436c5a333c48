"""The true-peak shortcut against the full 4x oversampling of every sample."""

import numpy as np
import pytest
from scipy import signal

from enhancement import truepeak

RATE = 16_000


def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    t = np.arange(3 * RATE) / RATE
    speechlike = rng.standard_normal(len(t)) * (0.05 + 0.6 * (np.sin(2 * np.pi * 3 * t) > 0.8)) * np.hanning(len(t))
    quarter = np.sin(2 * np.pi * np.arange(RATE) / 4 + np.pi / 4)  # every sample 3 dB under the crests
    return {
        "quiet": rng.standard_normal(len(t)) * 1e-3,
        "speech-like": speechlike,
        "hot": np.clip(speechlike * 8, -0.99, 0.99),
        "clipped square": np.sign(np.sin(2 * np.pi * 440 * t)) * 0.9,
        "quarter-rate sine": quarter,
        "one impulse at the edge": np.concatenate([[1.0], np.zeros(1000)]),
        "shorter than a block": rng.standard_normal(7),
        "silence": np.zeros(RATE),
    }


@pytest.mark.parametrize("oversampling", [4, 8])
@pytest.mark.parametrize("name", list(signals()))
def test_the_reading_equals_the_full_oversampled_maximum(name, oversampling):
    samples = signals()[name]
    expected = truepeak.reference_envelope(samples, oversampling).max()
    assert truepeak.true_peak(samples, oversampling) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_the_reference_is_scipys_resample_poly():
    samples = signals()["speech-like"]
    upsampled = signal.resample_poly(samples, 4, 1)
    assert truepeak.reference_envelope(samples, 4).max() == pytest.approx(np.abs(upsampled).max(), rel=1e-15)


@pytest.mark.parametrize("name", list(signals()))
def test_the_bound_is_never_under_the_envelope_and_exact_values_match_it(name):
    samples = signals()[name]
    full = truepeak.reference_envelope(samples, 4)
    assert np.all(truepeak.bound(samples, 4) >= full - 1e-12)
    every = np.arange(truepeak.block_count(samples))
    exact = truepeak.exact_blocks(samples, every, 4).reshape(-1)[: len(samples)]
    assert np.allclose(exact, full, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("level", [0.05, 0.3, 0.9])
def test_the_lazy_envelope_is_exact_above_the_level_and_under_it_elsewhere(level):
    samples = signals()["hot"]
    full = truepeak.reference_envelope(samples, 4)
    envelope = truepeak.Envelope(samples, 4)
    values = envelope.exact_above(level).copy()
    assert np.allclose(values[full > level], full[full > level], rtol=1e-12)
    left = ~np.isclose(values, full, rtol=1e-12, atol=1e-15)
    assert np.all(values[left] <= level), "a value left as the bound never exceeds the level"
    assert np.all(values >= full - 1e-12)
    # Asking about a lower level later makes more of it exact, and keeps what was done.
    assert np.allclose(envelope.exact_above(level / 4)[full > level / 4], full[full > level / 4], rtol=1e-12)


def test_the_shortcut_skips_most_of_the_work_on_speech_like_audio():
    samples = signals()["speech-like"]
    floor = np.abs(samples).max()
    share = np.mean(truepeak.bound(samples, 4) >= floor)
    assert share < 0.2, f"{share:.0%} of samples needed the full computation"


@pytest.mark.parametrize("name", list(signals()))
def test_the_envelope_reads_the_same_peak_as_the_full_oversampling(name):
    samples = signals()[name]
    expected = truepeak.reference_envelope(samples, 4).max()
    assert truepeak.Envelope(samples, 4).peak() == pytest.approx(expected, rel=1e-12, abs=1e-15)
