import threading

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_files import hostile_inputs, wav_bytes
from enhancement import loudness, patterns
from enhancement.config import load_config
from enhancement.evaluation import inject_events, si_snr_db
from enhancement.model import MetricGanEnhancer
from enhancement.observer import NullObserver
from enhancement.pipeline import Pipeline
from enhancement.resilience import BreakerState
from enhancement.result import STAGES, Outcome

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
    assert loudness.true_peak_dbtp(written, 4) <= -1.0 + 0.05  # 16-bit rounding only
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
    config = load_config(environ={"ENHANCEMENT_MODEL__TIMEOUT_SECONDS": "0.2"})
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
    config = load_config(environ={"ENHANCEMENT_AUDIO__MAX_DURATION_SECONDS": "3"})
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


def test_every_fallback_recorded_belongs_to_the_declared_set(default_config, broken_model, speech, monkeypatch):
    from enhancement.pipeline import FALLBACK_PATHS
    from enhancement import quality, spectral

    monkeypatch.setattr(patterns, "detect", lambda *a: (_ for _ in ()).throw(ValueError("x")))
    monkeypatch.setattr(patterns, "detect_energy_only", lambda *a: (_ for _ in ()).throw(ValueError("x")))
    monkeypatch.setattr(spectral, "wiener", lambda *a: (_ for _ in ()).throw(ValueError("x")))
    monkeypatch.setattr(loudness, "normalise", lambda *a: (_ for _ in ()).throw(ValueError("x")))
    monkeypatch.setattr(quality, "dnsmos", lambda *a: (_ for _ in ()).throw(ValueError("x")))
    config = load_config(environ={"ENHANCEMENT_QUALITY__DNSMOS_SAMPLE_RATIO": "1"})
    pipe = Pipeline(config, broken_model)
    try:
        recorded = pipe.process_bytes(wav_bytes(speech)).result.fallbacks
    finally:
        pipe.close()
    paths = {(f.stage, f.from_method, f.to_method, f.reason) for f in recorded}
    assert len(paths) == 6 and paths <= set(FALLBACK_PATHS), paths - set(FALLBACK_PATHS)
