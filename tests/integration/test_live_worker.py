"""The real worker process, driven over HTTP by the real load generator."""

import re

import httpx
import pytest

from helpers.otlp import OtlpReceiver
from helpers.worker import LiveWorker
from ops import loadgen

pytestmark = pytest.mark.live

# The metric catalogue, as exposed (counters with _total, histograms by their _count).
CATALOGUE = [
    "enhancement_requests_total",
    "enhancement_request_duration_seconds_count",
    "enhancement_response_time_ratio_count",
    "enhancement_queue_wait_seconds_count",
    "enhancement_stage_duration_seconds_count",
    "enhancement_stage_errors_total",
    "enhancement_fallbacks_total",
    "enhancement_circuit_breaker_state",
    "enhancement_audio_duration_seconds_count",
    "enhancement_real_time_factor_count",
    "enhancement_patterns_detected_total",
    "enhancement_pattern_confidence_count",
    "enhancement_snr_improvement_db_count",
    "enhancement_output_snr_db_count",
    "enhancement_dnsmos_score_count",
    "enhancement_loudness_gain_db_count",
    "enhancement_output_loudness_lufs_count",
    "enhancement_true_peak_dbtp_count",
    "enhancement_limiter_gain_reduction_db_count",
    "enhancement_queue_depth",
    "enhancement_queue_capacity",
    "enhancement_inflight_requests",
    "enhancement_model_loaded",
    "enhancement_model_load_duration_seconds",
    "enhancement_build_info",
    "enhancement_output_quality_total",
    "enhancement_http_responses_total",
    "enhancement_system_cpu_seconds_total",
    "enhancement_system_memory_available_bytes",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
]


@pytest.fixture(scope="module")
def receiver():
    r = OtlpReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def worker(receiver, tmp_path_factory):
    live = LiveWorker(
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "ENHANCEMENT_QUALITY__DNSMOS_SAMPLE_RATIO": "0.5",
        },
        log_path=tmp_path_factory.mktemp("worker") / "worker.log",
    ).start()
    yield live
    live.terminate()


def test_after_a_loadgen_run_every_catalogue_metric_has_samples(worker, receiver):
    clips = loadgen.load_corpus(None, count=4, seconds=3.0)
    clips.append(b"definitely not audio")  # a rejection, so error counters have samples too
    report = loadgen.run(worker.url, rate=3, duration_s=4, clips=clips, progress=False)
    assert report.statuses[200] >= 8 and report.statuses[422] >= 1, report.summary()
    assert "p95" in report.summary()

    text = httpx.get(worker.url + "/metrics").text
    present = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    missing = [name for name in CATALOGUE if name not in present]
    assert not missing, missing

    om = httpx.get(worker.url + "/metrics", headers={"accept": "application/openmetrics-text"}).text
    exemplars = set(re.findall(r'# \{trace_id="([0-9a-f]{32})"\}', om))
    assert exemplars
    spans = receiver.wait_for(lambda got: exemplars <= {s.trace_id.hex() for _, s in got}, timeout_s=15)
    assert any(s.name == "enhance" for _, s in spans)
