import numpy as np
import pytest
import scipy.linalg
from scipy import ndimage

from enhancement import patterns
from enhancement.config import PatternSettings
from enhancement.result import PATTERN_KINDS
from recipes import corpus
from recipes.evaluation import inject_events, score_detections

RATE = corpus.SAMPLE_RATE_HZ
SETTINGS = PatternSettings()


@pytest.fixture(scope="module")
def injected_corpus(espeak):
    """Twelve held-out clips, each with two events of every kind at known places."""
    rng = np.random.default_rng(2024)
    clips = []
    for i in range(12):
        clean = corpus.speech_clip(rng, corpus.HELD_OUT_VOICES[i % len(corpus.HELD_OUT_VOICES)], 6.0)
        # Half at a studio noise floor, half at a noisy 20 dB SNR.
        floor = corpus.mix_at_snr(clean, corpus.noise(rng, "pink", len(clean)), 20.0 if i % 2 else 45.0)
        clips.append(inject_events(floor, RATE, rng, per_kind=2))
    return clips


def test_each_pattern_kind_is_found_with_f1_of_at_least_0_9(injected_corpus):
    totals = {kind: [0, 0, 0] for kind in PATTERN_KINDS}
    for audio, truth in injected_corpus:
        for kind, score in score_detections(truth, patterns.detect(audio, RATE, SETTINGS)).items():
            totals[kind][0] += score.true_positives
            totals[kind][1] += score.false_positives
            totals[kind][2] += score.false_negatives
    f1 = {kind: 2 * tp / (2 * tp + fp + fn) for kind, (tp, fp, fn) in totals.items()}
    assert all(tp + fn == 24 for tp, _, fn in totals.values()), totals
    assert min(f1.values()) >= 0.9, f1


def test_events_carry_kind_bounds_and_confidence(injected_corpus):
    audio, _ = injected_corpus[0]
    events = patterns.detect(audio, RATE, SETTINGS)
    assert events
    for event in events:
        assert event.kind in PATTERN_KINDS
        assert 0 <= event.start_s <= event.end_s <= len(audio) / RATE
        assert 0.0 <= event.confidence <= 1.0


def test_clean_speech_raises_few_false_alarms(speech):
    events = patterns.detect(speech, RATE, SETTINGS)
    assert len(events) <= 1, events


def test_suppression_repairs_each_kind(speech):
    rng = np.random.default_rng(5)
    for kind in PATTERN_KINDS:
        damaged, truth = inject_events(speech, RATE, rng, per_kind=2, kinds=(kind,))
        repaired = patterns.suppress(damaged, RATE, truth)
        assert repaired.shape == damaged.shape and np.all(np.isfinite(repaired))
        for event in truth:
            region = slice(int(event.start_s * RATE), int(np.ceil(event.end_s * RATE)))
            if kind == "dropout":
                # Lost samples cannot come back; the gap must be bridged at the level around it.
                length = region.stop - region.start
                around = np.concatenate([speech[region.start - length : region.start], speech[region.stop : region.stop + length]])
                level = np.sqrt(np.mean(repaired[region] ** 2)) / np.sqrt(np.mean(around**2))
                assert 0.2 < level < 1.5, f"dropout at {event.start_s:.2f} s bridged at {level:.2f} of its surroundings"
                continue
            if kind == "clipping":
                # The driven original is unknown here; a repaired segment has its flat tops rounded off.
                rail = np.max(np.abs(damaged[region]))
                flat_before = np.sum(np.abs(np.abs(damaged[region]) - rail) <= rail * 0.002)
                flat_after = np.sum(np.abs(np.abs(repaired[region]) - rail) <= rail * 0.002)
                assert flat_after < 0.5 * flat_before and np.max(np.abs(repaired[region])) > rail
                continue
            damage = np.sqrt(np.mean((damaged[region] - speech[region]) ** 2))
            residual = np.sqrt(np.mean((repaired[region] - speech[region]) ** 2))
            assert residual < damage, f"{kind} at {event.start_s:.2f} s was not repaired"


def test_energy_only_fallback_still_finds_bursts_and_dropouts(injected_corpus):
    audio, truth = injected_corpus[1]
    scores = score_detections(truth, patterns.detect_energy_only(audio, RATE, SETTINGS))
    assert scores["dropout"].recall == 1.0
    assert scores["burst"].recall >= 0.5
    assert scores["click"].true_positives == 0 and scores["click"].false_positives == 0


