"""Probes never starve: with more clients waiting on /v1/enhance than the server has pool threads,
/healthz, /readyz and /metrics still answer within a Kubernetes probe's default 1 s timeout."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from helpers.worker import LiveWorker
from ops import loadgen

pytestmark = pytest.mark.live

# Starlette's thread pool has 40 threads; the queue holds twice that many waiting clients.
POOL_THREADS = 40
CAPACITY = 2 * POOL_THREADS
PROBE_TIMEOUT_SECONDS = 1.0
PROBES = ("/healthz", "/readyz", "/metrics")


def test_probes_answer_within_their_timeout_with_the_queue_deeper_than_the_thread_pool(tmp_path):
    control = tmp_path / "faults"
    control.write_text("hang")  # the model stalls: every admitted clip waits in the queue
    env = {
        "ENHANCEMENT_SERVICE__QUEUE_CAPACITY": str(CAPACITY),
        "ENHANCEMENT_SERVICE__WORKERS": "1",
        "ENHANCEMENT_FAULTS__CONTROL_FILE": str(control),
    }
    worker = LiveWorker(env, log_path=tmp_path / "worker.log").start()
    clip = loadgen.load_corpus(None, count=1, seconds=2.0)[0]
    try:
        with (
            httpx.Client(timeout=300, limits=httpx.Limits(max_connections=CAPACITY + 8)) as client,
            ThreadPoolExecutor(CAPACITY + 1) as pool,
        ):
            waiting = [
                pool.submit(client.post, worker.url + "/v1/enhance", content=clip, headers={"content-type": "audio/wav"})
                for _ in range(CAPACITY + 1)
            ]

            def depth() -> float:
                return httpx.get(worker.url + "/readyz", timeout=5).json()["components"]["queue"]["depth"]

            deadline = time.monotonic() + 60
            while depth() < CAPACITY and time.monotonic() < deadline:
                time.sleep(0.2)
            assert depth() == CAPACITY, "the queue is full: one clip hung in the model, the rest waiting"

            slowest: dict[str, float] = dict.fromkeys(PROBES, 0.0)
            for _ in range(20):
                for path in PROBES:
                    started = time.perf_counter()
                    answer = httpx.get(worker.url + path, timeout=PROBE_TIMEOUT_SECONDS)
                    slowest[path] = max(slowest[path], time.perf_counter() - started)
                    assert answer.status_code == 200, (path, answer.text)
                time.sleep(0.1)
            print("\nslowest probe answers (s):", {p: round(s, 3) for p, s in slowest.items()})
            assert all(s < PROBE_TIMEOUT_SECONDS for s in slowest.values())

            overflow = httpx.post(worker.url + "/v1/enhance", content=clip, headers={"content-type": "audio/wav"}, timeout=5)
            assert overflow.status_code == 429 and overflow.headers["retry-after"], "a full queue still refuses at once"
            control.write_text("")  # the stall clears
            codes = [future.result().status_code for future in waiting]
            assert codes == [200] * len(codes), "every admitted clip is answered once the model is back"
    finally:
        control.write_text("")
        threading.Thread(target=worker.terminate, daemon=True).start()
        worker.process.wait(120)
