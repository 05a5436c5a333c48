"""The hostile-input corpus through the HTTP API and the CLI: every case is rejected with its
named reason (counted by reason) or enhanced correctly, nothing partial is left, and the
worker keeps serving. Plus property-based fuzzing of decode (tests/fuzz_decode.py)."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from helpers.hostile_corpus import cases
from worker import cli
from worker.api.app import create_app
from worker.runtime import Runtime
from worker.settings import load_settings

CASES = cases()


def test_the_corpus_is_broad():
    assert len(CASES) >= 50
    assert len({reason for _, reason in CASES.values()}) >= 9


@pytest.fixture(scope="module")
def client(loaded_enhancer):
    runtime = Runtime(load_settings(environ={}), enhancer=loaded_enhancer, span_exporter=InMemorySpanExporter())
    with TestClient(create_app(runtime)) as test_client:
        yield test_client, runtime


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_case_over_http(client, name):
    test_client, runtime = client
    data, expected = CASES[name]
    response = test_client.post("/v1/enhance", content=data, headers={"content-type": "application/octet-stream"})
    if expected == "ok":
        assert response.status_code == 200, response.text
        assert response.headers["x-enhancement-outcome"] in ("success", "degraded")
        assert response.content[:4] == b"RIFF"
    else:
        assert response.status_code == 422, (response.status_code, response.text)
        body = response.json()
        assert body["error"] and body["reason"] == expected
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
            assert expected == "ok", name
            assert written.is_file()
        else:
            assert expected != "ok", (name, result["error"])
            assert result["outcome"] == "rejected" and result["error"], name
            assert result["error_reason"] == expected, (name, result["error_reason"])
            assert not written.exists(), name
    assert not list(out.rglob("*.partial")), "no partial files left behind"


HOSTILE_NAMES = [
    "..wav",
    "...wav",
    "-rf.wav",
    "--out.wav",
    " leading space.wav",
    "new\nline.wav",
    "tab\there.wav",
    "semi;colon$(id).wav",
    "quote'\"s.wav",
    "back\\slash.wav",
    "right\u202eto-left.wav",
    "日本語.wav",
    "%2e%2e%2fescape.wav",
    "..%2f..%2fetc%2fpasswd.wav",
    "a" * 250 + ".wav",
]


@pytest.fixture(scope="module")
def speech_like_wav() -> bytes:
    from ops import loadgen

    return loadgen.load_corpus(None, count=1, seconds=1.0)[0]


def files_outside(root: Path, before: set[Path]) -> set[Path]:
    return {p for p in root.rglob("*")} - before


def test_hostile_file_names_are_written_inside_out_under_their_own_names(tmp_path, speech_like_wav):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for name in HOSTILE_NAMES:
        (inputs / name).write_bytes(speech_like_wav)
    before = set(tmp_path.rglob("*"))
    assert cli.main(["enhance", str(inputs), "--out", str(out)]) == cli.EXIT_OK
    written = files_outside(tmp_path, before)
    assert all(p.is_relative_to(out) for p in written), sorted(p for p in written if not p.is_relative_to(out))
    assert {p.name for p in (out / "in").iterdir()} == set(HOSTILE_NAMES)


def test_a_dot_dot_input_directory_cannot_lead_out_of_the_output_directory(tmp_path, speech_like_wav, monkeypatch):
    (tmp_path / "clips" / "sub").mkdir(parents=True)
    (tmp_path / "clips" / "one.wav").write_bytes(speech_like_wav)
    out = tmp_path / "clips" / "sub" / "out"
    before = set(tmp_path.rglob("*"))
    # "clips/sub/.." is named "..": joined naively to --out it would write beside, not inside, it.
    assert cli.main(["enhance", str(tmp_path / "clips" / "sub" / ".."), "--out", str(out)]) == cli.EXIT_OK
    written = files_outside(tmp_path, before)
    assert written and all(p.is_relative_to(out) for p in written), sorted(written)
    assert (out / "clips" / "one.wav").is_file()


def test_linked_inputs_and_link_cycles_are_read_but_outputs_stay_inside_out(tmp_path, speech_like_wav):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "elsewhere.wav").write_bytes(speech_like_wav)
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (inputs / "clip.wav").write_bytes(speech_like_wav)
    (inputs / "linked.wav").symlink_to(outside / "elsewhere.wav")
    (inputs / "loop").symlink_to(inputs, target_is_directory=True)  # a cycle must not recurse for ever
    before = set(tmp_path.rglob("*"))
    assert cli.main(["enhance", str(inputs), "--out", str(out)]) == cli.EXIT_OK
    written = files_outside(tmp_path, before)
    assert written and all(p.is_relative_to(out) for p in written), sorted(written)
    assert {"clip.wav", "linked.wav"} <= {p.name for p in (out / "in").iterdir()}


def test_a_link_planted_where_an_output_will_go_is_refused_and_its_target_untouched(tmp_path, speech_like_wav, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("must stay as it is")
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (out / "in").mkdir(parents=True)
    (inputs / "clip.wav").write_bytes(speech_like_wav)
    (out / "in" / "clip.wav").symlink_to(victim)
    assert cli.main(["enhance", str(inputs), "--out", str(out)]) == cli.EXIT_USAGE
    assert "outside" in capsys.readouterr().err
    assert victim.read_text() == "must stay as it is"
    assert [p.name for p in (out / "in").iterdir()] == ["clip.wav"] and (out / "in" / "clip.wav").is_symlink()


def test_names_sent_over_http_are_ignored_and_nothing_is_written(client, speech_like_wav, tmp_path, monkeypatch):
    test_client, _ = client
    monkeypatch.chdir(tmp_path)
    response = test_client.post(
        "/v1/enhance",
        content=speech_like_wav,
        headers={
            "content-type": "audio/wav",
            "content-disposition": 'attachment; filename="../../../../tmp/pwned.wav"',
            "x-filename": "../../etc/passwd",
        },
    )
    assert response.status_code == 200
    assert "passwd" not in str(response.headers) and "pwned" not in str(response.headers)
    assert list(tmp_path.iterdir()) == [] and not Path("/tmp/pwned.wav").exists()


def test_property_based_fuzzing_of_decode():
    # Run apart: hypothesis scans every loaded module for constants, and SpeechBrain's lazy
    # modules (loaded by other tests in this process) raise ImportError when touched.
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__).with_name("fuzz_decode.py"))],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "2 passed" in run.stdout
