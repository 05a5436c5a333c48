"""The hostile-input corpus through the HTTP API and the CLI: every case is rejected with its
named reason (counted by reason) or enhanced correctly, nothing partial is left, and the
worker keeps serving. Plus property-based fuzzing of decode (tests/fuzz_decode.py)."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from enhancement.config import load_config
from exporter import cli
from exporter.runtime import Runtime
from exporter.service import create_app
from hostile_corpus import cases

CASES = cases()


def test_the_corpus_is_broad():
    assert len(CASES) >= 50
    assert len({reason for _, reason in CASES.values()}) >= 9


@pytest.fixture(scope="module")
def client(loaded_enhancer):
    runtime = Runtime(load_config(environ={}), enhancer=loaded_enhancer, span_exporter=InMemorySpanExporter())
    with TestClient(create_app(runtime)) as test_client:
        yield test_client, runtime


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_case_over_http(client, name):
    test_client, runtime = client
    data, expected = CASES[name]
    response = test_client.post("/v1/enhance", content=data, headers={"content-type": "application/octet-stream"})
    if expected == "ok" or (expected == "ok_or_rejected" and response.status_code == 200):
        assert response.status_code == 200, response.text
        assert response.headers["x-enhancement-outcome"] in ("success", "degraded")
        assert response.content[:4] == b"RIFF"
    else:
        assert response.status_code == 422, (response.status_code, response.text)
        body = response.json()
        assert body["error"] and (expected == "ok_or_rejected" or body["reason"] == expected)
        counted = runtime.registry.get_sample_value("enhancement_stage_errors_total", {"stage": "decode", "reason": body["reason"]})
        assert counted and counted >= 1
    assert test_client.get("/healthz").status_code == 200


def test_each_case_through_the_cli(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, (data, _) in CASES.items():
        (inputs / f"{name}.wav").write_bytes(data)
    out, report = tmp_path / "out", tmp_path / "report.json"
    assert cli.main(["enhance", str(inputs), "--out", str(out), "--report", str(report)]) == cli.EXIT_USAGE
    results = {Path(r["source"]).stem: r for r in json.loads(report.read_text())}
    assert set(results) == set(CASES)
    for name, (_, expected) in CASES.items():
        result = results[name]
        written = out / "in" / f"{name}.wav"
        if result["outcome"] in ("success", "degraded"):
            assert expected in ("ok", "ok_or_rejected"), name
            assert written.is_file()
        else:
            assert expected != "ok", (name, result["error"])
            assert result["outcome"] == "rejected" and result["error"], name
            assert expected == "ok_or_rejected" or result["error_reason"] == expected, (name, result["error_reason"])
            assert not written.exists(), name
    assert not list(out.rglob("*.partial")), "no partial files left behind"


def test_property_based_fuzzing_of_decode():
    # Run apart: hypothesis scans every loaded module for constants, and SpeechBrain's lazy
    # modules (loaded by other tests in this process) raise ImportError when touched.
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__).with_name("fuzz_decode.py"))],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "2 passed" in run.stdout
