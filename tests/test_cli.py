import json
import shutil
from pathlib import Path

import pytest

from helpers.audio_files import hostile_inputs
from worker import cli

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(SAMPLES, folder)
    return folder


def test_enhance_a_directory_writes_outputs_report_and_summary(inputs, tmp_path, capsys):
    out, report = tmp_path / "out", tmp_path / "report.json"
    assert cli.main(["enhance", str(inputs), "--out", str(out), "--report", str(report)]) == cli.EXIT_OK
    written = sorted(p.name for p in (out / "in").iterdir())
    assert written == sorted(p.name for p in SAMPLES.glob("*.wav"))
    results = json.loads(report.read_text())
    assert [r["outcome"] for r in results] == ["success"] * len(written)
    for result in results:
        assert result["quality"]["snr_improvement_db"] > 0
        assert result["loudness"]["on_target"] and result["loudness"]["true_peak_dbtp"] <= -1.0
        assert {s["name"] for s in result["stages"]} >= {"decode", "enhancement", "encode"}
    printed = capsys.readouterr().out
    assert "success" in printed and "real-time factor" in printed and "enhancement" in printed


def test_refuses_to_write_over_its_inputs(inputs, capsys):
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    code = cli.main(["enhance", str(inputs / "street_5db.wav"), "--out", str(inputs)])
    assert code == cli.EXIT_USAGE
    assert "refusing to write over the input" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before


def test_bad_inputs_get_named_errors_and_a_non_zero_exit(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    for index, (_, (data, _reason)) in enumerate(sorted(hostile_inputs().items())):
        (folder / f"case{index:02d}.wav").write_bytes(data)
    out = tmp_path / "out"
    code = cli.main(["enhance", str(folder), "--out", str(out), "--report", str(tmp_path / "r.json")])
    assert code == cli.EXIT_USAGE
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    results = json.loads((tmp_path / "r.json").read_text())
    for result in results:
        assert f"{result['source']}: rejected: {result['error']}" in printed, "each problem is named on the terminal"
    assert all(r["outcome"] == "rejected" and r["error"] for r in results)
    assert sorted(r["error_reason"] for r in results) == sorted(reason for _, reason in hostile_inputs().values())
    assert not out.exists() or not any(out.rglob("*.wav"))


def test_missing_input_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["enhance", str(tmp_path / "nope.wav"), "--out", str(tmp_path)]) == cli.EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err


def test_a_failed_clip_makes_the_exit_code_non_zero(inputs, tmp_path, monkeypatch):
    from enhancement import pipeline

    monkeypatch.setattr(pipeline, "encode_bytes", lambda *a: (_ for _ in ()).throw(RuntimeError("bug")))
    monkeypatch.setattr(pipeline, "write_atomic", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("bug")))
    assert cli.main(["enhance", str(inputs), "--out", str(tmp_path / "out")]) == cli.EXIT_FAILED


def test_check_config_reports_each_component(monkeypatch, capsys):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    assert cli.main(["check-config"]) == cli.EXIT_OK
    printed = capsys.readouterr().out
    for name in ("config valid", "device available", "model loadable", "memory enough", "telemetry configured"):
        assert f"[ok] {name}" in printed
    assert "ready for production" in printed


def test_check_config_fails_without_a_loadable_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ENHANCEMENT_MODEL__SOURCE", str(tmp_path))
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert cli.main(["check-config"]) == cli.EXIT_FAILED
    printed = capsys.readouterr().out
    assert "[FAIL] model loadable" in printed and "NOT ready" in printed


def test_check_config_fails_on_an_invalid_file(tmp_path, capsys):
    bad = tmp_path / "w.yaml"
    bad.write_text("loudness:\n  gain_ratio: -1\n")
    assert cli.main(["--config", str(bad), "check-config"]) == cli.EXIT_FAILED
    assert "loudness.gain_ratio" in capsys.readouterr().err


def test_sigterm_mid_batch_finishes_the_clip_in_progress_and_leaves_nothing_half_written(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import soundfile as sf

    from ops import loadgen

    inputs, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    inputs.mkdir()
    clips = loadgen.load_corpus(None, count=40, seconds=5.0)
    for index, clip in enumerate(clips):
        (inputs / f"clip{index:02d}.wav").write_bytes(clip)
    batch = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "enhance", str(inputs), "--out", str(out), "--report", str(report)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(out.rglob("*.wav")):
        assert batch.poll() is None and time.monotonic() < deadline, "the batch never wrote its first clip"
        time.sleep(0.02)
    batch.send_signal(signal.SIGTERM)
    _, stderr = batch.communicate(timeout=120)

    assert batch.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM" in stderr
    written = sorted(out.rglob("*.wav"))
    reported = json.loads(report.read_text())
    assert 1 <= len(written) < len(clips), "it stopped early, after the clip in progress"
    assert len(reported) == len(written) and all(r["outcome"] in ("success", "degraded") for r in reported)
    for path in written:
        audio, rate = sf.read(path)
        assert rate == 16_000 and len(audio) == 5 * 16_000, path.name
    assert not [p for p in out.rglob("*") if p.name.endswith(".partial")]
