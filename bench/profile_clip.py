"""Where one clip's time goes: the pipeline in a loop under a sampling profiler, summed per stage.

py-spy is not a dependency of the project (``pip install py-spy`` anywhere); it samples this
process from outside, so the pipeline runs unmodified:

    py-spy record -r 1000 -f raw -o /tmp/clip.txt -- python -m bench.profile_clip run --seconds 10
    python -m bench.profile_clip summary /tmp/clip.txt

``run`` enhances the same held-out noisy clip (bytes in, WAV bytes out, telemetry off, DNSMOS
off so that the sampled tenth of clips does not swamp the rest) ``--clips`` times. ``summary``
reads py-spy's collapsed stacks and prints each stage's share of the samples taken inside the
pipeline, then the lines that cost most within each stage.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

# The innermost of these on a stack (any part of a qualified name) names the stage a sample belongs to.
STAGE_FRAMES = {
    "decode_bytes": "decode",
    "_detect": "pattern_detection",
    "_suppress": "pattern_suppression",
    "_call_model": "enhancement",
    "_loudness": "loudness",
    "_quality": "quality",
    "sink": "encode",
}
FRAME = re.compile(r"^(?P<function>\S+) \((?P<file>[^:)]+)(?::(?P<line>\d+))?\)$")


def run(seconds: float, clips: int) -> None:
    from bench import common
    from enhancement.model import MetricGanEnhancer
    from enhancement.pipeline import Pipeline
    from recipes import corpus
    from worker.settings import load_settings

    config = load_settings(environ={"ENHANCEMENT_QUALITY__DNSMOS_SAMPLE_RATIO": "0"})
    enhancer = MetricGanEnhancer(config.model.source, "cpu")
    enhancer.load()
    pipeline = Pipeline(config, enhancer)
    pair = corpus.held_out_pair(5, voice="en-us+m6", noise_kind="street", snr_db=5.0, seconds=seconds)
    body = common.wav_bytes(pair.noisy)
    try:
        for _ in range(clips):
            pipeline.process_bytes(body)
    finally:
        pipeline.close()


def summarise(collapsed: str, top: int = 4) -> dict[str, tuple[float, list[tuple[str, float]]]]:
    """Per stage: its share of the pipeline's samples and its costliest lines (function, file:line)."""
    stages: Counter[str] = Counter()
    lines: dict[str, Counter[str]] = defaultdict(Counter)
    for row in collapsed.splitlines():
        stack, _, count = row.rpartition(" ")
        frames = [FRAME.match(frame) for frame in stack.split(";")]
        # Qualified names: the model runs on the deadline's thread, in a lambda defined in _call_model.
        named = [(i, STAGE_FRAMES[part]) for i, m in enumerate(frames) if m for part in m["function"].split(".") if part in STAGE_FRAMES]
        if not named:
            continue
        depth, stage = named[-1]
        stages[stage] += int(count)
        # The deepest frame of the project's own code says which line of the stage paid.
        own = [m for m in frames[depth:] if m and re.search(r"(enhancement|worker)/", m["file"])]
        leaf = own[-1] if own else frames[-1]
        if leaf:
            lines[stage][f"{leaf['function']} ({Path(leaf['file']).name}:{leaf['line']})"] += int(count)
    total = sum(stages.values()) or 1
    return {
        stage: (count / total, [(line, n / total) for line, n in lines[stage].most_common(top)]) for stage, count in stages.most_common()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    loop = commands.add_parser("run", help="enhance one clip in a loop, for the profiler to sample")
    loop.add_argument("--seconds", type=float, default=10.0)
    loop.add_argument("--clips", type=int, default=300)
    summary = commands.add_parser("summary", help="per-stage shares from py-spy's raw (collapsed) output")
    summary.add_argument("collapsed", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run(args.seconds, args.clips)
        return
    for stage, (share, costliest) in summarise(args.collapsed.read_text()).items():
        print(f"{stage:<20} {share:>6.1%}")
        for line, line_share in costliest:
            print(f"    {line_share:>6.1%}  {line}")


if __name__ == "__main__":
    main()
