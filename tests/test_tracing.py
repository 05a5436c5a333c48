import threading
import time

import pytest
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

from enhancement.pipeline import Pipeline
from enhancement.result import STAGES
from exporter.metrics import create_metrics
from exporter.telemetry import TelemetryObserver
from exporter.tracing import create_tracer_provider
from helpers.audio_files import wav_bytes
from helpers.otlp import OtlpReceiver
from helpers.telemetry_fixtures import fresh_telemetry


def test_one_trace_per_clip_with_a_child_span_per_stage(default_config, loaded_enhancer, speech):
    t = fresh_telemetry()
    pipe = Pipeline(default_config, loaded_enhancer, observer=t.observer)
    try:
        with t.observer.request() as trace_id:
            pipe.process_bytes(wav_bytes(speech, rate=16000))
    finally:
        pipe.close()
    spans = t.spans.get_finished_spans()
    [root] = [s for s in spans if s.name == "enhance"]
    children = [s for s in spans if s.parent is not None]
    assert [s.name for s in sorted(children, key=lambda s: s.start_time)] == list(STAGES)
    assert all(s.parent.span_id == root.context.span_id for s in children)
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    assert format(root.context.trace_id, "032x") == trace_id
    assert root.attributes["enhancement.outcome"] == "success"
    assert root.attributes["enhancement.audio_duration_s"] == pytest.approx(6.0, abs=0.01)
    assert root.attributes["enhancement.input_sample_rate_hz"] == 16000
    by_name = {s.name: s for s in children}
    assert by_name["enhancement"].attributes["enhancement.method"] == "metricgan_plus"
    assert by_name["decode"].attributes["enhancement.sample_rate_hz"] == 16000


def test_a_failing_stage_records_the_exception_and_error_status(default_config, loaded_enhancer, speech, monkeypatch):
    t = fresh_telemetry()
    monkeypatch.setattr("enhancement.pipeline.encode_bytes", lambda *a: (_ for _ in ()).throw(OSError("disk gone")))
    pipe = Pipeline(default_config, loaded_enhancer, observer=t.observer)
    try:
        pipe.process_bytes(wav_bytes(speech))
    finally:
        pipe.close()
    spans = {s.name: s for s in t.spans.get_finished_spans()}
    encode = spans["encode"]
    assert encode.status.status_code is StatusCode.ERROR
    [event] = [e for e in encode.events if e.name == "exception"]
    assert event.attributes["exception.type"] == "OSError" and "disk gone" in event.attributes["exception.message"]
    assert spans["enhance"].status.status_code is StatusCode.ERROR
    assert t.value("enhancement_stage_errors_total", stage="encode", reason="internal") == 1


def test_fallbacks_show_on_the_stage_span(default_config, speech):
    class Raising:
        name = "metricgan_plus"

        def enhance(self, samples):
            from enhancement.errors import ModelError

            raise ModelError("weights corrupt")

    t = fresh_telemetry()
    pipe = Pipeline(default_config, Raising(), observer=t.observer)
    try:
        pipe.process_bytes(wav_bytes(speech))
    finally:
        pipe.close()
    span = {s.name: s for s in t.spans.get_finished_spans()}["enhancement"]
    assert span.attributes["enhancement.method"] == "wiener"
    assert span.attributes["enhancement.fallback_reason"] == "model_error"
    assert [e.attributes["to_method"] for e in span.events if e.name == "fallback"] == ["wiener"]


def test_spans_reach_a_real_otlp_receiver_and_exemplars_match_them(default_config, loaded_enhancer, speech, monkeypatch):
    receiver = OtlpReceiver().start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "enhancement-test")
        registry = CollectorRegistry()
        metrics = create_metrics(registry)
        provider, exported = create_tracer_provider(metrics)
        assert exported
        observer = TelemetryObserver(metrics, provider.get_tracer("t"))
        pipe = Pipeline(default_config, loaded_enhancer, observer=observer)
        try:
            with observer.request() as trace_id:
                pipe.process_bytes(wav_bytes(speech))
        finally:
            pipe.close()
        provider.force_flush()
        spans = receiver.wait_for(lambda got: len(got) >= 1 + len(STAGES))
        provider.shutdown()
    finally:
        receiver.stop()
    assert {service for service, _ in spans} == {"enhancement-test"}
    received = [span for _, span in spans]
    [root] = [s for s in received if s.name == "enhance"]
    assert root.trace_id.hex() == trace_id
    assert sorted(s.name for s in received if s.parent_span_id == root.span_id) == sorted(STAGES)
    attributes = {a.key: a.value for a in root.attributes}
    assert attributes["enhancement.outcome"].string_value == "success"

    exposition = openmetrics(registry).decode()
    exemplar_ids = set(__import__("re").findall(r'# \{trace_id="([0-9a-f]{32})"\}', exposition))
    assert trace_id in exemplar_ids
    assert exemplar_ids <= {s.trace_id.hex() for s in received}


