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

from enhancement import fallbacks, loudness, patterns, quality, spectral
from enhancement.config import PipelineConfig
from enhancement.decode import MODEL_SAMPLE_RATE_HZ, DecodedAudio, decode_bytes, decode_file
from enhancement.encode import encode_bytes, write_atomic
from enhancement.errors import CircuitOpen, EnhancementError, InvalidAudio, ModelError, Reason, StageTimeout
from enhancement.model import MetricGanEnhancer
from enhancement.observer import NullObserver, PipelineObserver
from enhancement.resilience import CircuitBreaker, Deadline, retry
from enhancement.result import ClipResult, Outcome, PatternEvent, QualityReport, StageRecord

logger = logging.getLogger(__name__)

MODEL_BREAKER = "model"


class Enhancer(Protocol):
    name: str

    def enhance(self, samples: np.ndarray) -> np.ndarray: ...


@dataclass
class Processed:
    """What ``process_bytes`` gives back: the clip's result and, when it produced audio, the encoded bytes."""

    result: ClipResult
    encoded: bytes | None = None


class Pipeline:
    def __init__(
        self,
        config: PipelineConfig,
        enhancer: Enhancer,
        *,
        observer: PipelineObserver | None = None,
        model_concurrency: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``model_concurrency``: model calls that may run at once (the application's worker threads)."""
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
            on_transition=self.observer.breaker_transition,
        )
        self._deadline = Deadline(config.model.timeout_seconds, workers=model_concurrency, name="model")
        self._dnsmos_sampler = quality.RateSampler(config.quality.dnsmos_sample_ratio)
        quality.warm_up()  # the first clip should not pay for one-off set-up

    @classmethod
    def from_config(cls, config: PipelineConfig, *, observer: PipelineObserver | None = None, model_concurrency: int = 1) -> Pipeline:
        """Load the configured model (raising ModelUnavailable if it cannot be) and build the pipeline."""
        enhancer = MetricGanEnhancer(config.model.source, config.model.device)
        enhancer.load()
        return cls(config, enhancer, observer=observer, model_concurrency=model_concurrency)

    def close(self) -> None:
        self._deadline.close()

    # -- public layers -------------------------------------------------------

    def process_bytes(self, data: bytes, *, clip_id: str | None = None, source: str = "") -> Processed:
        """Bytes in, encoded bytes out (``encoded`` is None unless the outcome produced audio)."""
        encoded: list[bytes] = []

        def sink(audio: np.ndarray) -> None:
            encoded.append(encode_bytes(audio, MODEL_SAMPLE_RATE_HZ, self.config.output))

        result = self._run(clip_id, source, lambda: decode_bytes(data, self.config.audio), sink, self.config.output.format)
        return Processed(result, encoded[0] if encoded and result.outcome.produced_audio else None)

    def process_file(self, input_path: Path, output_path: Path, *, clip_id: str | None = None) -> ClipResult:
        """File in, file out, written atomically; the input is never modified."""

        def sink(audio: np.ndarray) -> None:
            write_atomic(output_path, audio, MODEL_SAMPLE_RATE_HZ, self.config.output, protected=input_path)

        result = self._run(clip_id, str(input_path), lambda: decode_file(input_path, self.config.audio), sink, self.config.output.format)
        if result.outcome.produced_audio:
            result.output = str(output_path)
        return result

    # -- the stages ----------------------------------------------------------

    def _run(
        self, clip_id: str | None, source: str, decode: Callable[[], DecodedAudio], sink: Callable[[np.ndarray], None], format_name: str
    ) -> ClipResult:
        result = ClipResult(clip_id=clip_id or uuid.uuid4().hex, source=source)
        started = time.perf_counter()
        with self.observer.clip(result):
            try:
                with self._stage(result, "decode", "soundfile") as stage:
                    decoded = decode()
                    result.input_sample_rate_hz = decoded.input_sample_rate_hz
                    result.input_channels = decoded.input_channels
                    result.audio_duration_s = decoded.duration_s
                    stage.attributes.update(sample_rate_hz=decoded.input_sample_rate_hz, channels=decoded.input_channels)
                enhanced = self.enhance_decoded(decoded, result)
                with self._stage(result, "encode", format_name):
                    sink(enhanced)
                result.outcome = Outcome.DEGRADED if result.fallbacks else Outcome.SUCCESS
            except InvalidAudio as exc:
                self._fail(result, Outcome.REJECTED, exc)
            except EnhancementError as exc:
                self._fail(result, Outcome.FAILED, exc)
            except Exception as exc:  # a bug must fail one clip, never the worker
                logger.exception("clip %s failed unexpectedly", result.clip_id)
                self._fail(result, Outcome.FAILED, EnhancementError(f"internal error: {exc}"))
            finally:
                result.processing_s = time.perf_counter() - started
        return result

    @staticmethod
    def _fail(result: ClipResult, outcome: Outcome, exc: EnhancementError) -> None:
        result.outcome = outcome
        result.error = str(exc)
        result.error_reason = exc.reason.value

    def enhance_decoded(self, decoded: DecodedAudio, result: ClipResult) -> np.ndarray:
        audio = decoded.samples

        with self._stage(result, "pattern_detection", fallbacks.DETECTION.primary) as stage:
            result.events = self._detect(audio, stage)
            stage.attributes["events"] = len(result.events)

        with self._stage(result, "pattern_suppression", fallbacks.SUPPRESSION.primary) as stage:
            if result.events:
                audio = self._suppress(audio, result.events, stage)
            else:
                stage.use("none_needed")

        with self._stage(result, "enhancement", fallbacks.ENHANCEMENT.primary) as stage:
            enhanced = self._enhance(audio, stage)

        with self._stage(result, "loudness", fallbacks.LOUDNESS.primary) as stage:
            enhanced = self._loudness(audio, enhanced, result, stage)

        with self._stage(result, "quality", fallbacks.QUALITY.primary) as stage:
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
            record.status, record.error_reason = "error", exc.reason.value
            raise
        except Exception:
            record.status, record.error_reason = "error", Reason.INTERNAL.value
            raise

    # -- stage bodies: each hands its chain one callable per method -----------

    def _detect(self, audio: np.ndarray, stage: StageRecord) -> list[PatternEvent]:
        settings = self.config.patterns
        if not settings.enabled:
            stage.use("disabled")
            return []
        return fallbacks.run_chain(
            fallbacks.DETECTION,
            stage,
            {
                "spectral_temporal": lambda: patterns.detect(audio, MODEL_SAMPLE_RATE_HZ, settings),
                "energy_only": lambda: patterns.detect_energy_only(audio, MODEL_SAMPLE_RATE_HZ, settings),
                "skip": list,
            },
        )

    def _suppress(self, audio: np.ndarray, events: list[PatternEvent], stage: StageRecord) -> np.ndarray:
        def repair() -> np.ndarray:
            repaired = patterns.suppress(audio, MODEL_SAMPLE_RATE_HZ, events)
            if not np.all(np.isfinite(repaired)):
                raise ValueError("repair produced non-finite samples")
            return repaired

        return fallbacks.run_chain(fallbacks.SUPPRESSION, stage, {"interpolate_attenuate": repair, "skip": lambda: audio})

    def _call_model(self, audio: np.ndarray) -> np.ndarray:
        """The model behind its breaker, deadline and retries; only model failures count against the breaker."""
        if not self.breaker.allow():
            raise CircuitOpen("model circuit breaker is open")
        model = self.config.model
        try:
            enhanced = retry(
                lambda: self._deadline.run(lambda: self.enhancer.enhance(audio)),
                attempts=model.retry_attempts,
                base_delay_s=model.retry_base_delay_seconds,
                max_delay_s=model.retry_max_delay_seconds,
            )
        except (ModelError, StageTimeout):
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return enhanced

    def _enhance(self, audio: np.ndarray, stage: StageRecord) -> np.ndarray:
        return fallbacks.run_chain(
            fallbacks.ENHANCEMENT,
            stage,
            {
                fallbacks.ENHANCEMENT.primary: lambda: self._call_model(audio),
                "wiener": lambda: spectral.wiener(audio, MODEL_SAMPLE_RATE_HZ),
                "passthrough": lambda: audio,
            },
        )

    def _loudness(self, reference: np.ndarray, enhanced: np.ndarray, result: ClipResult, stage: StageRecord) -> np.ndarray:
        settings = self.config.loudness

        def limiter() -> np.ndarray:
            target = loudness.integrated_lufs(reference, MODEL_SAMPLE_RATE_HZ)
            out, result.loudness = loudness.normalise(enhanced, MODEL_SAMPLE_RATE_HZ, target, settings)
            return out

        def clamp() -> np.ndarray:
            input_rms = float(np.sqrt(np.mean(reference.astype(np.float64) ** 2)))
            return loudness.rms_gain_with_clamp(enhanced, input_rms, settings)[0]

        return fallbacks.run_chain(fallbacks.LOUDNESS, stage, {loudness.LIMITER_METHOD: limiter, loudness.CLAMP_METHOD: clamp})

    def _quality(self, noisy: np.ndarray, enhanced: np.ndarray, result: ClipResult, stage: StageRecord) -> None:
        def wada() -> QualityReport:
            return QualityReport(
                input_snr_db=quality.wada_snr_db(noisy),
                output_snr_db=quality.wada_snr_db(enhanced),
                poor_snr_drop_db=self.config.quality.poor_snr_drop_db,
            )

        def wada_and_dnsmos() -> QualityReport:
            report = wada()
            report.dnsmos = quality.dnsmos(enhanced, MODEL_SAMPLE_RATE_HZ)
            return report

        chain = fallbacks.QUALITY if self._dnsmos_sampler.take() else fallbacks.QUALITY.starting_at("wada_snr")
        result.quality = fallbacks.run_chain(
            chain,
            stage,
            {
                "wada_snr+dnsmos": wada_and_dnsmos,
                "wada_snr": wada,
                "skip": lambda: None,
            },
        )
