"""Offline evaluation helpers: injected events with known positions, and scores.

Used by the tests and the benchmarks; the worker itself never needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from enhancement.result import PATTERN_KINDS, PatternEvent


def si_snr_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant signal-to-noise ratio, in dB."""
    n = min(len(estimate), len(reference))
    estimate = estimate[:n].astype(np.float64) - np.mean(estimate[:n])
    reference = reference[:n].astype(np.float64) - np.mean(reference[:n])
    projection = np.dot(estimate, reference) / (np.dot(reference, reference) + 1e-12) * reference
    residual = estimate - projection
    return float(10 * np.log10(np.sum(projection**2) / (np.sum(residual**2) + 1e-12) + 1e-12))


def _active_rms(x: np.ndarray) -> float:
    loud = np.abs(x) > 0.1 * np.max(np.abs(x))
    return float(np.sqrt(np.mean(x[loud].astype(np.float64) ** 2)))


def _free_slot(rng: np.random.Generator, taken: list[tuple[int, int]], n: int, length: int, margin: int) -> int | None:
    for _ in range(200):
        start = int(rng.integers(margin, n - length - margin))
        if all(start + length + margin < a or start > b + margin for a, b in taken):
            return start
    return None


def _speech_active(x: np.ndarray, start: int, length: int) -> bool:
    window = x[start : start + length]
    return float(np.sqrt(np.mean(window.astype(np.float64) ** 2))) > 0.2 * _active_rms(x)


def _overdrive(y: np.ndarray, segments: list[PatternEvent], rate: int, rng: np.random.Generator) -> None:
    """Clip segments the way a converter does: driven past one rail shared by the whole clip."""
    if not segments:
        return
    outside = np.ones(len(y), dtype=bool)
    for e in segments:
        outside[int(e.start_s * rate) : int(e.end_s * rate)] = False
    rail = 1.01 * float(np.max(np.abs(y[outside])))
    for e in segments:
        s, t = int(e.start_s * rate), int(e.end_s * rate)
        drive = rail * rng.uniform(1.5, 3.0) / (np.max(np.abs(y[s:t])) + 1e-12)
        y[s:t] = np.clip(y[s:t] * drive, -rail, rail)


def _event_length(kind: str, rng: np.random.Generator, rate: int) -> int:
    if kind == "click":
        return int(rng.integers(1, 4))
    if kind == "burst":
        return int(rng.uniform(0.05, 0.3) * rate)
    if kind == "dropout":
        return int(rng.uniform(0.02, 0.15) * rate)
    return int(rng.uniform(0.05, 0.2) * rate)


def _apply_event(y: np.ndarray, kind: str, start: int, end: int, rng: np.random.Generator, clean: np.ndarray, speech_level: float) -> None:
    """Damage y[start:end] in place; clipping is applied afterwards, to all its events at once."""
    if kind == "click":
        y[start:end] += rng.choice([-1, 1]) * rng.uniform(0.5, 1.0) * np.max(np.abs(clean))
    elif kind == "burst":
        burst = rng.standard_normal(end - start)
        if rng.random() < 0.5:  # coloured: brown noise with its lowest frequencies removed
            burst = np.cumsum(burst)
            burst -= np.convolve(burst, np.ones(64) / 64, mode="same")
        burst *= speech_level * 10 ** (rng.uniform(6, 15) / 20) / (np.sqrt(np.mean(burst**2)) + 1e-12)
        y[start:end] += burst
    elif kind == "dropout":
        y[start:end] = 0.0


def inject_events(
    clean: np.ndarray, rate: int, rng: np.random.Generator, *, per_kind: int = 2, kinds: Sequence[str] = PATTERN_KINDS
) -> tuple[np.ndarray, list[PatternEvent]]:
    """Add interruption events at known, non-overlapping positions. Returns the audio and the truth."""
    y = clean.astype(np.float64, copy=True)
    speech_level = _active_rms(clean)
    taken: list[tuple[int, int]] = []
    truth: list[PatternEvent] = []
    margin = int(0.12 * rate)
    for kind in kinds:
        placed = 0
        for _ in range(per_kind * 50):
            if placed == per_kind:
                break
            length = _event_length(kind, rng, rate)
            start = _free_slot(rng, taken, len(y), length, margin)
            if start is None:
                break
            if kind in ("dropout", "clipping") and not _speech_active(clean, start, length):
                continue
            end = start + length
            _apply_event(y, kind, start, end, rng, clean, speech_level)
            taken.append((start, end))
            truth.append(PatternEvent(kind, start / rate, end / rate, 1.0))
            placed += 1
    _overdrive(y, [e for e in truth if e.kind == "clipping"], rate, rng)
    return y.astype(np.float32), sorted(truth, key=lambda e: e.start_s)


@dataclass(frozen=True)
class DetectionScore:
    kind: str
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score_detections(truth: Sequence[PatternEvent], found: Sequence[PatternEvent], tolerance_s: float = 0.01) -> dict[str, DetectionScore]:
    """Match events of the same kind that overlap (within ``tolerance_s``); one match each."""
    scores = {}
    for kind in PATTERN_KINDS:
        actual = [e for e in truth if e.kind == kind]
        predicted = [e for e in found if e.kind == kind]
        matched: set[int] = set()
        hits = 0
        for event in actual:
            for i, guess in enumerate(predicted):
                if i in matched:
                    continue
                if guess.start_s <= event.end_s + tolerance_s and guess.end_s >= event.start_s - tolerance_s:
                    matched.add(i)
                    hits += 1
                    break
        scores[kind] = DetectionScore(kind, hits, len(predicted) - len(matched), len(actual) - hits)
    return scores


def reference_metrics(clean: np.ndarray, enhanced: np.ndarray, rate: int) -> tuple[float, float]:
    """PESQ-wb and STOI against a clean reference (evaluation only)."""
    from pesq import pesq
    from pystoi import stoi

    n = min(len(clean), len(enhanced))
    return float(pesq(rate, clean[:n], enhanced[:n], "wb")), float(stoi(clean[:n], enhanced[:n], rate, extended=False))
