"""The local stack: workers, Prometheus, two clustered Alertmanagers, receiver and loadgen on 127.0.0.1.

For machines without Docker. It runs Debian's ``prometheus``,
``prometheus-alertmanager``, ``redis-server`` and ``nginx`` with the repository's
own config. With one replica the worker keeps its jobs in memory; with more, the
replicas share a Redis job queue behind nginx, as in docker-compose.yml. The only
differences from compose are the addresses, and they come from the override
functions below, applied to the same files compose mounts: nothing here is a
second copy of a rule, a route or a proxy setting.
"""

from __future__ import annotations

import copy
import json
import os
import re
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
import psutil
import redis
import yaml

from ops import loadgen
from ops.receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTMANAGER_DIR = ROOT / "deploy" / "alertmanager"
NGINX_CONFIG = ROOT / "deploy" / "nginx" / "nginx.conf"
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
# The compose DNS name that resolves to every worker replica; locally, a file_sd file lists them.
WORKER_DNS_NAME = "worker"
# Liveness: what the stack waits for before it is started. A worker whose model cannot load is
# live but not ready, and the monitoring around it must still come up to say so.
LIVENESS = {"worker": "/healthz", "prometheus": "/-/ready", **{name: "/-/ready" for name in ALERTMANAGERS}}
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
NGINX_LIVENESS = "/nginx-health"
# nginx's worker processes drop root to this user; their scratch folders must be theirs.
NGINX_UNPRIVILEGED_USER = ("nobody", "nogroup")
NGINX_TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
# The venv's console script, by absolute path: the demo's user may not have the venv on PATH.
TOP_COMMAND = f"{Path(sys.executable).parent / 'enhancement-worker'} top"


def worker_command(port: int) -> list[str]:
    """`enhancement-worker serve` on 127.0.0.1 with JSON logs, run by this interpreter."""
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    return [sys.executable, "-m", "worker.cli", "--log-level", "INFO", "--log-format", "json", *serve]


def _listens(process: psutil.Process, port: int) -> bool:
    """Whether the process still holds a listening socket on the port (False once it has exited)."""
    try:
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in process.net_connections("tcp"))
    except psutil.NoSuchProcess:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def local_prometheus_config(compose_config: dict, ports: dict[str, int], workers_file: Path) -> dict:
    """The compose Prometheus config with every target and rule path pointed at this machine.

    The worker job discovers its replicas by compose's DNS; here the same job reads them
    from ``workers_file`` (file_sd), which the stack writes with every replica's address.
    """
    config = copy.deepcopy(compose_config)
    config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
    for alertmanagers in config["alerting"]["alertmanagers"]:
        _point_at_local(alertmanagers["static_configs"], ports)
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in COMPOSE_ONLY_JOBS:
            continue
        if "dns_sd_configs" in job:
            names = [name for sd in job.pop("dns_sd_configs") for name in sd["names"]]
            if names != [WORKER_DNS_NAME]:
                raise ValueError(f"job {job['job_name']} discovers {names}; the local stack knows only {WORKER_DNS_NAME!r}")
            job["file_sd_configs"] = [{"files": [str(workers_file)], "refresh_interval": "5s"}]
        else:
            _point_at_local(job["static_configs"], ports)
        jobs.append(job)
    config["scrape_configs"] = jobs
    return config


def local_nginx_config(
    compose_text: str,
    *,
    listen_port: int,
    worker_ports: list[int],
    workdir: Path,
    user: str | None,
    temp: Path | None = None,
    out_of_rotation: frozenset[int] = frozenset(),
) -> str:
    """The compose nginx config with its upstream, listen address and paths pointed at this machine.

    Replicas whose ports are ``out_of_rotation`` are marked ``down``: nginx sends them nothing new.
    """
    server = re.search(r"^(\s*)server worker:8080( [^;]*);$", compose_text, flags=re.MULTILINE)
    listen = re.search(r"^(\s*)listen 8080;$", compose_text, flags=re.MULTILINE)
    if server is None or listen is None:
        raise ValueError("nginx.conf has no `server worker:8080 ...;` upstream or no `listen 8080;`")
    indent, options = server.groups()
    servers = "\n".join(f"{indent}server 127.0.0.1:{port}{options}{' down' if port in out_of_rotation else ''};" for port in worker_ports)
    text = compose_text[: server.start()] + servers + compose_text[server.end() :]
    text = re.sub(r"^(\s*)listen 8080;$", rf"\g<1>listen 127.0.0.1:{listen_port};", text, flags=re.MULTILINE)
    scratch = workdir / "nginx"
    head = f"pid {scratch / 'nginx.pid'};\nerror_log {scratch / 'error.log'} warn;\n"
    if user is not None:
        head += f"user {user};\n"
    temp_paths = "".join(f"  {kind}_temp_path {(temp or scratch) / kind};\n" for kind in NGINX_TEMP_DIRS)
    return head + text.replace("http {\n", "http {\n" + temp_paths, 1)


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


