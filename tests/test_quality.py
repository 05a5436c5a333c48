import numpy as np
import pytest

from enhancement import quality
from recipes import corpus, evaluation

RATE = corpus.SAMPLE_RATE_HZ


def test_wada_snr_tracks_the_true_snr_of_speech_in_white_noise(speech):
    rng = np.random.default_rng(0)
    estimates = []
    for snr in (0.0, 10.0, 20.0):
        noisy = corpus.mix_at_snr(speech, rng.standard_normal(len(speech)).astype(np.float32), snr)
        estimates.append(quality.wada_snr_db(noisy))
    assert estimates[0] < estimates[1] < estimates[2]
    # WADA assumes Gamma-distributed speech; synthetic speech is near enough for a few dB.
    assert estimates[1] == pytest.approx(10.0, abs=5.0)


def test_wada_snr_in_float32_reads_what_float64_reads(speech):
    """The statistic's logarithms run in float32; the estimate must not move by any meaningful amount."""

    def float64_estimate(samples: np.ndarray) -> float:
        x = np.abs(samples.astype(np.float64))
        x = x[x > quality.DIGITAL_SILENCE] / x.max()
        g = np.log(np.mean(x)) - np.mean(np.log(np.maximum(x, 1e-10)))
        return float(np.interp(g, quality._wada_curve(), quality.SNR_GRID_DB, left=-20.0, right=100.0))

    rng = np.random.default_rng(5)
    for snr in (-5.0, 5.0, 15.0, 30.0):
        noisy = corpus.mix_at_snr(speech, rng.standard_normal(len(speech)).astype(np.float32), snr).astype(np.float32)
        assert quality.wada_snr_db(noisy) == pytest.approx(float64_estimate(noisy), abs=1e-4)


def test_wada_snr_of_silence_and_pure_noise_is_at_the_bottom():
    assert quality.wada_snr_db(np.zeros(1000)) == -20.0
    assert quality.wada_snr_db(np.random.default_rng(1).standard_normal(RATE)) < -5.0


def test_rate_sampler_takes_exactly_its_share():
    sampler = quality.RateSampler(0.1)
    assert sum(sampler.take() for _ in range(1000)) == 100
    assert not any(quality.RateSampler(0.0).take() for _ in range(10))
    assert all(quality.RateSampler(1.0).take() for _ in range(10))
    with pytest.raises(ValueError):
        quality.RateSampler(1.5)


def test_dnsmos_scores_clean_speech_above_noise(speech):
    clean = quality.dnsmos(speech, RATE)
    noisy = quality.dnsmos(corpus.mix_at_snr(speech, corpus.noise(np.random.default_rng(2), "white", len(speech)), 0.0), RATE)
    assert set(clean) == set(quality.DNSMOS_DIMENSIONS)
    assert all(1.0 <= v <= 5.0 for v in clean.values())
    assert clean["bak"] > noisy["bak"] + 0.5


def test_reference_metrics_rank_clean_above_noisy(speech):
    noisy = corpus.mix_at_snr(speech, corpus.noise(np.random.default_rng(3), "pink", len(speech)), 5.0)
    pesq_clean, stoi_clean = evaluation.reference_metrics(speech, speech, RATE)
    pesq_noisy, stoi_noisy = evaluation.reference_metrics(speech, noisy, RATE)
    assert pesq_clean > 4.0 and stoi_clean > 0.99
    assert pesq_noisy < pesq_clean and stoi_noisy < stoi_clean
