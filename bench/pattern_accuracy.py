"""Precision, recall and F1 of interruption detection per event kind, on held-out speech
with events injected at known positions (half at a 45 dB noise floor, half at 20 dB SNR).

    python -m bench.pattern_accuracy [--clips 40] [--json out.json]
"""

from __future__ import annotations

import numpy as np

from bench import common
from enhancement import patterns
from enhancement.config import PatternSettings
from enhancement.result import PATTERN_KINDS
from recipes import corpus
from recipes.evaluation import inject_events, score_detections


def measure(clips: int, seed: int = 99) -> dict:
    rng = np.random.default_rng(seed)
    totals = {kind: [0, 0, 0] for kind in PATTERN_KINDS}
    settings = PatternSettings()
    for i in range(clips):
        clean = corpus.speech_clip(rng, corpus.HELD_OUT_VOICES[i % len(corpus.HELD_OUT_VOICES)], 6.0)
        floor = corpus.mix_at_snr(clean, corpus.noise(rng, "pink", len(clean)), 20.0 if i % 2 else 45.0)
        audio, truth = inject_events(floor, corpus.SAMPLE_RATE_HZ, rng, per_kind=2)
        for kind, s in score_detections(truth, patterns.detect(audio, corpus.SAMPLE_RATE_HZ, settings)).items():
            totals[kind][0] += s.true_positives
            totals[kind][1] += s.false_positives
            totals[kind][2] += s.false_negatives
    result = {}
    for kind, (tp, fp, fn) in totals.items():
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        result[kind] = {
            "events": tp + fn,
            "precision": round(precision, 3),
            "recall": round(recall, 3),
            "f1": round(2 * precision * recall / (precision + recall), 3) if precision + recall else 0.0,
        }
    return result


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--clips", type=int, default=40)
    args = parser.parse_args()
    result = measure(args.clips)
    print(f"{'kind':<10} {'events':>6} {'precision':>9} {'recall':>7} {'F1':>6}")
    for kind, r in result.items():
        print(f"{kind:<10} {r['events']:>6} {r['precision']:>9.3f} {r['recall']:>7.3f} {r['f1']:>6.3f}")
    common.save(args.json, result)


if __name__ == "__main__":
    main()
