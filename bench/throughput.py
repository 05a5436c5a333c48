"""Real-time factor of the full pipeline against the bare model, measured side by side.

For each clip length, the same held-out noisy clip goes through MetricGAN+ alone
(``enhance_batch``) and through the whole pipeline (bytes in, WAV bytes out, telemetry off),
interleaved, and the medians are compared.

    python -m bench.throughput [--repeats 7] [--seconds 3 10 30] [--json out.json]
"""

from __future__ import annotations

import statistics
import time

from bench import common
from enhancement.model import MetricGanEnhancer
from enhancement.pipeline import Pipeline
from enhancement.result import STAGES
from recipes import corpus
from worker.settings import load_settings


def measure(seconds_list: list[float], repeats: int) -> dict:
    config = load_settings(environ={})
    enhancer = MetricGanEnhancer(config.model.source, "cpu")
    enhancer.load()
    pipeline = Pipeline(config, enhancer)
    results = {}
    try:
        for seconds in seconds_list:
            pair = corpus.held_out_pair(5, voice="en-us+m6", noise_kind="street", snr_db=5.0, seconds=seconds)
            body = common.wav_bytes(pair.noisy)
            enhancer.enhance(pair.noisy)  # warm-up
            pipeline.process_bytes(body)
            model_s, pipeline_s, stage_s = [], [], {s: [] for s in STAGES}
            for _ in range(repeats):
                started = time.perf_counter()
                enhancer.enhance(pair.noisy)
                model_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                result = pipeline.process_bytes(body).result
                pipeline_s.append(time.perf_counter() - started)
                for stage in result.stages:
                    stage_s[stage.name].append(stage.duration_s)
            model, whole = statistics.median(model_s), statistics.median(pipeline_s)
            results[f"{seconds:g}s"] = {
                "model_rtf": round(model / seconds, 4),
                "pipeline_rtf": round(whole / seconds, 4),
                "pipeline_vs_model_throughput": round(model / whole, 3),
                "stage_share": {s: round(statistics.median(v) / whole, 3) for s, v in stage_s.items()},
            }
    finally:
        pipeline.close()
    return results


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--seconds", type=float, nargs="+", default=[3.0, 10.0, 30.0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    results = measure(args.seconds, args.repeats)
    print(f"{'clip':>5} {'model RTF':>10} {'pipeline RTF':>13} {'throughput ratio':>17}  stage shares")
    for clip, r in results.items():
        shares = ", ".join(f"{k} {v:.0%}" for k, v in r["stage_share"].items())
        print(f"{clip:>5} {r['model_rtf']:>10.4f} {r['pipeline_rtf']:>13.4f} {r['pipeline_vs_model_throughput']:>17.3f}  {shares}")
    common.save(args.json, results)


if __name__ == "__main__":
    main()
