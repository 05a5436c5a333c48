"""Taking a replica out of nginx's rotation, as a rolling restart does, on a real nginx.

Two small HTTP servers stand in for the replicas: each answers with its own name, so the
test sees where nginx sent every request.
"""

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ops.stack import LocalStack, free_port, nginx_binary

REQUESTS = 40


def backend(name: str) -> ThreadingHTTPServer:
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            body = name.encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def balanced(tmp_path):
    try:
        nginx_binary()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    servers = {name: backend(name) for name in ("worker-1", "worker-2")}
    stack = LocalStack(tmp_path, replicas=2, monitoring=False)
    stack.ports = {name: server.server_address[1] for name, server in servers.items()} | {"nginx": free_port()}
    stack._start_nginx()
    try:
        stack.wait_until({"nginx": "/nginx-health"}, 10)
        yield stack
    finally:
        stack.stop()
        for server in servers.values():
            server.shutdown()


def answered_by(client: httpx.Client) -> Counter:
    return Counter(client.get("/").text for _ in range(REQUESTS))


def test_a_replica_out_of_rotation_gets_no_new_request_and_is_back_once_put_in(balanced):
    # One client throughout: its kept-alive connection, made before each reload, is closed by the
    # old nginx worker, and the client's next request goes through a new one.
    with httpx.Client(base_url=balanced.service_url) as client:
        assert set(answered_by(client)) == {"worker-1", "worker-2"}, "both replicas serve to begin with"
        balanced.set_rotation("worker-1", serving=False)
        down = f"server 127.0.0.1:{balanced.ports['worker-1']} max_fails=1 fail_timeout=5s down;"
        assert down in (balanced.workdir / "nginx.conf").read_text()
        assert answered_by(client) == Counter({"worker-2": REQUESTS})
        balanced.set_rotation("worker-1", serving=True)
        assert set(answered_by(client)) == {"worker-1", "worker-2"}


def test_rotation_names_only_the_stacks_own_replicas(balanced):
    with pytest.raises(ValueError, match="worker-9"):
        balanced.set_rotation("worker-9", serving=False)