def test_leading_and_trailing_digital_silence_is_not_a_dropout(speech):
    padded = np.concatenate([np.zeros(RATE // 2), speech, np.zeros(RATE // 2)]).astype(np.float32)
    assert not [e for e in patterns.detect(padded, RATE, SETTINGS) if e.kind == "dropout"]


def test_the_median_view_computed_around_candidates_equals_it_computed_everywhere():
    rng = np.random.default_rng(9)
    x = (rng.standard_normal(3 * 16_000) * 0.05).astype(np.float32)
    for start in (5, 9_000, 9_400, 30_000, len(x) - 4):  # clicks at both edges and two close together
        x[start : start + 2] += 0.7
    reach, guard, floor = int(0.020 * 16_000), int(0.001 * 16_000), 1e-4
    outlier = np.abs(x - ndimage.median_filter(x, size=7, mode="nearest"))
    ratio = outlier / np.maximum(patterns._neighbourhood_max(outlier, reach, guard), floor)
    everywhere = ndimage.maximum_filter1d(ratio, size=5) > patterns.MEDIAN_AGREEMENT
    for start, end in [(0, 40), (8_990, 9_420), (29_990, 30_010), (len(x) - 30, len(x))]:
        assert np.array_equal(patterns._median_view_agrees(x, start, end, reach, guard, floor), everywhere[start:end])
    assert everywhere[[5, 9_000, 9_400, 30_000]].all()


@pytest.mark.parametrize("seed", range(8))
def test_the_bounded_prediction_ratio_equals_the_full_running_maximum(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 20_000))
    predicted = np.abs(rng.standard_normal(n)) * (1 + 30 * (rng.random(n) < 0.002))
    predicted[:5] *= 50  # spikes at both edges, where one side of the neighbourhood is missing
    predicted[-5:] *= 50
    reach, guard, threshold, floor = 320, 16, 3.0, 1e-4
    full = predicted / (threshold * np.maximum(patterns._neighbourhood_max(predicted, reach, guard), floor))
    expected = np.where(full > 1.0, full, 0.0)
    where, ratio = patterns._prediction_ratio(predicted, reach, guard, threshold, floor)
    assert np.array_equal(where, np.flatnonzero(expected))
    assert np.allclose(ratio, expected[where], rtol=1e-12, atol=0)
    assert expected.any(), "the case has clicks to find"


def direct_lpc_residual(x: np.ndarray, rate: int) -> np.ndarray:
    """The residual as its docstring defines it, block by block in float64: correlation by dot
    products, coefficients by a Toeplitz solve, prediction by convolution."""
    frame, order = int(patterns.LPC_FRAME_S * rate), patterns.LPC_ORDER
    blocks = -(-len(x) // frame)
    padded = np.zeros((blocks + 1) * frame)
    padded[frame // 2 : frame // 2 + len(x)] = x
    source = np.concatenate([np.zeros(order), x, np.zeros(blocks * frame - len(x))])
    window = np.hanning(2 * frame)
    residual = np.empty(blocks * frame)
    for block in range(blocks):
        windowed = padded[block * frame : (block + 2) * frame] * window
        corr = np.array([windowed[: len(windowed) - lag] @ windowed[lag:] for lag in range(order + 1)])
        coeffs = np.zeros(order)
        if corr[0] > 1e-12:
            corr[0] *= 1.0 + 1e-6
            coeffs = scipy.linalg.solve_toeplitz(corr[:order], corr[1:])
        history = source[block * frame : block * frame + order + frame]
        predicted = np.convolve(history, np.concatenate([[0.0], coeffs]))[order : order + frame]
        residual[block * frame : (block + 1) * frame] = history[order:] - predicted
    return residual[: len(x)]


@pytest.mark.parametrize("seed", range(3))
def test_the_lpc_residual_equals_its_direct_float64_computation(seed):
    rng = np.random.default_rng(seed)
    clean = corpus.speech_clip(rng, corpus.HELD_OUT_VOICES[seed], 2.0)
    audio, _ = inject_events(corpus.mix_at_snr(clean, corpus.noise(rng, "pink", len(clean)), 30.0), RATE, rng, per_kind=1)
    audio = audio.astype(np.float32)
    audio[: RATE // 10] = 0.0  # a silent stretch: nothing to predict from, the residual is the signal
    expected = direct_lpc_residual(audio.astype(np.float64), RATE)
    error = np.abs(patterns._lpc_residual(audio, RATE) - expected)
    # The correlation's float32 rounding moves the coefficients of ill-conditioned blocks a little:
    # up to 1.5e-4 of the peak measured, where a wrong lag or block would be of the order of 1.
    assert error.max() <= 5e-4 * np.abs(expected).max()
    assert np.array_equal(patterns._lpc_residual(audio, RATE)[: RATE // 10 - 32], np.zeros(RATE // 10 - 32, dtype=np.float32))


def test_flatness_judged_only_on_loud_frames_gives_the_mask_it_gives_everywhere():
    rng = np.random.default_rng(4)
    clean = corpus.speech_clip(rng, corpus.HELD_OUT_VOICES[1], 6.0)
    audio, _ = inject_events(corpus.mix_at_snr(clean, corpus.noise(rng, "pink", len(clean)), 20.0), RATE, rng, per_kind=3)
    audio = audio.astype(np.float32)
    mask, excess = patterns._burst_frames(audio, RATE, SETTINGS, use_flatness=True)
    everywhere = (excess > SETTINGS.burst_threshold_db) & (patterns._flatness(patterns._frames(audio, RATE)) > SETTINGS.burst_min_flatness)
    assert np.array_equal(mask, everywhere)
    assert mask.any() and (excess > SETTINGS.burst_threshold_db).sum() > mask.sum(), "loud frames both flat and not"


@pytest.mark.parametrize("gap", [0, 1, 16])
def test_runs_of_indices_group_as_runs_of_the_mask_they_mark(gap):
    rng = np.random.default_rng(gap)
    mask = rng.random(5_000) < 0.05
    mask[:3] = mask[-2:] = True  # runs at both ends
    indices = np.flatnonzero(mask)
    groups = [(int(indices[first]), int(indices[last - 1]) + 1) for first, last in patterns._index_runs(indices, gap)]
    assert groups == [tuple(run) for run in patterns._merge(patterns._runs(mask), gap).tolist()]
    assert patterns._index_runs(indices[:0], gap) == []
