"""Every Prometheus metric the worker exposes, built in one place.

Names end in their base unit, counters in ``_total``. Labels take values from
small fixed sets only (stages, outcomes, reasons, pattern kinds, DNSMOS
dimensions); clip ids, paths and messages go to spans and logs instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics

NAMESPACE = "enhancement"

# The *_created series would double what every scrape carries, and no rule or dashboard
# reads them. prometheus_client only offers this switch process-wide.
disable_created_metrics()

# From a millisecond (decode of a short clip) to past a minute (a long clip on a busy CPU).
DURATION_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
# Clip lengths: the 0.5 s minimum up to the 600 s cap.
AUDIO_BUCKETS_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# Answer time over clip length: 1.0, an answer within the clip's own length, is the latency SLO threshold.
RESPONSE_TIME_RATIO_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# Real-time factor: 0.01 is 100x faster than real time, 1 is real time.
RTF_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
# SNR improvement can be negative when a clip was already clean.
SNR_GAIN_BUCKETS_DB = (-10.0, -5.0, -2.0, 0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0)
SNR_BUCKETS_DB = (-5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 60.0, 100.0)
MOS_BUCKETS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.25, 3.5, 3.75, 4.0, 4.5, 5.0)
LOUDNESS_GAIN_BUCKETS_DB = (-20.0, -10.0, -5.0, 0.0, 2.0, 4.0, 6.0, 10.0, 20.0, 30.0, 40.0)
LUFS_BUCKETS = (-70.0, -50.0, -40.0, -35.0, -30.0, -26.0, -23.0, -20.0, -16.0, -14.0, -10.0, -5.0, 0.0)
TRUE_PEAK_BUCKETS_DBTP = (-30.0, -20.0, -12.0, -6.0, -3.0, -2.0, -1.5, -1.0, -0.5, 0.0, 3.0)
GAIN_REDUCTION_BUCKETS_DB = (0.0, 0.5, 1.0, 2.0, 3.0, 6.0, 10.0, 20.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class Metrics:
    requests: Counter
    request_duration: Histogram
    response_time_ratio: Histogram
    queue_wait: Histogram
    stage_duration: Histogram
    stage_errors: Counter
    fallbacks: Counter
    breaker_state: Gauge
    breaker_transitions: Counter
    audio_duration: Histogram
    real_time_factor: Histogram
    patterns_detected: Counter
    pattern_confidence: Histogram
    snr_improvement: Histogram
    output_snr: Histogram
    dnsmos: Histogram
    output_quality: Counter
    loudness_gain: Histogram
    output_loudness: Histogram
    true_peak: Histogram
    limiter_gain_reduction: Histogram
    queue_depth: Gauge
    queue_capacity: Gauge
    inflight: Gauge
    model_loaded: Gauge
    model_load_duration: Gauge
    http_responses: Counter
    job_store_up: Gauge
    job_store_errors: Counter
    job_redeliveries: Counter
    jobs_abandoned: Counter
    job_duplicates: Counter
    telemetry_export_failures: Counter
    build_info: Info


def create_metrics(registry: CollectorRegistry) -> Metrics:
    def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, labels, namespace=NAMESPACE, registry=registry)

    def histogram(name: str, doc: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()) -> Histogram:
        return Histogram(name, doc, labels, namespace=NAMESPACE, buckets=buckets, registry=registry)

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, labels, namespace=NAMESPACE, registry=registry)

    return Metrics(
        requests=counter("requests", "Clips finished, by outcome (success, degraded, rejected, failed).", ("outcome",)),
        request_duration=histogram(
            "request_duration_seconds", "Time to process one clip from decode to encode, in seconds.", DURATION_BUCKETS_SECONDS
        ),
        response_time_ratio=histogram(
            "response_time_ratio",
            "Time from admission to answer, queue wait included, over the clip's length (at least 1 s), a ratio.",
            RESPONSE_TIME_RATIO_BUCKETS,
        ),
        queue_wait=histogram(
            "queue_wait_seconds", "Time a clip waited in the queue before processing began, in seconds.", DURATION_BUCKETS_SECONDS
        ),
        stage_duration=histogram(
            "stage_duration_seconds", "Time spent in one pipeline stage for one clip, in seconds.", DURATION_BUCKETS_SECONDS, ("stage",)
        ),
        stage_errors=counter("stage_errors", "Stage failures, by stage and error reason.", ("stage", "reason")),
        fallbacks=counter(
            "fallbacks",
            "Fallbacks taken, by stage, failed method, replacement method and reason.",
            ("stage", "from_method", "to_method", "reason"),
        ),
        breaker_state=gauge("circuit_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.", ("breaker",)),
        breaker_transitions=counter(
            "circuit_breaker_transitions", "Circuit breaker state changes, by the state entered.", ("breaker", "to_state")
        ),
        audio_duration=histogram("audio_duration_seconds", "Length of each decoded clip, in seconds of audio.", AUDIO_BUCKETS_SECONDS),
        real_time_factor=histogram(
            "real_time_factor", "Processing time divided by audio duration per clip, a dimensionless ratio.", RTF_BUCKETS
        ),
        patterns_detected=counter("patterns_detected", "Interruption events detected, by pattern kind.", ("pattern",)),
        pattern_confidence=histogram(
            "pattern_confidence", "Detector confidence of each event, a ratio from 0 to 1.", CONFIDENCE_BUCKETS, ("pattern",)
        ),
        snr_improvement=histogram(
            "snr_improvement_db", "WADA-SNR of the output minus that of the input, in decibels.", SNR_GAIN_BUCKETS_DB
        ),
        output_snr=histogram("output_snr_db", "WADA-SNR estimate of each output, in decibels.", SNR_BUCKETS_DB),
        dnsmos=histogram(
            "dnsmos_score", "DNSMOS mean opinion score of sampled outputs, from 1 to 5, by dimension.", MOS_BUCKETS, ("dimension",)
        ),
        output_quality=counter(
            "output_quality",
            "Clips with output, by verdict: poor when SNR fell by more than the margin or loudness missed its target.",
            ("verdict",),
        ),
        loudness_gain=histogram(
            "loudness_gain_db", "Loudness added to the model output by the loudness stage, in decibels.", LOUDNESS_GAIN_BUCKETS_DB
        ),
        output_loudness=histogram("output_loudness_lufs", "Integrated loudness of each output, in LUFS.", LUFS_BUCKETS),
        true_peak=histogram("true_peak_dbtp", "True peak of each output (4x oversampled), in dBTP.", TRUE_PEAK_BUCKETS_DBTP),
        limiter_gain_reduction=histogram(
            "limiter_gain_reduction_db", "Deepest gain reduction the limiter applied per clip, in decibels.", GAIN_REDUCTION_BUCKETS_DB
        ),
        queue_depth=gauge("queue_depth", "Clips waiting in the work queue, a count."),
        queue_capacity=gauge("queue_capacity", "Clips the work queue can hold, a count."),
        inflight=gauge("inflight_requests", "Clips being processed right now, a count."),
        model_loaded=gauge("model_loaded", "Whether the model is loaded: 1 yes, 0 no.", ("model",)),
        model_load_duration=gauge("model_load_duration_seconds", "Time the last model load took, in seconds."),
        http_responses=counter("http_responses", "HTTP responses, by route template and status code.", ("route", "code")),
        # Labelled, so a worker on the in-memory store exports no series at all rather than a 0 that reads as an outage.
        job_store_up=gauge(
            "job_store_up", "Whether this replica reached the shared job store at its last attempt: 1 yes, 0 no.", ("backend",)
        ),
        job_store_errors=counter("job_store_errors", "Shared job store calls that failed, by operation.", ("operation",)),
        job_redeliveries=counter("job_redeliveries", "Shared jobs this replica took over after the replica holding them stopped."),
        jobs_abandoned=counter("jobs_abandoned", "Shared jobs ended as failed after too many deliveries, a count."),
        job_duplicates=counter("job_duplicates", "Answers discarded because another replica had already stored the job's answer."),
        telemetry_export_failures=counter("telemetry_export_failures", "Telemetry exports that failed, by signal.", ("signal",)),
        build_info=Info(
            "build", "Version, model, checkpoint and device of this worker; the value is always 1.", namespace=NAMESPACE, registry=registry
        ),
    )
