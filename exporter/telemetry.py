"""The pipeline observer that turns clips and stages into metrics, spans and exemplars.

One trace per clip: a root span ``enhance`` and a child span per stage,
named after the stage. The application opens the root with ``request()``
and gets the trace id back for its response headers; a caller that opens
none gets one from ``clip()``. Duration histograms carry the trace id as an
exemplar, so a slow bucket on a dashboard links straight to a trace.
Nothing here may break a clip: every failure is logged and swallowed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from enhancement.fallbacks import FALLBACK_PATHS
from enhancement.pipeline import MODEL_BREAKER
from enhancement.resilience import BREAKER_STATE_VALUE, BreakerState
from enhancement.result import PATTERN_KINDS, STAGES, ClipResult, Outcome, StageRecord
from exporter.metrics import Metrics

logger = logging.getLogger(__name__)

ROOT_SPAN = "enhance"


def _exemplar(trace_id: str | None) -> dict[str, str] | None:
    return {"trace_id": trace_id} if trace_id else None


def _trace_id(span: trace.Span) -> str | None:
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def initialise_label_sets(metrics: Metrics) -> None:
    """Create every known series at zero, so rates and ratios exist before the first event."""
    for outcome in Outcome:
        metrics.requests.labels(outcome=outcome.value)
    for stage in STAGES:
        metrics.stage_duration.labels(stage=stage)
    for path in FALLBACK_PATHS:
        metrics.fallbacks.labels(*path)
    for kind in PATTERN_KINDS:
        metrics.patterns_detected.labels(pattern=kind)
    for state in BreakerState:
        metrics.breaker_transitions.labels(breaker=MODEL_BREAKER, to_state=state.value)
    for verdict in ("good", "poor"):
        metrics.output_quality.labels(verdict=verdict)
    metrics.telemetry_export_failures.labels(signal="traces")


class TelemetryObserver:
    def __init__(self, metrics: Metrics, tracer: trace.Tracer) -> None:
        self.metrics = metrics
        self.tracer = tracer
        initialise_label_sets(metrics)

    @contextmanager
    def request(self) -> Iterator[str | None]:
        """The root span of one request; yields its trace id (None when spans are not recorded)."""
        with self.tracer.start_as_current_span(ROOT_SPAN, record_exception=False, set_status_on_exception=False) as span:
            yield _trace_id(span)

    @contextmanager
    def clip(self, result: ClipResult) -> Iterator[None]:
        if trace.get_current_span().get_span_context().is_valid:
            yield from self._clip(result)
        else:
            with self.request():
                yield from self._clip(result)

    def _clip(self, result: ClipResult) -> Iterator[None]:
        span = trace.get_current_span()
        span.set_attribute("enhancement.clip_id", result.clip_id)
        self.metrics.inflight.inc()
        try:
            yield
        finally:
            self.metrics.inflight.dec()
            self._finish_root(span, result)
            # The outcome is final here, and the root span still current: its trace id is the exemplar.
            try:
                self._record_clip(result, _trace_id(span))
            except Exception:
                logger.exception("clip telemetry failed for %s", result.clip_id)

    @staticmethod
    def _finish_root(span: trace.Span, result: ClipResult) -> None:
        span.set_attribute("enhancement.outcome", result.outcome.value)
        span.set_attribute("enhancement.audio_duration_s", result.audio_duration_s)
        if result.input_sample_rate_hz:
            span.set_attribute("enhancement.input_sample_rate_hz", result.input_sample_rate_hz)
        if result.outcome is Outcome.FAILED:
            span.set_status(Status(StatusCode.ERROR, result.error or "failed"))
        elif result.outcome is Outcome.REJECTED:
            span.set_attribute("enhancement.rejection_reason", result.error_reason or "")

    @contextmanager
    def stage(self, record: StageRecord) -> Iterator[None]:
        with self.tracer.start_as_current_span(record.name, record_exception=False, set_status_on_exception=False) as span:
            try:
                yield
            except BaseException as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                self._count_error(record, getattr(exc, "reason", "internal"))
                raise
            finally:
                self._finish_stage(span, record)

    def _count_error(self, record: StageRecord, reason: str) -> None:
        try:
            self.metrics.stage_errors.labels(stage=record.name, reason=reason).inc()
        except Exception:
            logger.exception("could not count a stage error")

    def _finish_stage(self, span: trace.Span, record: StageRecord) -> None:
        try:
            span.set_attribute("enhancement.stage", record.name)
            span.set_attribute("enhancement.method", record.method)
            for key, value in record.attributes.items():
                if isinstance(value, (str, bool, int, float)):
                    span.set_attribute(f"enhancement.{key}", value)
            for fallback in record.fallbacks:
                span.add_event(
                    "fallback", {"from_method": fallback.from_method, "to_method": fallback.to_method, "reason": fallback.reason}
                )
                span.set_attribute("enhancement.fallback_reason", fallback.reason)
                self.metrics.fallbacks.labels(
                    stage=fallback.stage, from_method=fallback.from_method, to_method=fallback.to_method, reason=fallback.reason
                ).inc()
                self._count_error(record, fallback.reason)
            self.metrics.stage_duration.labels(stage=record.name).observe(record.duration_s, exemplar=_exemplar(_trace_id(span)))
        except Exception:
            logger.exception("stage telemetry failed for %s", record.name)

    def _record_clip(self, result: ClipResult, trace_id: str | None) -> None:
        m = self.metrics
        m.requests.labels(outcome=result.outcome.value).inc()
        m.request_duration.observe(result.processing_s, exemplar=_exemplar(trace_id))
        if result.outcome is Outcome.REJECTED:
            return
        rtf = result.real_time_factor
        if rtf is not None:
            m.audio_duration.observe(result.audio_duration_s)
            m.real_time_factor.observe(rtf)
        for event in result.events:
            m.patterns_detected.labels(pattern=event.kind).inc()
            m.pattern_confidence.labels(pattern=event.kind).observe(event.confidence)
        if result.loudness is not None:
            m.loudness_gain.observe(result.loudness.gain_db)
            m.output_loudness.observe(result.loudness.output_lufs)
            m.true_peak.observe(result.loudness.true_peak_dbtp)
            m.limiter_gain_reduction.observe(result.loudness.limiter_gain_reduction_db)
        if result.quality is not None:
            m.snr_improvement.observe(result.quality.snr_improvement_db)
            m.output_snr.observe(result.quality.output_snr_db)
            for dimension, score in (result.quality.dnsmos or {}).items():
                m.dnsmos.labels(dimension=dimension).observe(score)
        if result.outcome.produced_audio:
            m.output_quality.labels(verdict="poor" if result.poor_output else "good").inc()

    def breaker_transition(self, breaker: str, to_state: BreakerState) -> None:
        try:
            self.metrics.breaker_state.labels(breaker=breaker).set(BREAKER_STATE_VALUE[to_state])
            self.metrics.breaker_transitions.labels(breaker=breaker, to_state=to_state.value).inc()
        except Exception:
            logger.exception("breaker telemetry failed")
