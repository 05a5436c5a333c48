"""A notification receiver for Alertmanager's webhook: logs every notification it gets.

It is the demo receiver of the stack (docker compose and the local stack) and the
witness of the live alerting tests. POST /alerts takes Alertmanager's webhook JSON (and
POST /escalations the same, from the escalation route: each entry names its receiver);
GET /alerts returns everything received so far, each with its arrival time.

Alertmanager promises at-least-once delivery: two clustered replicas each send a
notification when their gossip has not yet told them the other did. The receiver
counts such duplicates (the same group, status and alerts again within
``DUPLICATE_WINDOW_SECONDS``) and marks them, so a test or an operator can report
them; GET /stats returns the counts.

It is also the dead man's switch. Alertmanager posts the always-firing Watchdog to
POST /heartbeat about every 30 s; when no heartbeat has come for
``heartbeat_timeout_s``, Prometheus or Alertmanager is down and nothing else can say
so, so the receiver raises ``WatchdogHeartbeatMissing`` itself (logged and recorded
like any notification), and resolves it when heartbeats return. It arms on the
first heartbeat, so a stack that is still starting does not trip it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ops import monitoring

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
# Alertmanager sends the Watchdog every 30-45 s (group_interval 15s, repeat_interval 30s), and
# keeps sending it for up to 60 s after Prometheus's last evaluation (4 x its 15 s resend delay):
# 100 s is two missed heartbeats plus slack, so one late notification never trips the switch.
DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 100.0
HEARTBEAT_CHECK_INTERVAL_SECONDS = 1.0
MISSING_HEARTBEAT_ALERT = "WatchdogHeartbeatMissing"
# A cluster peer that missed the other's send notifies up to its peer timeout (15 s) later; a
# genuine repeat comes no sooner than the shortest repeat interval (30 s, the Watchdog's).
DUPLICATE_WINDOW_SECONDS = 25.0


class Receiver:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: Path | None = None,
        heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_SECONDS,
    ) -> None:
        if heartbeat_timeout_s <= 0:
            raise ValueError(f"heartbeat_timeout_s must be positive, got {heartbeat_timeout_s}")
        self.received: list[dict] = []
        self._lock = threading.Lock()
        self._log_path = log_path
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.last_heartbeat: float | None = None
        self._heartbeat_missing = False
        self.duplicates = 0
        self._last_seen: dict[tuple, float] = {}
        self._stopped = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                if self.path not in ("/alerts", "/escalations", "/heartbeat"):
                    self.send_error(404)
                    return
                if not 0 < length <= MAX_BODY_BYTES:
                    self.send_error(400)
                    return
                try:
                    payload = json.loads(self.rfile.read(length))
                except ValueError:
                    self.send_error(400, "body is not JSON")
                    return
                if self.path == "/heartbeat":
                    receiver.heartbeat()
                receiver.record(payload, endpoint=self.path)
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/alerts":
                    body = json.dumps(receiver.snapshot()).encode()
                elif self.path == "/stats":
                    body = json.dumps(receiver.stats()).encode()
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

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = self._server.server_address[1]
        self.base_url = f"http://{host}:{self.port}"
        self.url = self.base_url + "/alerts"

    def record(self, payload: dict, endpoint: str = "/alerts") -> None:
        now = time.time()
        entry = {"received_at": now, **payload}
        key = notification_key(endpoint, payload)
        with self._lock:
            last = self._last_seen.get(key)
            self._last_seen = {k: seen for k, seen in self._last_seen.items() if now - seen <= DUPLICATE_WINDOW_SECONDS}
            self._last_seen[key] = now
            if last is not None and now - last <= DUPLICATE_WINDOW_SECONDS:
                entry["duplicate"] = True
                self.duplicates += 1
            self.received.append(entry)
        if entry.get("duplicate"):
            # A doubled heartbeat is harmless (both replicas' repeat timers can fire in the same
            # second); a doubled alert is worth a warning.
            level = logging.INFO if endpoint == "/heartbeat" else logging.WARNING
            sender = payload.get("externalURL")
            logger.log(level, "duplicate notification %s (%s) from %s", payload.get("groupKey"), payload.get("status"), sender)
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

    def heartbeat(self) -> None:
        with self._lock:
            self.last_heartbeat = time.time()

    def check_heartbeat(self, now: float | None = None) -> None:
        """Raise or resolve WatchdogHeartbeatMissing; the watcher thread calls this every second."""
        now = time.time() if now is None else now
        with self._lock:
            if self.last_heartbeat is None:
                return
            silent_s = now - self.last_heartbeat
            missing = silent_s > self.heartbeat_timeout_s
            if missing == self._heartbeat_missing:
                return
            self._heartbeat_missing = missing
        status = "firing" if missing else "resolved"
        self.record(
            {
                "receiver": "dead-mans-switch",
                "status": status,
                "alerts": [
                    {
                        "status": status,
                        "labels": {"alertname": MISSING_HEARTBEAT_ALERT, "severity": "critical", "service": monitoring.SERVICE},
                        "annotations": {
                            "summary": "The Watchdog heartbeat stopped: Prometheus or Alertmanager is down.",
                            "description": f"No Watchdog notification for {silent_s:.0f} s (limit {self.heartbeat_timeout_s:g} s).",
                            "runbook_url": monitoring.runbook_url(MISSING_HEARTBEAT_ALERT),
                        },
                    }
                ],
            }
        )

    def _watch_heartbeat(self) -> None:
        while not self._stopped.wait(HEARTBEAT_CHECK_INTERVAL_SECONDS):
            self.check_heartbeat()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"notifications": len(self.received), "duplicates": self.duplicates}

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.received)

    def start(self) -> Receiver:
        threading.Thread(target=self.serve_forever, name="receiver", daemon=True).start()
        return self

    def serve_forever(self) -> None:
        threading.Thread(target=self._watch_heartbeat, name="dead-mans-switch", daemon=True).start()
        self._server.serve_forever()

    def stop(self) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()


def notification_key(endpoint: str, payload: dict) -> tuple:
    """What makes two notifications the same one: where it went, its group, status and alerts."""
    alerts = tuple(
        sorted(
            (alert.get("fingerprint", ""), alert.get("status", ""), alert.get("startsAt", ""))
            for alert in payload.get("alerts", [])
            if isinstance(alert, dict)
        )
    )
    return (endpoint, str(payload.get("groupKey")), str(payload.get("status")), alerts)
