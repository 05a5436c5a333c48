import re
import shutil
import subprocess

import pytest
import torch
from prometheus_client import generate_latest

from enhancement.model import MetricGanEnhancer
from enhancement.pipeline import Pipeline
from enhancement.result import STAGES
from helpers.audio_files import wav_bytes
from helpers.telemetry_fixtures import fresh_telemetry


@pytest.fixture
def telemetry():
    return fresh_telemetry()


def run_clips(config, enhancer, telemetry, bodies):
    pipe = Pipeline(config, enhancer, observer=telemetry.observer)
    try:
        return [pipe.process_bytes(body) for body in bodies]
    finally:
        pipe.close()


def test_a_real_success_moves_counters_and_duration_histograms(default_config, loaded_enhancer, telemetry, speech):
    [processed] = run_clips(default_config, loaded_enhancer, telemetry, [wav_bytes(speech)])
    assert processed.result.outcome.value == "success"
    t = telemetry
    assert t.value("enhancement_requests_total", outcome="success") == 1
    assert t.value("enhancement_request_duration_seconds_count") == 1
    assert t.value("enhancement_request_duration_seconds_sum") == pytest.approx(processed.result.processing_s)
    for stage in STAGES:
        assert t.value("enhancement_stage_duration_seconds_count", stage=stage) == 1, stage
    assert t.value("enhancement_audio_duration_seconds_sum") == pytest.approx(6.0, abs=0.01)
    assert t.value("enhancement_real_time_factor_count") == 1
    assert t.value("enhancement_snr_improvement_db_count") == 1
    assert t.value("enhancement_output_loudness_lufs_count") == 1
    assert t.value("enhancement_true_peak_dbtp_bucket", le="-1.0") == 1
    assert t.value("enhancement_output_quality_total", verdict="good") == 1
    assert t.value("enhancement_inflight_requests") == 0


def test_a_really_raising_model_moves_error_fallback_and_breaker_metrics(default_config, telemetry, speech):
    enhancer = MetricGanEnhancer(default_config.model.source, "cpu")
    enhancer.load()
    enhancer._model.mods.enhance_model.linear2.weight = torch.nn.Parameter(torch.zeros(2, 2))
    run_clips(default_config, enhancer, telemetry, [wav_bytes(speech)] * 6)
    t = telemetry
    assert t.value("enhancement_requests_total", outcome="degraded") == 6
    assert t.value("enhancement_stage_errors_total", stage="enhancement", reason="model_error") == 5
    assert t.value("enhancement_stage_errors_total", stage="enhancement", reason="circuit_open") == 1
    assert (
        t.value("enhancement_fallbacks_total", stage="enhancement", from_method="metricgan_plus", to_method="wiener", reason="model_error")
        == 5
    )
    assert t.value("enhancement_circuit_breaker_state", breaker="model") == 2
    assert t.value("enhancement_circuit_breaker_transitions_total", breaker="model", to_state="open") == 1
    # A fallback is not poor by itself: the verdict follows what the output measures (clean speech
    # through the Wiener filter keeps its SNR and its loudness target).
    assert t.value("enhancement_output_quality_total", verdict="good") == 6


def test_rejections_are_counted_with_their_reason(default_config, loaded_enhancer, telemetry):
    run_clips(default_config, loaded_enhancer, telemetry, [b"", b"not audio", wav_bytes(speech_like(0.1))])
    t = telemetry
    assert t.value("enhancement_requests_total", outcome="rejected") == 3
    for reason in ("empty", "undecodable", "too_short"):
        assert t.value("enhancement_stage_errors_total", stage="decode", reason=reason) == 1


def speech_like(seconds):
    import numpy as np

    return 0.1 * np.random.default_rng(0).standard_normal(int(seconds * 16000))


def test_every_help_text_is_one_sentence_and_names_carry_units(telemetry):
    families = list(telemetry.registry.collect())
    assert len(families) >= 25
    for family in families:
        assert family.documentation.endswith("."), family.name
        assert family.documentation.count(". ") == 0, family.name
        if family.type == "counter":
            assert not family.name.endswith("_total"), "prometheus_client appends _total itself"
        unitless = {
            "enhancement_real_time_factor",
            "enhancement_pattern_confidence",
            "enhancement_dnsmos_score",
            "enhancement_build",
            "enhancement_circuit_breaker_state",
            "enhancement_model_loaded",
            "enhancement_queue_depth",
            "enhancement_queue_capacity",
            "enhancement_inflight_requests",
            "enhancement_job_store_up",
            "enhancement_jobs_backlog",
            "enhancement_jobs_claimed",
        }
        if family.type in ("histogram", "gauge") and family.name not in unitless:
            assert re.search(r"_(seconds|bytes|ratio|db|lufs|dbtp)$", family.name), family.name


def test_label_values_come_from_fixed_sets(default_config, loaded_enhancer, telemetry, speech):
    run_clips(default_config, loaded_enhancer, telemetry, [wav_bytes(speech), b"junk"])
    text = generate_latest(telemetry.registry).decode()
    assert not re.search(r"[0-9a-f]{32}", text.split("# EOF")[0]), "no clip or trace ids in labels"
    assert "/tmp" not in text and "junk" not in text


def test_exposition_passes_promtool_check_metrics(default_config, loaded_enhancer, telemetry, speech):
    if shutil.which("promtool") is None:
        pytest.fail("promtool is required: scripts/install-system-deps installs Debian's prometheus")
    run_clips(default_config, loaded_enhancer, telemetry, [wav_bytes(speech), b""])
    checked = subprocess.run(["promtool", "check", "metrics"], input=generate_latest(telemetry.registry), capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def test_host_cpu_is_cumulative_counters_that_no_scrape_resets():
    import os
    import time

    from prometheus_client import CollectorRegistry, generate_latest

    from exporter.resources import SystemCollector

    registry = CollectorRegistry()
    registry.register(SystemCollector())

    def cpu_seconds() -> dict[str, float]:
        return {
            line.split('"')[1]: float(line.rsplit(" ", 1)[1])
            for line in generate_latest(registry).decode().splitlines()
            if line.startswith("enhancement_system_cpu_seconds_total{")
        }

    first = cpu_seconds()
    for _ in range(5):  # other scrapers in between
        generate_latest(registry)
    time.sleep(0.2)
    second = cpu_seconds()
    assert {"user", "system", "idle"} <= set(first) and not {"guest", "guest_nice"} & set(first)
    assert first.keys() == second.keys() and all(second[m] >= first[m] for m in first)
    elapsed_cpu = sum(second.values()) - sum(first.values())
    assert 0 < elapsed_cpu < 60 * (os.cpu_count() or 1), "all modes summed advance with wall time times cores"


def test_an_output_is_poor_when_its_snr_falls_past_the_margin_or_loudness_misses():
    from enhancement.result import ClipResult, LoudnessReport, QualityReport

    def clip(snr_change: float, output_lufs: float = -20.0) -> ClipResult:
        loudness = LoudnessReport("limiter", -24.0, output_lufs, 4.0, -3.0, 0.0, target_lufs=-20.0, tolerance_lu=0.5)
        return ClipResult("c", quality=QualityReport(20.0, 20.0 + snr_change, poor_snr_drop_db=3.0), loudness=loudness)

    assert not clip(-2.9).poor_output, "a clean clip losing under 3 dB is fine"
    assert clip(-3.1).poor_output
    assert clip(+6.0, output_lufs=-21.0).poor_output, "a loudness miss is poor whatever the SNR"
    assert ClipResult("c").poor_output, "nothing measured, nothing vouched for"
