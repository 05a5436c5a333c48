"""`enhancement-worker top` against a live worker: the --once snapshot, the interactive view in
tmux (start, refresh, resize, quit), its scrapes leaving the worker's metrics alone, and the fleet
view from a real Prometheus that scrapes the worker as two replicas."""

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from enhancement.result import STAGES
from helpers.worker import LiveWorker
from ops import loadgen
from ops.stack import free_port
from ops.top.sources import parse

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("Status", "Throughput", "Per stage", "Pattern detection", "MetricGAN+", "Loudness", "Resources", "Alerts")
TOP = [sys.executable, "-m", "worker.cli", "top"]


@pytest.fixture(scope="module")
def worker():
    live = LiveWorker().start()
    clips = loadgen.load_corpus(ROOT / "samples") + loadgen.load_corpus(None, count=1, seconds=3.0)
    assert len(clips) == 3
    for clip in clips:
        answer = httpx.post(live.url + "/v1/enhance", content=clip, headers={"content-type": "audio/wav"}, timeout=60)
        assert answer.status_code == 200
    yield live
    live.terminate()


def top_once(*args: str) -> str:
    shown = subprocess.run([*TOP, *args, "--once"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return shown.stdout


def test_once_shows_every_section_and_stage_with_the_three_clips_counted(worker):
    screen = top_once("--url", worker.url)
    for section in SECTIONS:
        assert section in screen, section
    stage_rows = {line.split()[1] for line in screen.splitlines() if len(line.split()) > 1 and line.split()[1] in STAGES}
    assert stage_rows == set(STAGES), f"every stage ran on these clips: {stage_rows}"
    [row] = [line for line in screen.splitlines() if worker.url in line and "since start" in line]
    clips, per_minute, success, degraded, rejected, failed = row.split("since start")[1].split()[:6]
    assert per_minute == "-", "one reading has no rate"
    clips, success, degraded, rejected, failed = (int(n) for n in (clips, success, degraded, rejected, failed))
    assert clips == 3 and success + degraded == 3 and rejected == failed == 0, row
    assert "ready" in screen and "loaded" in screen and "closed" in screen
    assert "no Alertmanager given" in screen


def test_the_scrapes_of_top_change_nothing_another_scraper_sees(worker):
    def samples() -> dict:
        text = httpx.get(worker.url + "/metrics").text
        # What changes on its own (process and host figures), and the request counts of the two
        # routes top calls, which count every caller alike.
        return {
            (name, tuple(sorted(labels.items()))): value
            for name, rows in parse(text).items()
            if not name.startswith(("process_", "python_", "enhancement_system_", "enhancement_gpu_"))
            for labels, value in rows
            if labels.get("route") not in ("/metrics", "/readyz")
        }

    before = samples()
    top_once("--url", worker.url)
    top_once("--url", worker.url)
    assert samples() == before


def test_the_interactive_view_starts_refreshes_survives_a_resize_and_quits_on_q(worker, tmp_path):
    if shutil.which("tmux") is None:
        pytest.fail("tmux is required: apt-get install tmux")
    session = f"top-{worker.port}"
    done = tmp_path / "exit-status"
    command = f"{' '.join(TOP)} --url {worker.url} --interval 1; echo $? > {done}; sleep 60"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "50", "-c", str(ROOT), command], check=True)

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True).stdout

    def wait_for(condition, what: str, timeout_s: float = 30) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition(shown := screen()):
                return shown
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}:\n{screen()}")

    try:
        first = wait_for(lambda s: "Status" in s and "Throughput" in s, "the first frame")
        clock = re.search(r"\d\d:\d\d:\d\d", first).group(0)
        wait_for(lambda s: re.search(r"\d\d:\d\d:\d\d", s) and clock not in s.splitlines()[0], "a refresh")
        wait_for(lambda s: "last 1 s" in s, "rates over the refresh interval")
        subprocess.run(["tmux", "resize-window", "-t", session, "-x", "90", "-y", "40"], check=True)
        resized = wait_for(lambda s: max(len(line) for line in s.splitlines()) <= 90 and "Status" in s, "a frame at the new width")
        assert "╭" in resized
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 15
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.exists() and done.read_text().strip() == "0", screen()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_with_prometheus_once_shows_one_row_per_replica(worker, tmp_path):
    port = free_port()
    host, worker_port = worker.url.removeprefix("http://").split(":")
    # One worker scraped under two addresses: two replicas to Prometheus, a fleet to top.
    targets = [f"127.0.0.1:{worker_port}", f"localhost:{worker_port}"]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy" / "prometheus" / "rules" / "recording.yml")],
        "scrape_configs": [{"job_name": "enhancement-worker", "static_configs": [{"targets": targets}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                result = httpx.get(url + "/api/v1/query", params={"query": 'count(enhancement_build_info{job="enhancement-worker"})'})
                if result.status_code == 200 and result.json()["data"]["result"] and result.json()["data"]["result"][0]["value"][1] == "2":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        screen = top_once("--prometheus", url)
        rows = [line for line in screen.splitlines() if "since start" in line and any(t in line for t in targets)]
        assert {next(t for t in targets if t in line) for line in rows} == set(targets), screen
        assert len([line for line in screen.splitlines() if any(t in line for t in targets)]) == 2 * 3, "status, throughput, resources"
        assert all(" 3 " in line for line in rows), "each replica shows the three clips it (the one worker) served"
        for section in SECTIONS:
            assert section in screen, section
    finally:
        prometheus.terminate()
        prometheus.wait(30)
