"""Renders rules/*.yml from src/*.yml and the SLO definitions, with the settings of ops/monitoring.py.

    python deploy/prometheus/generate.py           # rewrite rules/
    python deploy/prometheus/generate.py --check   # exit 1 if rules/ differs (the drift test runs this)

The rules under src/ are written by hand, comments and all, with two placeholders that
only this script fills in: ``__WORKER__`` (the label matchers of the worker's series) and
``runbook_url: __RUNBOOK__`` (the alert's absolute runbook link). rules/slo.yml is built
entirely by slo_rules.py.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import slo_rules  # noqa: E402  (the sibling generator, beside this file)

from ops import monitoring  # noqa: E402

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
RULES = HERE / "rules"
ALERT_LINE = re.compile(r"^\s*- alert: (\w+)\s*$")


def render_source(text: str, source_name: str) -> str:
    lines = [f"# Generated from src/{source_name} by deploy/prometheus/generate.py; edit that file, not this one."]
    alert = None
    for line in text.splitlines():
        if match := ALERT_LINE.match(line):
            alert = match.group(1)
        if "__RUNBOOK__" in line:
            if alert is None:
                raise ValueError(f"{source_name}: a runbook placeholder before any alert")
            line = line.replace("__RUNBOOK__", monitoring.runbook_url(alert))
        lines.append(line.replace("__WORKER__", monitoring.WORKER_SELECTOR))
    return "\n".join(lines) + "\n"


def render() -> dict[str, str]:
    files = {source.name: render_source(source.read_text(), source.name) for source in sorted(SOURCES.glob("*.yml"))}
    files["slo.yml"] = slo_rules.render()
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report files that differ from what would be written")
    args = parser.parse_args()
    stale = []
    for name, text in render().items():
        target = RULES / name
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(name)
        else:
            target.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)}; run python deploy/prometheus/generate.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
