"""A notification receiver for Alertmanager's webhook: logs every notification it gets.

It is the demo receiver of the stack (docker compose and the local stack) and the
witness of the live alerting tests. POST /alerts takes Alertmanager's webhook JSON;
GET /alerts returns everything received so far, each with its arrival time.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


class Receiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, log_path: Path | None = None) -> None:
        self.received: list[dict] = []
        self._lock = threading.Lock()
        self._log_path = log_path
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                if self.path != "/alerts" or not 0 < length <= MAX_BODY_BYTES:
                    self.send_error(404 if self.path != "/alerts" else 400)
                    return
                try:
                    payload = json.loads(self.rfile.read(length))
                except ValueError:
                    self.send_error(400, "body is not JSON")
                    return
                receiver.record(payload)
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/alerts":
                    body = json.dumps(receiver.snapshot()).encode()
                elif self.path == "/healthz":
                    body = b'{"status": "ok"}'
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}/alerts"

    def record(self, payload: dict) -> None:
        entry = {"received_at": time.time(), **payload}
        with self._lock:
            self.received.append(entry)
        for alert in payload.get("alerts", []):
            labels = alert.get("labels", {})
            logger.warning(
                "%s %s severity=%s service=%s: %s",
                alert.get("status", payload.get("status", "?")).upper(),
                labels.get("alertname"),
                labels.get("severity"),
                labels.get("service"),
                alert.get("annotations", {}).get("summary", ""),
            )
        if self._log_path is not None:
            with self._log_path.open("a") as out:
                out.write(json.dumps(entry) + "\n")

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.received)

    def start(self) -> "Receiver":
        threading.Thread(target=self._server.serve_forever, name="receiver", daemon=True).start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
