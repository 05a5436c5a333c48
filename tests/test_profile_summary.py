"""The per-stage summary of a py-spy profile (bench/profile_clip.py), on stacks shaped like py-spy's."""

import pytest

from bench.profile_clip import summarise

MAIN = "<module> (bench/profile_clip.py:101);run (bench/profile_clip.py:47);Pipeline.process_bytes (enhancement/pipeline.py:100)"
MODEL_THREAD = "_bootstrap (threading.py:1002);_worker (concurrent/futures/thread.py:83)"
COLLAPSED = "\n".join(
    [
        f"{MAIN};Pipeline._run (enhancement/pipeline.py:121);decode_bytes (enhancement/decode.py:142);_read (enhancement/decode.py:98) 5",
        f"{MAIN};Pipeline._detect (enhancement/pipeline.py:199);detect (enhancement/patterns.py:330);"
        "_lpc_residual (enhancement/patterns.py:121);rfft (scipy/fft/_basic.py:10) 15",
        f"{MODEL_THREAD};Pipeline._call_model.<locals>.<lambda>.<locals>.<lambda> (enhancement/pipeline.py:225);"
        "MetricGanEnhancer.enhance (enhancement/model.py:144);forward (torch/nn/modules/rnn.py:900) 70",
        f"{MAIN};Pipeline._loudness (enhancement/pipeline.py:256);block_mean_squares (enhancement/loudness.py:65) 10",
        "<module> (bench/profile_clip.py:101);run (bench/profile_clip.py:40);load (enhancement/model.py:113) 400",
    ]
)


def test_each_sample_goes_to_its_innermost_stage_and_loading_counts_for_none():
    summary = summarise(COLLAPSED)
    assert {stage: round(share, 3) for stage, (share, _) in summary.items()} == {
        "enhancement": 0.7,
        "pattern_detection": 0.15,
        "loudness": 0.1,
        "decode": 0.05,
    }
    # The line named is the deepest of the project's own, not the library's frame under it.
    assert summary["pattern_detection"][1] == [("_lpc_residual (patterns.py:121)", pytest.approx(0.15))]
    assert summary["enhancement"][1][0][0] == "MetricGanEnhancer.enhance (model.py:144)"
