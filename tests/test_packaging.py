"""What ships: the wheel holds the four packages and the checkpoint, never tests or training code;
the image installs the runtime lock, which holds no test-only package; each layer imports only
the layers beneath it."""

import ast
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("enhancement", "exporter", "worker", "ops")
TEST_ONLY = ("pytest", "pytest-cov", "coverage", "hypothesis", "schemathesis", "pesq", "pystoi", "ruff", "mypy")


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = out.glob("enhancement_worker-*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_the_wheel_ships_the_four_packages_and_the_checkpoint(wheel_files):
    top = {name.split("/")[0] for name in wheel_files if not name.startswith("enhancement_worker-")}
    assert top == set(SHIPPED)
    assert "enhancement/checkpoints/metricgan-plus-synth/enhance_model.ckpt" in wheel_files
    assert "worker/api/app.py" in wheel_files and "ops/receiver.py" in wheel_files


def test_the_wheel_holds_no_test_helper_and_no_training_code(wheel_files):
    # The checkpoint's training.json (its training log, cited by the model card) is data, not training code.
    code = [n for n in wheel_files if n.endswith((".py", ".yaml")) and "checkpoints/" not in n]
    forbidden = [n for n in code if any(part in n for part in ("tests/", "helpers", "recipes", "training", "testing/"))]
    assert not forbidden, forbidden
    assert len(code) > 30


def test_the_runtime_lock_is_current_and_holds_no_test_only_package():
    checked = subprocess.run([sys.executable, str(ROOT / "scripts" / "lock_runtime.py"), "--check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    pinned = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "requirements-runtime.lock").read_text().splitlines()
        if "==" in line
    }
    assert not pinned & set(TEST_ONLY), pinned & set(TEST_ONLY)
    assert {"torch", "speechbrain", "fastapi", "prometheus-client", "pydantic-settings"} <= pinned
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements-runtime.lock" in dockerfile and "requirements.lock " not in dockerfile


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


# What each package may not import: the pipeline knows no telemetry, web framework or application;
# telemetry knows no application; nothing shipped imports the tests or the training recipe.
FORBIDDEN = {
    "enhancement": {"prometheus_client", "opentelemetry", "fastapi", "starlette", "uvicorn", "exporter", "worker", "ops"},
    "exporter": {"fastapi", "starlette", "uvicorn", "worker", "ops"},
    "worker": set(),
    "ops": set(),
}


@pytest.mark.parametrize("package", SHIPPED)
def test_each_package_imports_only_what_its_layer_allows(package):
    forbidden = FORBIDDEN[package] | {"tests", "helpers", "recipes", "bench"}
    offenders = {str(path.relative_to(ROOT)): sorted(imported_modules(path) & forbidden) for path in (ROOT / package).rglob("*.py")}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, offenders


def test_every_third_party_module_the_shipped_code_imports_comes_from_the_runtime_lock():
    """The image installs only the runtime lock: a module imported from a package it lacks would
    crash the worker at start-up, whatever the test venv has."""
    pinned = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "requirements-runtime.lock").read_text().splitlines()
        if "==" in line
    }
    providers = packages_distributions()
    missing = {}
    for package in SHIPPED:
        for path in (ROOT / package).rglob("*.py"):
            for module in imported_modules(path) - set(sys.stdlib_module_names) - set(SHIPPED) - {"__future__"}:
                distributions = {d.lower().replace("_", "-") for d in providers.get(module, [])}
                if not distributions & pinned:
                    missing[module] = sorted(distributions) or ["(no installed distribution)"]
    assert not missing, f"imported by shipped code but not in requirements-runtime.lock: {missing}"
