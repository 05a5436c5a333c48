import io
import threading

import numpy as np
import pytest
import soundfile as sf
import torch

from enhancement import loudness, patterns, truepeak
from enhancement.fallbacks import FALLBACK_PATHS
from enhancement.model import MetricGanEnhancer
from enhancement.observer import NullObserver
from enhancement.pipeline import Pipeline
from enhancement.resilience import BreakerState
from enhancement.result import STAGES, Outcome
from helpers.audio_files import hostile_inputs, wav_bytes
from recipes.evaluation import inject_events, si_snr_db
from worker.settings import load_settings

RATE = 16_000


@pytest.fixture
def broken_model(default_config):
    """The real SpeechBrain model with one layer swapped for a wrong shape: torch raises in forward."""
    enhancer = MetricGanEnhancer(default_config.model.source, "cpu")
    enhancer.load()
    enhancer._model.mods.enhance_model.linear1.weight = torch.nn.Parameter(torch.zeros(7, 3))
    return enhancer


class HangingModel:
    name = "metricgan_plus"

    def __init__(self) -> None:
        self.release = threading.Event()

    def enhance(self, samples):
        self.release.wait(10)
        return samples


def test_unseen_noisy_speech_end_to_end(pipeline, held_out_pair, tmp_path):
    source = tmp_path / "noisy.wav"
    sf.write(source, held_out_pair.noisy, RATE, subtype="FLOAT")
    result = pipeline.process_file(source, tmp_path / "out" / "noisy.wav")

    assert result.outcome is Outcome.SUCCESS, result.error
    assert [s.name for s in result.stages] == list(STAGES)
    assert all(s.duration_s > 0 for s in result.stages)
    assert result.stage("enhancement").method == "metricgan_plus"
    assert result.quality.snr_improvement_db > 0
    assert result.loudness.output_lufs == pytest.approx(result.loudness.input_lufs + 4.08, abs=0.5)
    assert result.loudness.true_peak_dbtp <= -1.0

    written, rate = sf.read(tmp_path / "out" / "noisy.wav", dtype="float32")
    assert rate == RATE and len(written) == len(held_out_pair.noisy)
    full_4x = 20 * np.log10(truepeak.reference_envelope(written.astype(np.float64), 4).max())
    assert full_4x <= -1.0 + 0.05  # 16-bit rounding only
    assert result.real_time_factor is not None and result.real_time_factor > 0
    assert result.to_dict()["outcome"] == "success"


def test_the_model_improves_si_snr_on_held_out_speech(loaded_enhancer, held_out_pair):
    before = si_snr_db(held_out_pair.noisy, held_out_pair.clean)
    after = si_snr_db(loaded_enhancer.enhance(held_out_pair.noisy), held_out_pair.clean)
    assert after > before + 3.0, (before, after)


def test_events_are_found_and_repaired_in_the_pipeline(pipeline, speech):
    damaged, truth = inject_events(speech, RATE, np.random.default_rng(9), per_kind=1)
    processed = pipeline.process_bytes(wav_bytes(damaged, subtype="FLOAT"))
    assert processed.result.outcome is Outcome.SUCCESS
    found = {e.kind for e in processed.result.events}
    assert found >= {e.kind for e in truth}
    assert processed.result.stage("pattern_suppression").method == "interpolate_attenuate"


def test_a_raising_model_falls_back_to_wiener_and_opens_the_breaker(default_config, broken_model, speech):
    transitions = []

    class BreakerRecorder(NullObserver):
        def breaker_transition(self, breaker, to_state):
            transitions.append((breaker, to_state))

    pipe = Pipeline(default_config, broken_model, observer=BreakerRecorder())
    try:
        processed = [pipe.process_bytes(wav_bytes(speech)) for _ in range(6)]
        outcomes = [p.result for p in processed]
        assert all(r.outcome is Outcome.DEGRADED for r in outcomes)
        assert all(p.encoded for p in processed), "the fallback must still produce audio"
        first = outcomes[0].fallbacks
        assert [(f.stage, f.from_method, f.to_method, f.reason) for f in first] == [
            ("enhancement", "metricgan_plus", "wiener", "model_error")
        ]
        assert outcomes[-1].fallbacks[0].reason == "circuit_open"
        assert pipe.breaker.state is BreakerState.OPEN
        assert transitions == [("model", "open")]
    finally:
        pipe.close()


