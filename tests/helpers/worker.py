"""Start the real worker (``enhancement-worker serve``) as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from ops.stack import free_port, worker_command


class LiveWorker:
    def __init__(self, env: dict[str, str] | None = None, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, "OTEL_TRACES_EXPORTER": "none", **(env or {})}
        # Open for the worker's whole life, closed in terminate().
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 120.0) -> LiveWorker:
        self.process = subprocess.Popen(
            worker_command(self.port),
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode} before becoming ready")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("worker did not become ready")

    def terminate(self, timeout_s: float = 90.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            if self._log is not subprocess.DEVNULL:
                self._log.close()
