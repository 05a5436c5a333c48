"""The pipeline: decode, find and repair interruptions, enhance, set loudness, check, write.

Layered like speechbrain.inference: ``enhance_decoded`` works on a decoded
array, ``process_bytes`` and ``process_file`` wrap it for the HTTP service
and the CLI. Every stage runs inside ``self._stage(...)``, which times it,
records it in the result and hands it to the observer; that one line is all
a new stage needs to be observed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from enhancement import loudness, patterns, quality, spectral
from enhancement.config import WorkerConfig
from enhancement.decode import MODEL_SAMPLE_RATE_HZ, DecodedAudio, decode_bytes, decode_file
from enhancement.encode import encode_bytes, write_atomic
from enhancement.errors import CircuitOpen, EnhancementError, InvalidAudio, ModelError, StageTimeout
from enhancement.model import MODEL_NAME, MetricGanEnhancer
from enhancement.observer import NullObserver, PipelineObserver
from enhancement.resilience import CircuitBreaker, Deadline, retry
from enhancement.result import ClipResult, Outcome, QualityReport, StageRecord

logger = logging.getLogger(__name__)

MODEL_BREAKER = "model"

# Why the model stage can give up on the model; each is an error reason with a fallback.
MODEL_FAILURE_REASONS = ("model_error", "model_transient", "model_unavailable", "model_non_finite", "circuit_open", "timeout")
# Every (stage, from_method, to_method, reason) this pipeline can record: a small, closed set,
# so dashboards and alerts can rely on each series existing from the start.
FALLBACK_PATHS = (
    ("pattern_detection", "spectral_temporal", "energy_only", "detector_error"),
    ("pattern_detection", "energy_only", "skip", "detector_error"),
    ("pattern_suppression", "interpolate_attenuate", "skip", "suppressor_error"),
    *(("enhancement", MODEL_NAME, "wiener", reason) for reason in MODEL_FAILURE_REASONS),
    ("enhancement", "wiener", "passthrough", "dsp_error"),
    ("loudness", loudness.LIMITER_METHOD, loudness.CLAMP_METHOD, "loudness_error"),
    ("quality", "wada_snr+dnsmos", "wada_snr", "dnsmos_error"),
    ("quality", "wada_snr", "skip", "quality_error"),
)


class Enhancer(Protocol):
    name: str

    def enhance(self, samples: np.ndarray) -> np.ndarray: ...


@dataclass
class Processed:
    result: ClipResult
    audio: np.ndarray | None = None
    encoded: bytes | None = None


class Pipeline:
    def __init__(
        self,
        config: WorkerConfig,
        enhancer: Enhancer,
        *,
        observer: PipelineObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if enhancer is None:
            raise ValueError("an enhancer is required; use Pipeline.from_config to load the configured model")
        self.config = config
        self.enhancer = enhancer
        self.observer = observer or NullObserver()
        breaker = config.model.breaker
        self.breaker = CircuitBreaker(
            MODEL_BREAKER,
            failure_threshold=breaker.failure_threshold,
            recovery_timeout_s=breaker.recovery_timeout_seconds,
            half_open_successes=breaker.half_open_successes,
            clock=clock,
            on_transition=lambda name, state: self.observer.breaker_transition(name, state.value),
        )
        self._deadline = Deadline(config.model.timeout_seconds, workers=config.service.workers, name="model")
        self._dnsmos_sampler = quality.RateSampler(config.quality.dnsmos_sample_ratio)
        quality.warm_up()  # the first clip should not pay for one-off set-up

    @classmethod
    def from_config(cls, config: WorkerConfig, *, observer: PipelineObserver | None = None) -> Pipeline:
        """Load the configured model (raising ModelUnavailable if it cannot be) and build the pipeline."""
        enhancer = MetricGanEnhancer(config.model.source, config.model.device)
        enhancer.load()
        return cls(config, enhancer, observer=observer)

    def close(self) -> None:
        self._deadline.close()

    # -- public layers -------------------------------------------------------

    def process_bytes(self, data: bytes, *, clip_id: str | None = None, source: str = "") -> Processed:
        """Bytes in, encoded bytes out (``encoded`` is None unless the outcome produced audio)."""
        return self._run(clip_id, source, lambda: decode_bytes(data, self.config.audio), sink=None)

    def process_file(self, input_path: Path, output_path: Path, *, clip_id: str | None = None) -> ClipResult:
        """File in, file out, written atomically; the input is never modified."""
        sink = lambda audio: write_atomic(output_path, audio, MODEL_SAMPLE_RATE_HZ, self.config.output, protected=input_path)  # noqa: E731
        processed = self._run(clip_id, str(input_path), lambda: decode_file(input_path, self.config.audio), sink=sink)
        if processed.result.outcome in (Outcome.SUCCESS, Outcome.DEGRADED):
            processed.result.output = str(output_path)
        return processed.result

    # -- the stages ----------------------------------------------------------

    def _run(self, clip_id: str | None, source: str, decode: Callable[[], DecodedAudio], sink) -> Processed:
        result = ClipResult(clip_id=clip_id or uuid.uuid4().hex, source=source)
        processed = Processed(result)
        started = time.perf_counter()
        with self.observer.clip(result):
            try:
                with self._stage(result, "decode", "soundfile") as stage:
                    decoded = decode()
                    result.input_sample_rate_hz = decoded.input_sample_rate_hz
                    result.input_channels = decoded.input_channels
                    result.audio_duration_s = decoded.duration_s
                    stage.attributes.update(sample_rate_hz=decoded.input_sample_rate_hz, channels=decoded.input_channels)
                processed.audio = self.enhance_decoded(decoded, result)
                with self._stage(result, "encode", self.config.output.format) as stage:
                    if sink is None:
                        processed.encoded = encode_bytes(processed.audio, MODEL_SAMPLE_RATE_HZ, self.config.output)
                    else:
                        sink(processed.audio)
                result.outcome = Outcome.DEGRADED if result.fallbacks else Outcome.SUCCESS
            except InvalidAudio as exc:
                self._fail(result, processed, Outcome.REJECTED, exc)
            except EnhancementError as exc:
                self._fail(result, processed, Outcome.FAILED, exc)
            except Exception as exc:  # a bug must fail one clip, never the worker
                logger.exception("clip %s failed unexpectedly", result.clip_id)
                self._fail(result, processed, Outcome.FAILED, EnhancementError(f"internal error: {exc}"))
            finally:
                result.processing_s = time.perf_counter() - started
        self.observer.clip_finished(result)
        return processed

    @staticmethod
    def _fail(result: ClipResult, processed: Processed, outcome: Outcome, exc: EnhancementError) -> None:
        result.outcome = outcome
        result.error = str(exc)
        result.error_reason = exc.reason
        processed.audio = None
        processed.encoded = None

    def enhance_decoded(self, decoded: DecodedAudio, result: ClipResult) -> np.ndarray:
        audio = decoded.samples

        with self._stage(result, "pattern_detection", "spectral_temporal") as stage:
            result.events = self._detect(audio, stage)
            stage.attributes["events"] = len(result.events)

        with self._stage(result, "pattern_suppression", "interpolate_attenuate") as stage:
            if result.events:
                audio = self._suppress(audio, result, stage)
            else:
                stage.use("none_needed")

        with self._stage(result, "enhancement", self.enhancer.name) as stage:
            enhanced = self._enhance(audio, stage)

        with self._stage(result, "loudness", loudness.LIMITER_METHOD) as stage:
            enhanced = self._loudness(audio, enhanced, result, stage)

        with self._stage(result, "quality", "wada_snr") as stage:
            self._quality(decoded.samples, enhanced, result, stage)

        return enhanced

    @contextmanager
    def _stage(self, result: ClipResult, name: str, method: str) -> Iterator[StageRecord]:
        record = StageRecord(name=name, method=method)
        result.stages.append(record)
        started = time.perf_counter()
        try:
            with self.observer.stage(record):
                try:
                    yield record
                finally:
                    record.duration_s = time.perf_counter() - started
        except EnhancementError as exc:
            record.status, record.error_reason = "error", exc.reason
            raise
        except Exception:
            record.status, record.error_reason = "error", "internal"
            raise

    # -- stage bodies with their fallbacks -------------------------------------

    def _detect(self, audio: np.ndarray, stage: StageRecord) -> list:
        settings = self.config.patterns
        if not settings.enabled:
            stage.use("disabled")
            return []
        try:
            return patterns.detect(audio, MODEL_SAMPLE_RATE_HZ, settings)
        except Exception as exc:
            logger.warning("pattern detection failed, using energy only: %s", exc)
            stage.fall_back("energy_only", "detector_error")
        try:
            return patterns.detect_energy_only(audio, MODEL_SAMPLE_RATE_HZ, settings)
        except Exception as exc:
            logger.warning("energy-only detection failed, skipping: %s", exc)
            stage.fall_back("skip", "detector_error")
            return []

    def _suppress(self, audio: np.ndarray, result: ClipResult, stage: StageRecord) -> np.ndarray:
        try:
            repaired = patterns.suppress(audio, MODEL_SAMPLE_RATE_HZ, result.events)
            if not np.all(np.isfinite(repaired)):
                raise ValueError("repair produced non-finite samples")
            return repaired
        except Exception as exc:
            logger.warning("pattern suppression failed, skipping: %s", exc)
            stage.fall_back("skip", "suppressor_error")
            return audio

    def _call_model(self, audio: np.ndarray) -> np.ndarray:
        model = self.config.model
        return retry(
            lambda: self._deadline.run(lambda: self.enhancer.enhance(audio)),
            attempts=model.retry_attempts,
            base_delay_s=model.retry_base_delay_seconds,
            max_delay_s=model.retry_max_delay_seconds,
        )

    def _enhance(self, audio: np.ndarray, stage: StageRecord) -> np.ndarray:
        try:
            if not self.breaker.allow():
                raise CircuitOpen("model circuit breaker is open")
            try:
                enhanced = self._call_model(audio)
            except (ModelError, StageTimeout):
                self.breaker.record_failure()
                raise
            self.breaker.record_success()
            return enhanced
        except (ModelError, StageTimeout) as exc:
            logger.warning("model failed (%s), falling back to Wiener filtering: %s", exc.reason, exc)
            stage.fall_back("wiener", exc.reason)
            stage.attributes["fallback_error"] = str(exc)
        try:
            return spectral.wiener(audio, MODEL_SAMPLE_RATE_HZ)
        except Exception as exc:
            logger.warning("Wiener fallback failed, passing audio through: %s", exc)
            stage.fall_back("passthrough", "dsp_error")
            return audio

    def _loudness(self, reference: np.ndarray, enhanced: np.ndarray, result: ClipResult, stage: StageRecord) -> np.ndarray:
        settings = self.config.loudness
        try:
            out, result.loudness = loudness.normalise(
                enhanced, MODEL_SAMPLE_RATE_HZ, loudness.integrated_lufs(reference, MODEL_SAMPLE_RATE_HZ), settings
            )
            return out
        except Exception as exc:
            logger.warning("loudness normalisation failed, using RMS gain: %s", exc)
            stage.fall_back(loudness.CLAMP_METHOD, "loudness_error")
        input_rms = float(np.sqrt(np.mean(reference.astype(np.float64) ** 2)))
        out, _ = loudness.rms_gain_with_clamp(enhanced, input_rms, settings)
        return out

    def _quality(self, noisy: np.ndarray, enhanced: np.ndarray, result: ClipResult, stage: StageRecord) -> None:
        try:
            result.quality = QualityReport(input_snr_db=quality.wada_snr_db(noisy), output_snr_db=quality.wada_snr_db(enhanced))
        except Exception as exc:
            logger.warning("quality check failed, skipping: %s", exc)
            stage.fall_back("skip", "quality_error")
            return
        if self._dnsmos_sampler.take():
            stage.use("wada_snr+dnsmos")
            try:
                result.quality.dnsmos = quality.dnsmos(enhanced, MODEL_SAMPLE_RATE_HZ)
            except Exception as exc:
                logger.warning("DNSMOS failed, keeping WADA-SNR only: %s", exc)
                stage.fall_back("wada_snr", "dnsmos_error")
