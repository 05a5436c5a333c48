"""The local stack: worker, Prometheus, two clustered Alertmanagers, receiver and loadgen on 127.0.0.1.

For machines without Docker. It runs Debian's ``prometheus`` and
``prometheus-alertmanager`` with the repository's own config. The only
differences from docker-compose.yml are the addresses, and they come from the
two override functions below, applied to the same files compose mounts:
nothing here is a second copy of a rule or a route.
"""

from __future__ import annotations

import copy
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from ops import loadgen
from ops.receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTMANAGER_DIR = ROOT / "deploy" / "alertmanager"
# The compose service each scrape target names, and which local component stands in for it.
ALERTMANAGERS = ("alertmanager-1", "alertmanager-2")
COMPOSE_TARGETS = {
    "worker:8080": "worker",
    "localhost:9090": "prometheus",
    **{f"{name}:9093": name for name in ALERTMANAGERS},
}
COMPOSE_ONLY_JOBS = {"jaeger"}  # no Jaeger locally; the worker's traces go nowhere
COMPOSE_RECEIVER = "http://receiver:9095"
COMPOSE_FILE = ROOT / "docker-compose.yml"
# Flags whose values are container paths or addresses; the local stack sets its own.
LOCAL_FLAGS = (
    "--config.file",
    "--storage.tsdb.path",
    "--storage.path",
    "--web.listen-address",
    "--cluster.listen-address",
    "--cluster.peer",
)
# Liveness: what the stack waits for before it is started. A worker whose model cannot load is
# live but not ready, and the monitoring around it must still come up to say so.
LIVENESS = {"worker": "/healthz", "prometheus": "/-/ready", **{name: "/-/ready" for name in ALERTMANAGERS}}
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
# The venv's console script, by absolute path: the demo's user may not have the venv on PATH.
TOP_COMMAND = f"{Path(sys.executable).parent / 'enhancement-worker'} top"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def local_prometheus_config(compose_config: dict, ports: dict[str, int]) -> dict:
    """The compose Prometheus config with every target and rule path pointed at this machine."""
    config = copy.deepcopy(compose_config)
    config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
    for alertmanagers in config["alerting"]["alertmanagers"]:
        _point_at_local(alertmanagers["static_configs"], ports)
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in COMPOSE_ONLY_JOBS:
            continue
        _point_at_local(job["static_configs"], ports)
        jobs.append(job)
    config["scrape_configs"] = jobs
    return config


def _point_at_local(static_configs: list[dict], ports: dict[str, int]) -> None:
    for static in static_configs:
        static["targets"] = [f"127.0.0.1:{ports[COMPOSE_TARGETS[t]]}" for t in static["targets"]]


def local_alertmanager_config(compose_config: dict, receiver_base_url: str) -> dict:
    """The compose Alertmanager config with webhooks sent to the local receiver and paths made absolute."""
    config = copy.deepcopy(compose_config)
    config["templates"] = [str(ALERTMANAGER_DIR / pattern) for pattern in config["templates"]]
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            if not hook["url"].startswith(COMPOSE_RECEIVER + "/"):
                raise ValueError(f"webhook {hook['url']} is not the compose receiver {COMPOSE_RECEIVER}")
            hook["url"] = receiver_base_url + hook["url"][len(COMPOSE_RECEIVER) :]
    return config


def compose_flags(service: str, compose_file: Path = COMPOSE_FILE) -> list[str]:
    """The command-line flags compose gives a service, less those naming container paths or addresses."""
    command = yaml.safe_load(compose_file.read_text())["services"][service]["command"]
    return [flag for flag in command if flag.startswith("--") and flag.split("=")[0] not in LOCAL_FLAGS]


def alertmanager_binary() -> str:
    for name in ALERTMANAGER_BINARIES:
        if path := shutil.which(name):
            return path
    raise FileNotFoundError("Alertmanager is not installed: apt-get install prometheus-alertmanager")


