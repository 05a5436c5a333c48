"""Measure a checkpoint on held-out synthetic speech (voices and noise kinds unseen in training).

Usage:
    python -m recipes.evaluate --model enhancement/checkpoints/metricgan-plus-synth --snr 5
"""

from __future__ import annotations

import argparse
import json
from itertools import product
from pathlib import Path

import numpy as np

from enhancement import spectral
from enhancement.model import MetricGanEnhancer
from recipes import corpus
from recipes.evaluation import reference_metrics, si_snr_db

EVAL_SEED = 7


def evaluate(model_dir: Path, snrs_db: list[float], clips_per_cell: int = 1, seconds: float = 4.0) -> dict:
    enhancer = MetricGanEnhancer(model_dir, device="cpu")
    enhancer.load()
    rows = []
    for voice, kind, snr, index in product(corpus.HELD_OUT_VOICES, corpus.HELD_OUT_NOISE_KINDS, snrs_db, range(clips_per_cell)):
        pair = corpus.held_out_pair(EVAL_SEED + index, voice=voice, noise_kind=kind, snr_db=snr, seconds=seconds)
        outputs = {
            "noisy": pair.noisy,
            "metricgan": enhancer.enhance(pair.noisy),
            "wiener": spectral.wiener(pair.noisy, corpus.SAMPLE_RATE_HZ),
        }
        row = {"voice": voice, "noise": kind, "snr_db": snr}
        for name, audio in outputs.items():
            pesq_wb, stoi = reference_metrics(pair.clean, audio, corpus.SAMPLE_RATE_HZ)
            row[name] = {"pesq_wb": pesq_wb, "stoi": stoi, "si_snr_db": si_snr_db(audio, pair.clean)}
        rows.append(row)

    def mean(system: str, metric: str, snr: float | None = None) -> float:
        return float(np.mean([r[system][metric] for r in rows if snr is None or r["snr_db"] == snr]))

    summary = {}
    for snr in snrs_db:
        summary[f"{snr:g}dB"] = {
            system: {metric: round(mean(system, metric, snr), 3) for metric in ("pesq_wb", "stoi", "si_snr_db")}
            for system in ("noisy", "metricgan", "wiener")
        }
        cell = summary[f"{snr:g}dB"]
        cell["metricgan_gain"] = {
            "pesq_wb": round(cell["metricgan"]["pesq_wb"] - cell["noisy"]["pesq_wb"], 3),
            "si_snr_db": round(cell["metricgan"]["si_snr_db"] - cell["noisy"]["si_snr_db"], 3),
        }
    per_noise = {
        kind: round(float(np.mean([r["metricgan"]["si_snr_db"] - r["noisy"]["si_snr_db"] for r in rows if r["noise"] == kind])), 2)
        for kind in corpus.HELD_OUT_NOISE_KINDS
    }
    return {"clips": len(rows), "by_snr": summary, "si_snr_gain_db_by_noise": per_noise}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--snr", type=float, nargs="+", default=[5.0])
    parser.add_argument("--clips-per-cell", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(evaluate(args.model, args.snr, args.clips_per_cell), indent=2))


if __name__ == "__main__":
    main()