def test_a_hanging_model_times_out_and_degrades(speech):
    config = load_settings(environ={"ENHANCEMENT_MODEL__TIMEOUT_SECONDS": "0.2"})
    model = HangingModel()
    pipe = Pipeline(config, model)
    try:
        result = pipe.process_bytes(wav_bytes(speech)).result
        assert result.outcome is Outcome.DEGRADED
        assert result.fallbacks[0].reason == "timeout"
    finally:
        model.release.set()
        pipe.close()


def test_wiener_failure_falls_through_to_passthrough(default_config, broken_model, speech, monkeypatch):
    from enhancement import spectral

    monkeypatch.setattr(spectral, "wiener", lambda *a: (_ for _ in ()).throw(MemoryError("no room")))
    pipe = Pipeline(default_config, broken_model)
    try:
        result = pipe.process_bytes(wav_bytes(speech)).result
        assert result.outcome is Outcome.DEGRADED
        assert [f.to_method for f in result.fallbacks] == ["wiener", "passthrough"]
    finally:
        pipe.close()


def test_detector_failure_falls_back_to_energy_only(pipeline, speech, monkeypatch):
    monkeypatch.setattr(patterns, "detect", lambda *a: (_ for _ in ()).throw(ValueError("bad frame")))
    result = pipeline.process_bytes(wav_bytes(speech)).result
    assert result.outcome is Outcome.DEGRADED
    assert result.stage("pattern_detection").method == "energy_only"


def test_loudness_failure_falls_back_to_rms_gain(pipeline, speech, monkeypatch):
    monkeypatch.setattr(loudness, "normalise", lambda *a: (_ for _ in ()).throw(FloatingPointError("overflow")))
    processed = pipeline.process_bytes(wav_bytes(speech))
    assert processed.result.outcome is Outcome.DEGRADED
    assert processed.result.stage("loudness").method == loudness.CLAMP_METHOD
    assert processed.encoded


@pytest.mark.parametrize("name", sorted(hostile_inputs()))
def test_bad_input_is_rejected_and_leaves_no_output(pipeline, tmp_path, name):
    data, reason = hostile_inputs()[name]
    source = tmp_path / "input.wav"
    source.write_bytes(data)
    out_dir = tmp_path / "out"
    result = pipeline.process_file(source, out_dir / "input.wav")
    assert result.outcome is Outcome.REJECTED
    assert result.error_reason == reason and result.error
    assert result.output is None
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_over_long_clip_is_rejected_by_the_configured_cap(loaded_enhancer, speech):
    config = load_settings(environ={"ENHANCEMENT_AUDIO__MAX_DURATION_SECONDS": "3"})
    pipe = Pipeline(config, loaded_enhancer)
    try:
        processed = pipe.process_bytes(wav_bytes(speech))
        assert processed.result.outcome is Outcome.REJECTED and processed.result.error_reason == "too_long"
        assert processed.encoded is None
    finally:
        pipe.close()


def test_an_unexpected_bug_fails_one_clip_not_the_worker(pipeline, speech, monkeypatch):
    from enhancement import encode

    monkeypatch.setattr("enhancement.pipeline.encode_bytes", lambda *a: (_ for _ in ()).throw(KeyError("oops")))
    result = pipeline.process_bytes(wav_bytes(speech)).result
    assert result.outcome is Outcome.FAILED and result.error_reason == "internal"
    assert result.stage("encode").status == "error"
    monkeypatch.setattr("enhancement.pipeline.encode_bytes", encode.encode_bytes)
    assert pipeline.process_bytes(wav_bytes(speech)).result.outcome is Outcome.SUCCESS


def test_pipeline_requires_an_enhancer(default_config):
    with pytest.raises(ValueError, match="enhancer is required"):
        Pipeline(default_config, None)


class StubModel:
    """Stands in for the model where only the fallback machinery is under test: fast, and fails on demand."""

    name = "metricgan_plus"

    def __init__(self, error: Exception | None = None, delay_s: float = 0.0) -> None:
        self.error, self.delay_s = error, delay_s

    def enhance(self, samples):
        if self.delay_s:
            threading.Event().wait(self.delay_s)
        if self.error is not None:
            raise self.error
        return samples