def nginx_binary() -> str:
    # Debian installs it in /usr/sbin, which is not on every user's PATH.
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if path is None:
        raise FileNotFoundError("nginx is not installed: apt-get install nginx")
    return path


def redis_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise FileNotFoundError("Redis is not installed: apt-get install redis-server")
    return path


def alertmanager_binary() -> str:
    for name in ALERTMANAGER_BINARIES:
        if path := shutil.which(name):
            return path
    raise FileNotFoundError("Alertmanager is not installed: apt-get install prometheus-alertmanager")


@dataclass
class LocalStack:
    workdir: Path
    worker_env: dict[str, str] = field(default_factory=dict)
    # One replica keeps its jobs in memory and is reached directly; more share Redis behind nginx.
    replicas: int = 1
    # False: the workers (and nginx and Redis for a fleet) alone, for benchmarks.
    monitoring: bool = True
    # Behind nginx sharing Redis; by default when there is more than one replica.
    as_fleet: bool | None = None
    # Flags added to compose's for Prometheus (a benchmark's admin API, say).
    prometheus_flags: list[str] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    receiver: Receiver | None = None
    _commands: dict[str, tuple[list[str], dict[str, str] | None]] = field(default_factory=dict)
    _cleanup: list[Path] = field(default_factory=list)
    # Replicas nginx sends nothing new: set_rotation() during a rolling restart.
    out_of_rotation: frozenset[str] = frozenset()
    _nginx_paths: tuple[str | None, Path] = (None, Path())

    @property
    def fleet(self) -> bool:
        return self.replicas > 1 if self.as_fleet is None else self.as_fleet

    @property
    def workers(self) -> list[str]:
        return [f"worker-{i}" for i in range(1, self.replicas + 1)] if self.fleet else ["worker"]

    @property
    def service_url(self) -> str:
        """Where clients send clips: the load balancer of a fleet, or the one worker."""
        return self.url("nginx" if self.fleet else "worker")

    def url(self, component: str) -> str:
        return f"http://127.0.0.1:{self.ports[component]}"

    def start(self, timeout_s: float = 180.0, *, worker_ready: bool = True) -> LocalStack:
        """Start everything; with ``worker_ready`` also wait for every worker's /readyz, not just its liveness."""
        try:
            self._start(timeout_s)
            if worker_ready:
                self.wait_until(dict.fromkeys(self.workers, "/readyz"), timeout_s)
            return self
        except BaseException:
            self.stop()  # never leave half a stack running
            raise

    def _start(self, timeout_s: float) -> None:
        names = list(self.workers)
        if self.monitoring:
            names += ["prometheus", *ALERTMANAGERS, *(f"{name}-cluster" for name in ALERTMANAGERS)]
        if self.fleet:
            names += ["redis", "nginx"]
        self.ports = {name: free_port() for name in names}
        env = {**os.environ, "OTEL_TRACES_EXPORTER": "none", **self._fleet_env(), **self.worker_env}
        if self.fleet:
            self._start_redis(timeout_s)
        for name in self.workers:
            self._spawn(name, worker_command(self.ports[name]), env)
        if self.fleet:
            self._start_nginx()
        if self.monitoring:
            self._start_monitoring()
        self.wait_until(self._liveness(), timeout_s)

    def _start_monitoring(self) -> None:
        self.receiver = Receiver(log_path=self.workdir / "notifications.jsonl").start()
        workers_file = self.workdir / "workers.json"
        targets = [f"127.0.0.1:{self.ports[name]}" for name in self.workers]
        workers_file.write_text(json.dumps([{"targets": targets, "labels": {}}]))
        compose_prometheus = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        prometheus_config = local_prometheus_config(compose_prometheus, self.ports, workers_file)
        alertmanager_config = local_alertmanager_config(
            yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text()), self.receiver.base_url
        )
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config, sort_keys=False))
        (self.workdir / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config, sort_keys=False))
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
                *self.prometheus_flags,
            ],
        )

    def _liveness(self) -> dict[str, str]:
        checks = {name: LIVENESS["worker"] for name in self.workers}
        if self.monitoring:
            checks |= {name: path for name, path in LIVENESS.items() if name != "worker"}
        if self.fleet:
            checks["nginx"] = NGINX_LIVENESS
        return checks

    def _fleet_env(self) -> dict[str, str]:
        if not self.fleet:
            return {}
        # Replicas share the cores: one torch thread each when there are more replicas than cores.
        threads = max(1, (os.cpu_count() or 1) // self.replicas)
        return {
            "ENHANCEMENT_JOBS__BACKEND": "redis",
            "ENHANCEMENT_JOBS__REDIS_URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
            "OMP_NUM_THREADS": str(threads),
        }

    def _start_redis(self, timeout_s: float) -> None:
        data = self.workdir / "redis-data"
        data.mkdir(exist_ok=True)
        # The same persistence as compose's Redis: append-only, fsync every second.
        command = [redis_binary(), "--bind", "127.0.0.1", "--port", str(self.ports["redis"]), "--dir", str(data)]
        self._spawn("redis", [*command, "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""])
        self.wait_for_redis(timeout_s)

    def wait_for_redis(self, timeout_s: float) -> None:
        client = redis.Redis(port=self.ports["redis"], socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if dict(self.processes)["redis"].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start; see " + str(self.workdir / "redis.log")) from None
                time.sleep(0.05)

    def _start_nginx(self) -> None:
        scratch = self.workdir / "nginx"
        scratch.mkdir(exist_ok=True)
        user, temp = None, scratch
        if os.geteuid() == 0:
            # As root, nginx's workers run as an unprivileged user, who may not be able to reach the
            # workdir; their folder for large uploads is their own, in the system's temp folder.
            user = " ".join(NGINX_UNPRIVILEGED_USER)
            temp = Path(tempfile.mkdtemp(prefix="enhancement-nginx-"))
            self._cleanup.append(temp)
            for path in (temp, *(temp / kind for kind in NGINX_TEMP_DIRS)):
                path.mkdir(exist_ok=True)
                shutil.chown(path, *NGINX_UNPRIVILEGED_USER)
        self._nginx_paths = (user, temp)
        self._write_nginx_config()
        # -e: the log nginx writes before it has read the config, which defaults to a root-only path.
        command = [nginx_binary(), "-p", str(scratch), "-e", str(scratch / "error.log"), "-c", str(self.workdir / "nginx.conf")]
        self._spawn("nginx", [*command, "-g", "daemon off;"])

    def _write_nginx_config(self) -> None:
        user, temp = self._nginx_paths
        config = local_nginx_config(
            NGINX_CONFIG.read_text(),
            listen_port=self.ports["nginx"],
            worker_ports=[self.ports[name] for name in self.workers],
            workdir=self.workdir,
            user=user,
            temp=temp,
            out_of_rotation=frozenset(self.ports[name] for name in self.out_of_rotation),
        )
        (self.workdir / "nginx.conf").write_text(config)

    def set_rotation(self, worker: str, *, serving: bool, timeout_s: float = 10.0) -> None:
        """Take a replica out of nginx's rotation, or put it back, and wait until nginx has reloaded.

        What Kubernetes does when it removes a terminating pod from its Service: nginx's passive
        checks only learn of a replica's restart from the connections it refuses, and a replica
        closing its socket resets those that were waiting to be accepted; both cost requests.
        """
        if worker not in self.workers:
            raise ValueError(f"{worker} is not one of {self.workers}")
        if not self.fleet:
            return  # one worker is reached directly, with nothing in front of it
        self.out_of_rotation = (self.out_of_rotation | {worker}) if not serving else (self.out_of_rotation - {worker})
        self._write_nginx_config()
        master = psutil.Process(dict(self.processes)["nginx"].pid)
        before = {child.pid for child in master.children()}
        master.send_signal(signal.SIGHUP)
        # Reloaded once new workers run and no old one still listens: from then on every new
        # connection is taken by a worker that read the new upstream list.
        deadline = time.monotonic() + timeout_s
        while not self._nginx_reloaded(master, before):
            if time.monotonic() > deadline:
                log = (self.workdir / "nginx" / "error.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"nginx did not reload within {timeout_s:.0f} s:\n{log}")
            time.sleep(0.05)

    def _nginx_reloaded(self, master: psutil.Process, before: set[int]) -> bool:
        children = master.children()
        started = any(child.pid not in before for child in children)
        return started and not any(child.pid in before and _listens(child, self.ports["nginx"]) for child in children)

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        self.processes = [(n, p) for n, p in self.processes if n != name] + [(name, process)]
        self._commands[name] = (command, env)

    def kill(self, component: str, signum: int = signal.SIGKILL, timeout_s: float = 30.0) -> None:
        """Stop one component abruptly, as a crash or an OOM kill would, or gracefully with SIGTERM."""
        process = dict(self.processes)[component]
        process.send_signal(signum)
        process.wait(timeout_s)

    def restart(self, component: str, timeout_s: float = 180.0) -> None:
        """Start a stopped component again with the command, environment, port and data it had."""
        if dict(self.processes)[component].poll() is None:
            raise RuntimeError(f"{component} is still running")
        self._spawn(component, *self._commands[component])
        if component == "redis":
            self.wait_for_redis(timeout_s)
        else:
            self.wait_until({component: self._liveness()[component]}, timeout_s)

    def rolling_restart(self, timeout_s: float = 180.0) -> list[float]:
        """Each worker in turn: out of rotation, SIGTERM, drain and exit, start, ready, back in rotation.

        Returns each replica's seconds from SIGTERM to ready again.
        """
        took = []
        for name in self.workers:
            self.set_rotation(name, serving=False)
            started = time.monotonic()
            self.kill(name, signal.SIGTERM, timeout_s=timeout_s)
            self.restart(name, timeout_s)
            self.wait_until({name: "/readyz"}, timeout_s)
            took.append(time.monotonic() - started)
            self.set_rotation(name, serving=True)
        return took

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
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)


def run_demo(rate: float = 1.0, replicas: int = 3) -> int:
    """`make demo`: the stack plus a loadgen, until Ctrl-C."""
    workdir = Path(tempfile.mkdtemp(prefix="enhancement-stack-"))
    stack = LocalStack(workdir, replicas=replicas)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        shape = f"{replicas} workers sharing Redis behind nginx" if stack.fleet else "one worker"
        print(f"starting {shape}, Prometheus, Alertmanager and the receiver on 127.0.0.1 ...", flush=True)
        stack.start()
        replica_lines = "".join(f"\n  {name:<13} {stack.url(name)}   (/metrics, /readyz)" for name in stack.workers) if stack.fleet else ""
        print(
            f"""
  worker        {stack.service_url}   (/v1/enhance, /v1/jobs, /docs){" through nginx" if stack.fleet else ""}{replica_lines}
  prometheus    {stack.url("prometheus")}   (/alerts, /graph)
  alertmanager  {stack.url("alertmanager-1")} and {stack.url("alertmanager-2")} (one cluster)
  receiver      {stack.receiver.url if stack.receiver else "-"}   (notifications also in {workdir / "notifications.jsonl"})
  logs          {workdir}

In another terminal, the live view of this stack (q quits):
  {TOP_COMMAND} --prometheus {stack.url("prometheus")} --alertmanager {stack.url("alertmanager-1")}
  {TOP_COMMAND} --url {stack.url(stack.workers[0])}

loadgen: {rate:g} clip/s of generated speech-like audio. Ctrl-C stops everything.
""",
            flush=True,
        )
        clips = loadgen.load_corpus(None, count=6, seconds=4.0)
        while not stop.is_set():
            report = loadgen.run(stack.service_url, rate=rate, duration_s=30, clips=clips, progress=False, stop=stop)
            print(report.summary().splitlines()[0] + "; " + report.summary().splitlines()[1], flush=True)
    finally:
        print("\nstopping ...", flush=True)
        stack.stop()
    return 0