def test_an_unreachable_collector_changes_nothing_for_clips_and_is_counted(default_config, loaded_enhancer, speech, monkeypatch):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{dead_port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    provider, _ = create_tracer_provider(metrics)
    observer = TelemetryObserver(metrics, provider.get_tracer("t"))
    pipe = Pipeline(default_config, loaded_enhancer, observer=observer)
    try:
        results = [pipe.process_bytes(wav_bytes(speech)).result for _ in range(2)]
    finally:
        pipe.close()
    assert [r.outcome.value for r in results] == ["success", "success"]
    provider.force_flush(5000)
    deadline = time.monotonic() + 15
    while registry.get_sample_value("enhancement_telemetry_export_failures_total", {"signal": "traces"}) in (None, 0.0):
        assert time.monotonic() < deadline, "export failures were not counted"
        time.sleep(0.1)
    provider.shutdown()


def test_a_hung_exporter_never_blocks_a_clip(default_config, loaded_enhancer, speech, monkeypatch):
    entered, release = threading.Event(), threading.Event()

    class Hung(SpanExporter):
        def export(self, spans):
            entered.set()
            release.wait(30)
            return SpanExportResult.SUCCESS

    # Export at once, and a queue that overflows after two clips' worth of spans.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "16")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "8")
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    provider, _ = create_tracer_provider(metrics, Hung())
    observer = TelemetryObserver(metrics, provider.get_tracer("t"))
    pipe = Pipeline(default_config, loaded_enhancer, observer=observer)
    clip = wav_bytes(speech[:16000])
    try:
        outcomes = [pipe.process_bytes(clip).result.outcome.value]
        assert entered.wait(10), "the exporter was never called"
        outcomes += [pipe.process_bytes(clip).result.outcome.value for _ in range(5)]
    finally:
        release.set()
        pipe.close()
        provider.shutdown()
    assert outcomes == ["success"] * 6


def test_an_exporter_that_raises_is_counted_not_propagated(default_config, loaded_enhancer, speech):
    class Broken(SpanExporter):
        def export(self, spans):
            raise ConnectionError("collector exploded")

    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    provider, _ = create_tracer_provider(metrics, Broken())
    observer = TelemetryObserver(metrics, provider.get_tracer("t"))
    pipe = Pipeline(default_config, loaded_enhancer, observer=observer)
    try:
        assert pipe.process_bytes(wav_bytes(speech)).result.outcome.value == "success"
    finally:
        pipe.close()
    provider.force_flush()
    assert registry.get_sample_value("enhancement_telemetry_export_failures_total", {"signal": "traces"}) >= 1
    provider.shutdown()


def test_logs_written_during_a_clip_carry_its_trace_id(default_config, speech):
    import io
    import json
    import logging

    from enhancement.errors import ModelError
    from exporter.logs import JsonFormatter, TraceContextFilter

    class Raising:
        name = "metricgan_plus"

        def enhance(self, samples):
            raise ModelError("weights corrupt")

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("enhancement.fallbacks")
    logger.addHandler(handler)
    t = fresh_telemetry()
    pipe = Pipeline(default_config, Raising(), observer=t.observer)
    try:
        with t.observer.request() as trace_id:
            pipe.process_bytes(wav_bytes(speech))
    finally:
        pipe.close()
        logger.removeHandler(handler)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    warning = next(e for e in entries if "falling back" in e["message"])
    assert warning["trace_id"] == trace_id and warning["level"] == "WARNING"
    assert len(warning["span_id"]) == 16