def _raise(*args, **kwargs):
    raise ValueError("injected")


def _fault_for(path, monkeypatch):
    """Make the pipeline take ``path``; returns (model, settings overrides, clips to send)."""
    from enhancement import errors, quality, spectral
    from enhancement.result import PatternEvent

    stage, _, to_method, reason = path
    model, env, clips = StubModel(), {}, 1
    if stage == "pattern_detection":
        monkeypatch.setattr(patterns, "detect", _raise)
        if to_method == "skip":
            monkeypatch.setattr(patterns, "detect_energy_only", _raise)
    elif stage == "pattern_suppression":
        monkeypatch.setattr(patterns, "detect", lambda *a: [PatternEvent("click", 0.5, 0.501, 0.9)])
        monkeypatch.setattr(patterns, "suppress", _raise)
    elif stage == "enhancement" and to_method == "passthrough":
        model = StubModel(errors.ModelError("injected"))
        monkeypatch.setattr(spectral, "wiener", _raise)
    elif stage == "enhancement":
        model = {
            "model_error": StubModel(errors.ModelError("injected")),
            "model_transient": StubModel(errors.TransientModelError("injected")),
            "model_unavailable": StubModel(errors.ModelUnavailable("injected")),
            "model_non_finite": StubModel(errors.ModelError("injected", reason=errors.Reason.MODEL_NON_FINITE)),
            "circuit_open": StubModel(errors.ModelError("injected")),
            "timeout": StubModel(delay_s=1.0),
        }[reason]
        if reason == "circuit_open":  # the first clip opens the breaker, the second finds it open
            env, clips = {"ENHANCEMENT_MODEL__BREAKER__FAILURE_THRESHOLD": "1"}, 2
        if reason == "timeout":
            env = {"ENHANCEMENT_MODEL__TIMEOUT_SECONDS": "0.1", "ENHANCEMENT_MODEL__RETRY_ATTEMPTS": "1"}
    elif stage == "loudness":
        monkeypatch.setattr(loudness, "normalise", _raise)
    elif stage == "quality" and reason == "dnsmos_error":
        monkeypatch.setattr(quality, "dnsmos", _raise)
        env = {"ENHANCEMENT_QUALITY__DNSMOS_SAMPLE_RATIO": "1"}
    elif stage == "quality":
        monkeypatch.setattr(quality, "wada_snr_db", _raise)
    else:
        raise AssertionError(f"no fault declared for {path}")
    return model, env, clips


@pytest.mark.parametrize("path", FALLBACK_PATHS, ids="/".join)
def test_every_declared_fallback_path_is_taken_on_its_fault(path, speech, monkeypatch):
    model, env, clips = _fault_for(path, monkeypatch)
    pipe = Pipeline(load_settings(environ=env), model)
    try:
        results = [pipe.process_bytes(wav_bytes(speech)).result for _ in range(clips)]
    finally:
        pipe.close()
    last = results[-1]
    assert last.outcome is Outcome.DEGRADED, last.error
    recorded = {(f.stage, f.from_method, f.to_method, f.reason) for f in last.fallbacks}
    assert path in recorded and recorded <= set(FALLBACK_PATHS)


def test_the_wiener_fallback_improves_a_noisy_clip(default_config, espeak):
    """Wiener filtering assumes stationary noise: on a fan at 5 dB it gains about 2.3 dB SI-SNR."""
    from enhancement import errors
    from recipes import corpus

    held_out_pair = corpus.held_out_pair(11, voice="en-us+m6", noise_kind="fan", snr_db=5.0, seconds=4.0)
    pipe = Pipeline(default_config, StubModel(errors.ModelError("injected")))
    try:
        processed = pipe.process_bytes(wav_bytes(held_out_pair.noisy, subtype="FLOAT"))
    finally:
        pipe.close()
    result = processed.result
    assert result.stage("enhancement").method == "wiener"
    output, _ = sf.read(io.BytesIO(processed.encoded), dtype="float32")
    before = si_snr_db(held_out_pair.noisy, held_out_pair.clean)
    after = si_snr_db(output, held_out_pair.clean)
    assert after > before + 1.5, (before, after)
    assert result.quality.snr_improvement_db > 0
