"""Every stage's fallback chain, declared once as data and run by one mechanism.

A chain lists the methods a stage may use, best first. Each method names the
reasons it can fail with; when it fails the next method takes over and the
stage records a fallback (stage, from, to, reason). The last method of a
chain has nothing behind it, so its failure is the stage's failure.

``FALLBACK_PATHS`` is derived from the chains, so the set of fallback series
that dashboards and alerts rely on can never drift from what the stages do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from enhancement.errors import EnhancementError, Reason
from enhancement.loudness import CLAMP_METHOD, LIMITER_METHOD
from enhancement.model import MODEL_NAME
from enhancement.result import StageRecord

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Method:
    name: str
    # Why this method can fail; the first is the reason for an exception that names none of them.
    fails_with: tuple[Reason, ...] = ()

    def reason_for(self, exc: Exception) -> Reason:
        if isinstance(exc, EnhancementError) and exc.reason in self.fails_with:
            return exc.reason
        return self.fails_with[0]


@dataclass(frozen=True)
class Chain:
    stage: str
    methods: tuple[Method, ...]

    @property
    def primary(self) -> str:
        return self.methods[0].name

    def starting_at(self, method: str) -> Chain:
        """The same chain entered at ``method`` (the quality stage starts lower when DNSMOS is not sampled)."""
        names = [m.name for m in self.methods]
        return Chain(self.stage, self.methods[names.index(method) :])

    def paths(self) -> list[tuple[str, str, str, str]]:
        return [
            (self.stage, method.name, after.name, reason.value)
            for method, after in zip(self.methods, self.methods[1:], strict=False)
            for reason in method.fails_with
        ]


# Why the enhancement stage can give up on the model; each has the Wiener fallback behind it.
MODEL_FAILURE_REASONS = (
    Reason.MODEL_ERROR,
    Reason.MODEL_TRANSIENT,
    Reason.MODEL_UNAVAILABLE,
    Reason.MODEL_NON_FINITE,
    Reason.CIRCUIT_OPEN,
    Reason.TIMEOUT,
)

DETECTION = Chain(
    "pattern_detection",
    (
        Method("spectral_temporal", (Reason.DETECTOR_ERROR,)),
        Method("energy_only", (Reason.DETECTOR_ERROR,)),
        Method("skip"),
    ),
)
SUPPRESSION = Chain(
    "pattern_suppression",
    (
        Method("interpolate_attenuate", (Reason.SUPPRESSOR_ERROR,)),
        Method("skip"),
    ),
)
ENHANCEMENT = Chain(
    "enhancement",
    (
        Method(MODEL_NAME, MODEL_FAILURE_REASONS),
        Method("wiener", (Reason.DSP_ERROR,)),
        Method("passthrough"),
    ),
)
LOUDNESS = Chain(
    "loudness",
    (
        Method(LIMITER_METHOD, (Reason.LOUDNESS_ERROR,)),
        Method(CLAMP_METHOD),
    ),
)
QUALITY = Chain(
    "quality",
    (
        Method("wada_snr+dnsmos", (Reason.DNSMOS_ERROR,)),
        Method("wada_snr", (Reason.QUALITY_ERROR,)),
        Method("skip"),
    ),
)
CHAINS = (DETECTION, SUPPRESSION, ENHANCEMENT, LOUDNESS, QUALITY)

# Every (stage, from_method, to_method, reason) the pipeline can record: a small, closed set.
FALLBACK_PATHS = tuple(path for chain in CHAINS for path in chain.paths())


def run_chain(chain: Chain, record: StageRecord, methods: Mapping[str, Callable[[], T]]) -> T:
    """Run the chain's methods in order until one succeeds, recording each fallback on ``record``."""
    record.use(chain.primary)
    for method, after in zip(chain.methods, chain.methods[1:], strict=False):
        call = methods[method.name]
        try:
            return call()
        except Exception as exc:
            reason = method.reason_for(exc)
            logger.warning("%s: %s failed (%s), falling back to %s: %s", chain.stage, method.name, reason.value, after.name, exc)
            record.fall_back(after.name, reason.value)
            record.attributes.setdefault("fallback_error", str(exc))
    return methods[chain.methods[-1].name]()
