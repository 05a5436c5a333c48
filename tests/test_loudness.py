import numpy as np
import pytest

from enhancement import loudness, truepeak
from enhancement.config import LoudnessSettings

RATE = 16_000
SETTINGS = LoudnessSettings()
GAIN_DB = 20 * np.log10(1.6)


def full_4x_dbtp(samples: np.ndarray) -> float:
    """The guarantee is checked with the full 4x oversampling of every sample, not the stage's shortcut."""
    return 20 * np.log10(truepeak.reference_envelope(np.asarray(samples, dtype=np.float64), 4).max())


def test_true_peak_meter_sees_peaks_between_samples():
    # A sine at a quarter of the rate, sampled 45 degrees off its crests: every sample sits 3 dB low.
    t = np.arange(RATE)
    tone = np.sin(2 * np.pi * t / 4 + np.pi / 4)
    assert 20 * np.log10(np.max(np.abs(tone))) == pytest.approx(-3.01, abs=0.05)
    assert loudness.true_peak_dbtp(tone, 4) == pytest.approx(0.0, abs=0.3)


def test_integrated_loudness_of_a_full_scale_1k_sine_is_minus_3_lufs():
    t = np.arange(5 * 48_000) / 48_000
    assert loudness.integrated_lufs(np.sin(2 * np.pi * 997 * t), 48_000) == pytest.approx(-3.01, abs=0.1)


def _signals(rng: np.random.Generator, rate: int) -> dict[str, np.ndarray]:
    t = np.arange(int(7.3 * rate)) / rate
    bursty = rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 0.7 * t) > 0.6)  # loud then near-silent stretches
    quiet_tail = np.concatenate([rng.standard_normal(rate) * 0.5, rng.standard_normal(5 * rate) * 1e-4])
    return {
        "noise": rng.standard_normal(len(t)) * 0.1,
        "bursty": bursty * 0.3 + rng.standard_normal(len(t)) * 1e-5,
        "quiet tail": quiet_tail,  # the relative gate drops the tail
        "half a second": rng.standard_normal(rate // 2) * 0.2,
        "near the absolute gate": rng.standard_normal(len(t)) * 3e-4,
    }


@pytest.mark.parametrize("rate", [16_000, 44_100])
def test_integrated_loudness_matches_pyloudnorm_to_a_thousandth_of_a_lu(rate):
    import pyloudnorm

    meter = pyloudnorm.Meter(rate)
    for name, samples in _signals(np.random.default_rng(7), rate).items():
        expected = meter.integrated_loudness(samples)
        assert loudness.integrated_lufs(samples, rate) == pytest.approx(expected, abs=1e-3), name


@pytest.mark.parametrize("rate", [16_000, 44_100, 48_000])
def test_every_gating_block_holds_the_mean_square_of_its_own_samples(rate):
    """Blocks are summed from shared 100 ms segments; each must still be its own 400 ms, as BS.1770
    bounds them (pyloudnorm's arithmetic, whose rounding differs between rates)."""
    from scipy import signal

    samples = np.random.default_rng(3).standard_normal(int(9.37 * rate)) * 0.1
    sections, gain = loudness._k_weighting(rate)
    weighted = signal.sosfilt(sections.astype(np.float64), samples) * gain
    blocks = loudness.block_mean_squares(samples, rate)
    length, overlap = loudness.BLOCK_SECONDS, loudness.BLOCK_STEP
    bounds = [
        (int(length * (j * overlap) * rate), int(length * (j * overlap + 1) * rate))
        for j in range(int(np.round((len(samples) / rate - length) / (length * overlap))) + 1)
    ]
    expected = [np.sum(weighted[lower:upper] ** 2) / (length * rate) for lower, upper in bounds]
    assert len(blocks) == len(expected)
    # float32 filtering against float64: the same blocks to a few parts in a million.
    assert np.allclose(blocks, expected, rtol=2e-5, atol=0)


def test_silence_measures_at_the_absolute_gate_and_too_short_a_clip_is_refused():
    assert loudness.integrated_lufs(np.zeros(RATE), RATE) == loudness.ABSOLUTE_GATE_LUFS
    with pytest.raises(ValueError, match="gating block"):
        loudness.integrated_lufs(np.ones(RATE // 4), RATE)


def clipped(speech: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Speech at a peak level, with 150 ms in the middle driven 3x into the rails, as an overloaded converter does."""
    source = speech / np.max(np.abs(speech)) * 10 ** (peak_dbfs / 20)
    middle = slice(len(source) // 2, len(source) // 2 + int(0.15 * RATE))
    source[middle] = np.clip(source[middle] * 3.0, -1.0, 1.0)
    return source


@pytest.mark.parametrize("peak_dbfs", [-30.0, -0.3, -6.0], ids=["quiet input", "hot input", "clipping input"])
def test_output_is_input_plus_4_08_lu_and_under_minus_1_dbtp(speech, peak_dbfs):
    source = clipped(speech, peak_dbfs) if peak_dbfs == -6.0 else speech / np.max(np.abs(speech)) * 10 ** (peak_dbfs / 20)
    input_lufs = loudness.integrated_lufs(source, RATE)
    model_output = speech / np.max(np.abs(speech))  # MetricGAN+ peak-normalises what it returns
    out, report = loudness.normalise(model_output.astype(np.float32), RATE, input_lufs, SETTINGS)
    measured = loudness.integrated_lufs(out, RATE)
    assert measured == pytest.approx(input_lufs + GAIN_DB, abs=0.5)
    assert full_4x_dbtp(out) <= -1.0
    # The full 4x reading, to the output's float32 rounding (the stage may read it off the input's envelope).
    assert report.true_peak_dbtp == pytest.approx(full_4x_dbtp(out), abs=1e-5)
    assert report.output_lufs == pytest.approx(measured, abs=1e-6)
    assert report.true_peak_dbtp <= -1.0 and report.on_target
    if peak_dbfs > -1:
        assert report.limiter_gain_reduction_db > 1.0, "a hot input needs the limiter"


def test_limiter_leaves_quiet_audio_untouched(speech):
    quiet = (speech * 0.1).astype(np.float32)
    out, reduction = loudness.limit(quiet, RATE, SETTINGS)
    assert reduction == 0.0 and np.array_equal(out, quiet)


def test_gain_is_configurable(speech):
    settings = LoudnessSettings(gain_ratio=1.0)
    input_lufs = loudness.integrated_lufs(speech * 0.2, RATE)
    out, report = loudness.normalise((speech / np.max(np.abs(speech))).astype(np.float32), RATE, input_lufs, settings)
    assert report.output_lufs == pytest.approx(input_lufs, abs=0.5)


def test_rms_fallback_clamps_the_peak(speech):
    out, _ = loudness.rms_gain_with_clamp(speech.astype(np.float32), input_rms=0.5, settings=SETTINGS)
    assert np.max(np.abs(out)) <= 10 ** (-2.0 / 20) + 1e-6
