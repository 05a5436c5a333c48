"""The README's demo: enhance the sample audio with the shipped checkpoint, then run the
local stack (3 workers behind nginx sharing Redis, Prometheus, Alertmanager, receiver,
loadgen) until Ctrl-C. ``ENHANCEMENT_DEMO_REPLICAS=1`` runs one worker on its in-memory queue."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ops.stack import run_demo
from worker import cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
OUTPUT = ROOT / "demo-output"


def main() -> int:
    print(f"enhancing {SAMPLES} -> {OUTPUT}")
    code = cli.main(["enhance", str(SAMPLES), "--out", str(OUTPUT), "--report", str(OUTPUT / "report.json")])
    if code != cli.EXIT_OK:
        return code
    print(f"listen: {', '.join(str(p.relative_to(ROOT)) for p in sorted(OUTPUT.rglob('*.wav')))}\n")
    return run_demo(replicas=int(os.environ.get("ENHANCEMENT_DEMO_REPLICAS", "3")))


if __name__ == "__main__":
    sys.exit(main())
