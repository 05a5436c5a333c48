"""Type-checks dashboards against Grafana's own schema (@grafana/schema, pinned in package.json).

    python deploy/grafana/schema/check.py [DASHBOARD.json ...]   (default: every generated dashboard)

Each dashboard becomes a TypeScript constant of type ``Board`` (dashboard-types.ts) and ``tsc``
checks it: unknown keys, wrong types and misspelt enum values fail. The npm packages come from
scripts/bootstrap-node, cached on the lock file. Exit status 0 when every dashboard passes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DASHBOARDS = HERE.parent / "dashboards"


def node_packages() -> Path:
    """The folder whose node_modules holds @grafana/schema and typescript."""
    found = subprocess.run([str(ROOT / "scripts" / "bootstrap-node")], capture_output=True, text=True, timeout=600)
    if found.returncode != 0:
        raise RuntimeError(f"scripts/bootstrap-node failed: {found.stderr}")
    return Path(found.stdout.strip().splitlines()[-1])


def type_check(dashboards: dict[str, dict]) -> subprocess.CompletedProcess:
    """tsc over one TypeScript file per dashboard; returncode 0 when all of them type-check."""
    packages = node_packages()
    # Inside the cache folder, so that TypeScript finds node_modules by walking up.
    with tempfile.TemporaryDirectory(dir=packages, prefix="check-") as folder:
        work = Path(folder)
        shutil.copy(HERE / "dashboard-types.ts", work / "dashboard-types.ts")
        files = []
        for name, board in dashboards.items():
            source = work / (Path(name).stem.replace("-", "_") + ".ts")
            source.write_text(
                f'import type {{ Board }} from "./dashboard-types";\n\nexport const board: Board = {json.dumps(board, indent=2)};\n'
            )
            files.append(str(source))
        command = [
            str(packages / "node_modules" / ".bin" / "tsc"),
            "--noEmit",
            "--strict",
            "--target", "es2020",
            "--module", "commonjs",
            "--moduleResolution", "node",
            *files,
        ]  # fmt: skip
        checked = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=work)
        # Name the dashboard, not the temporary file, in what tsc says.
        checked.stdout = checked.stdout.replace(folder + "/", "")
        return checked


def main(paths: list[str]) -> int:
    chosen = [Path(p) for p in paths] or sorted(DASHBOARDS.glob("*.json"))
    checked = type_check({p.name: json.loads(p.read_text()) for p in chosen})
    print(checked.stdout + checked.stderr or f"{len(chosen)} dashboards match @grafana/schema")
    return checked.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
