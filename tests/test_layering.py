"""enhancement/ must stay free of telemetry libraries; only exporter/ may use them."""

import ast
from pathlib import Path

FORBIDDEN = ("prometheus_client", "opentelemetry", "exporter")
PACKAGE = Path(__file__).resolve().parent.parent / "enhancement"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_enhancement_imports_no_telemetry_library():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN)
        for path in PACKAGE.rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, offenders
    assert len(list(PACKAGE.rglob("*.py"))) > 10
