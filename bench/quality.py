"""Quality on held-out synthetic speech: noisy input (= passthrough), the shipped MetricGAN+,
the Wiener fallback and, when a directory is given, the official MetricGAN+ weights.

3 held-out voices x 4 held-out noise kinds x SNR 0/5/10/15 dB (48 clips), scored with
PESQ-wb, STOI, SI-SNR (against the clean reference) and DNSMOS overall (reference-free).

    python -m bench.quality [--official DIR] [--json out.json]
"""

from __future__ import annotations

from itertools import product
from pathlib import Path

import numpy as np

from bench import common
from enhancement import quality, spectral
from enhancement.model import MetricGanEnhancer
from recipes import corpus, evaluation
from recipes.evaluation import si_snr_db

SNRS_DB = (0.0, 5.0, 10.0, 15.0)
VOICES = corpus.HELD_OUT_VOICES[:3]
METRICS = ("pesq_wb", "stoi", "si_snr_db", "dnsmos_ovrl")


_models: dict[str, MetricGanEnhancer] = {}


def _load_models(official: str | None) -> None:
    from enhancement.config import SHIPPED_MODEL_DIR

    torch_threads(1)
    _models["metricgan_shipped"] = MetricGanEnhancer(SHIPPED_MODEL_DIR, "cpu")
    if official is not None:
        _models["metricgan_official"] = MetricGanEnhancer(Path(official), "cpu")
    for model in _models.values():
        model.load()


def torch_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)


def _score_cell(cell: tuple[str, str, float]) -> list[tuple[str, str, float, float]]:
    voice, kind, snr = cell
    pair = corpus.held_out_pair(31, voice=voice, noise_kind=kind, snr_db=snr, seconds=4.0)
    outputs = {"noisy_passthrough": pair.noisy, "wiener_fallback": spectral.wiener(pair.noisy, corpus.SAMPLE_RATE_HZ)}
    outputs |= {name: model.enhance(pair.noisy) for name, model in _models.items()}
    rows = []
    for system, audio in outputs.items():
        pesq_wb, stoi = evaluation.reference_metrics(pair.clean, audio, corpus.SAMPLE_RATE_HZ)
        # DNSMOS judges level too; give every system the same peak so only quality differs.
        levelled = audio / max(1e-9, float(np.max(np.abs(audio)))) * 0.5
        dnsmos = quality.dnsmos(levelled, corpus.SAMPLE_RATE_HZ)["ovrl"]
        rows += [
            (system, m, snr, v)
            for m, v in (("pesq_wb", pesq_wb), ("stoi", stoi), ("si_snr_db", si_snr_db(audio, pair.clean)), ("dnsmos_ovrl", dnsmos))
        ]
    return rows


def measure(official: Path | None = None, processes: int = 2) -> dict:
    """One process per core, each with one torch thread: the cells are independent."""
    from concurrent.futures import ProcessPoolExecutor

    cells = list(product(VOICES, corpus.HELD_OUT_NOISE_KINDS, SNRS_DB))
    scores: dict[str, dict[str, list[float]]] = {}
    with ProcessPoolExecutor(processes, initializer=_load_models, initargs=(str(official) if official else None,)) as pool:
        for rows in pool.map(_score_cell, cells):
            for system, metric, snr, value in rows:
                scores.setdefault(system, {}).setdefault(f"{metric}@{snr:g}dB", []).append(value)
                scores[system].setdefault(metric, []).append(value)
    return {system: {key: round(float(np.mean(values)), 3) for key, values in table.items()} for system, table in scores.items()}


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--official", type=Path, help="a directory with the official MetricGAN+ weights")
    args = parser.parse_args()
    results = measure(args.official)
    print(f"{'system':<20} " + " ".join(f"{m:>12}" for m in METRICS) + "   (means over 48 clips)")
    for system, table in results.items():
        print(f"{system:<20} " + " ".join(f"{table[m]:>12.3f}" for m in METRICS))
    print("at 5 dB input SNR:")
    for system, table in results.items():
        print(f"{system:<20} " + " ".join(f"{table[m + '@5dB']:>12.3f}" for m in METRICS))
    common.save(args.json, results)


if __name__ == "__main__":
    main()