@dataclass
class LocalStack:
    workdir: Path
    worker_env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    receiver: Receiver | None = None
    _commands: dict[str, tuple[list[str], dict[str, str] | None]] = field(default_factory=dict)

    def url(self, component: str) -> str:
        return f"http://127.0.0.1:{self.ports[component]}"

    def start(self, timeout_s: float = 180.0, *, worker_ready: bool = True) -> LocalStack:
        """Start everything; with ``worker_ready`` also wait for the worker's /readyz, not just its liveness."""
        try:
            self._start(timeout_s)
            if worker_ready:
                self.wait_until({"worker": "/readyz"}, timeout_s)
            return self
        except BaseException:
            self.stop()  # never leave half a stack running
            raise

    def _start(self, timeout_s: float) -> None:
        names = ("worker", "prometheus", *ALERTMANAGERS, *(f"{name}-cluster" for name in ALERTMANAGERS))
        self.ports = {name: free_port() for name in names}
        self.receiver = Receiver(log_path=self.workdir / "notifications.jsonl").start()
        prometheus_config = local_prometheus_config(yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text()), self.ports)
        alertmanager_config = local_alertmanager_config(
            yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text()), self.receiver.base_url
        )
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config, sort_keys=False))
        (self.workdir / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config, sort_keys=False))

        env = {**os.environ, "OTEL_TRACES_EXPORTER": "none", **self.worker_env}
        self._spawn(
            "worker",
            [
                sys.executable,
                "-m",
                "worker.cli",
                "--log-level",
                "INFO",
                "--log-format",
                "json",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports["worker"]),
            ],
            env,
        )
        for name in ALERTMANAGERS:
            peers = [f"--cluster.peer=127.0.0.1:{self.ports[f'{other}-cluster']}" for other in ALERTMANAGERS if other != name]
            self._spawn(
                name,
                [
                    alertmanager_binary(),
                    f"--config.file={self.workdir / 'alertmanager.yml'}",
                    f"--storage.path={self.workdir / (name + '-data')}",
                    f"--web.listen-address=127.0.0.1:{self.ports[name]}",
                    f"--cluster.listen-address=127.0.0.1:{self.ports[name + '-cluster']}",
                    *peers,
                    *compose_flags(name),
                ],
            )
        self._spawn(
            "prometheus",
            [
                "prometheus",
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
                *compose_flags("prometheus"),
            ],
        )
        self.wait_until(LIVENESS, timeout_s)

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        self.processes = [(n, p) for n, p in self.processes if n != name] + [(name, process)]
        self._commands[name] = (command, env)

    def kill(self, component: str, signum: int = signal.SIGKILL) -> None:
        """Stop one component abruptly, as a crash or an OOM kill would; for fault-injection tests."""
        process = dict(self.processes)[component]
        process.send_signal(signum)
        process.wait(30)

    def restart(self, component: str, timeout_s: float = 180.0) -> None:
        """Start a stopped component again with the command, environment, port and data it had."""
        if dict(self.processes)[component].poll() is None:
            raise RuntimeError(f"{component} is still running")
        self._spawn(component, *self._commands[component])
        self.wait_until({component: LIVENESS[component]}, timeout_s)

    def wait_until(self, checks: dict[str, str], timeout_s: float) -> None:
        """Wait until each component answers 200 on its path; fail at once if one of them exits."""
        deadline = time.monotonic() + timeout_s
        pending = dict(checks)
        while pending:
            for name, path in list(pending.items()):
                process = dict(self.processes)[name]
                if process.poll() is not None:
                    log = (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")
                try:
                    if httpx.get(self.url(name) + path, timeout=1).status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout_s:.0f} s: {', '.join(pending)}")
            time.sleep(0.2)

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process in reversed(self.processes):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        if self.receiver is not None:
            self.receiver.stop()


def run_demo(rate: float = 1.0) -> int:
    """`make demo`: the stack plus a loadgen, until Ctrl-C."""
    workdir = Path(tempfile.mkdtemp(prefix="enhancement-stack-"))
    stack = LocalStack(workdir)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        print("starting worker, Prometheus, Alertmanager and the receiver on 127.0.0.1 ...", flush=True)
        stack.start()
        print(
            f"""
  worker        {stack.url("worker")}   (/metrics, /readyz, /docs)
  prometheus    {stack.url("prometheus")}   (/alerts, /graph)
  alertmanager  {stack.url("alertmanager-1")} and {stack.url("alertmanager-2")} (one cluster)
  receiver      {stack.receiver.url if stack.receiver else "-"}   (notifications also in {workdir / "notifications.jsonl"})
  logs          {workdir}

In another terminal, the live view of this stack (q quits):
  {TOP_COMMAND} --prometheus {stack.url("prometheus")} --alertmanager {stack.url("alertmanager-1")}
  {TOP_COMMAND} --url {stack.url("worker")}

loadgen: {rate:g} clip/s of generated speech-like audio. Ctrl-C stops everything.
""",
            flush=True,
        )
        clips = loadgen.load_corpus(None, count=6, seconds=4.0)
        while not stop.is_set():
            report = loadgen.run(stack.url("worker"), rate=rate, duration_s=30, clips=clips, progress=False, stop=stop)
            print(report.summary().splitlines()[0] + "; " + report.summary().splitlines()[1], flush=True)
    finally:
        print("\nstopping ...", flush=True)
        stack.stop()
    return 0
