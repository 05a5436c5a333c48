import re
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from enhancement.config import SHIPPED_MODEL_DIR
from enhancement.model import checkpoint_identity
from helpers.audio_files import wav_bytes
from worker.api.app import create_app
from worker.runtime import VERSION, Runtime
from worker.settings import load_settings


def make_client(enhancer=None, environ=None, exporter=None):
    config = load_settings(environ=environ or {})
    runtime = Runtime(config, enhancer=enhancer, span_exporter=exporter or InMemorySpanExporter())
    return TestClient(create_app(runtime)), runtime


@pytest.fixture
def service(loaded_enhancer):
    client, runtime = make_client(loaded_enhancer)
    with client:
        yield client, runtime


@pytest.fixture(scope="module")
def clip(espeak):
    from recipes import corpus

    pair = corpus.held_out_pair(21, voice="en-029+m5", noise_kind="fan", snr_db=10.0, seconds=3.0)
    return wav_bytes(pair.noisy)


def metric(runtime, name, **labels):
    return runtime.registry.get_sample_value(name, labels) or 0.0


def test_enhance_returns_audio_with_outcome_and_trace_headers(service, clip):
    client, runtime = service
    response = client.post("/v1/enhance", content=clip, headers={"content-type": "audio/wav"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["x-enhancement-outcome"] == "success"
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-trace-id"])
    assert "enhancement=metricgan_plus" in response.headers["x-enhancement-methods"]
    assert response.content[:4] == b"RIFF"
    assert metric(runtime, "enhancement_http_responses_total", route="/v1/enhance", code="200") == 1


def test_bad_audio_is_422_with_a_reason_and_the_worker_keeps_serving(service, clip):
    client, runtime = service
    response = client.post("/v1/enhance", content=b"\x89PNG\r\n\x1a\n" + bytes(64), headers={"content-type": "application/octet-stream"})
    assert response.status_code == 422
    assert response.json()["reason"] == "undecodable" and response.json()["error"]
    assert metric(runtime, "enhancement_stage_errors_total", stage="decode", reason="undecodable") == 1
    assert client.post("/v1/enhance", content=clip).status_code == 200


def test_wrong_content_type_is_415_and_oversize_is_413(loaded_enhancer, clip):
    client, _ = make_client(loaded_enhancer, {"ENHANCEMENT_AUDIO__MAX_INPUT_BYTES": "2000"})
    with client:
        assert client.post("/v1/enhance", content=b"hello", headers={"content-type": "text/plain"}).status_code == 415
        response = client.post("/v1/enhance", content=clip, headers={"content-type": "audio/wav"})
        assert response.status_code == 413 and response.json()["reason"] == "too_large"


def test_bearer_token_is_enforced_on_v1_only(loaded_enhancer, clip, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    client, _ = make_client(loaded_enhancer, {"ENHANCEMENT_SERVICE__AUTH_TOKEN_FILE": str(token_file)})
    with client:
        assert client.post("/v1/enhance", content=clip).status_code == 401
        wrong = client.post("/v1/enhance", content=clip, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/jobs/abc", headers={"authorization": "Basic s3cret-token"}).status_code == 401
        ok = client.post("/v1/enhance", content=clip, headers={"authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
        assert client.get("/metrics").status_code == 200 and client.get("/healthz").status_code == 200
        assert "s3cret" not in client.get("/metrics").text + client.get("/readyz").text


def test_jobs_are_queued_polled_and_fetched(service, clip):
    client, _ = service
    submitted = client.post("/v1/jobs", content=clip)
    assert submitted.status_code == 202
    job = submitted.json()
    assert submitted.headers["location"] == job["status_url"]
    deadline_polls = 600
    while (status := client.get(job["status_url"]).json())["state"] != "done":
        deadline_polls -= 1
        assert deadline_polls, "job never finished"
        threading.Event().wait(0.05)
    assert status["outcome"] == "success" and status["methods"]["enhancement"] == "metricgan_plus"
    audio = client.get(job["audio_url"])
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    assert client.get("/v1/jobs/unknown").status_code == 404


class BlockingModel:
    name = "metricgan_plus"

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()

    def enhance(self, samples):
        self.started.set()
        self.release.wait(30)
        return samples


def test_a_full_queue_answers_429_with_retry_after(clip):
    model = BlockingModel()
    client, runtime = make_client(model, {"ENHANCEMENT_SERVICE__QUEUE_CAPACITY": "1", "ENHANCEMENT_SERVICE__WORKERS": "1"})
    with client:
        first = client.post("/v1/jobs", content=clip)
        assert model.started.wait(10)
        second = client.post("/v1/jobs", content=clip)
        third = client.post("/v1/jobs", content=clip)
        assert (first.status_code, second.status_code, third.status_code) == (202, 202, 429)
        assert third.headers["retry-after"] == "2" and third.json()["reason"] == "queue_full"
        assert client.get(f"/v1/jobs/{second.json()['id']}/audio").status_code == 409
        assert metric(runtime, "enhancement_queue_depth") == 1
        assert metric(runtime, "enhancement_queue_capacity") == 1
        model.release.set()


def test_readyz_reports_components_and_turns_503_without_a_model(service, tmp_path, clip):
    client, _ = service
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json()["components"]) >= {"pattern_detection", "model", "loudness", "resources", "telemetry"}
    shipped = checkpoint_identity(SHIPPED_MODEL_DIR)
    model = ready.json()["components"]["model"]
    assert (model["checkpoint"], model["checkpoint_sha256"]) == ("shipped", shipped.sha256)
    broken, runtime = make_client(None, {"ENHANCEMENT_MODEL__SOURCE": str(tmp_path)})
    with broken:
        response = broken.get("/readyz")
        assert response.status_code == 503
        assert response.json()["components"]["model"]["loaded"] is False
        assert response.json()["components"]["model"]["error"] == "model_unavailable"
        assert str(tmp_path) not in response.text, "readiness must not name paths"
        assert broken.post("/v1/enhance", content=clip).status_code == 503
        assert broken.get("/healthz").status_code == 200
        assert metric(runtime, "enhancement_model_loaded", model="metricgan_plus") == 0
        info = dict(checkpoint=tmp_path.name, checkpoint_sha256="missing", device="cpu", model="metricgan_plus", version=VERSION)
        assert metric(runtime, "enhancement_build_info", **info) == 1, "build_info tells a missing checkpoint from a shipped one"


def test_metrics_negotiate_text_and_openmetrics_with_exemplars(service, clip):
    client, _ = service
    client.post("/v1/enhance", content=clip)
    text = client.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    assert "trace_id" not in text.text
    om = client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert re.search(r'enhancement_stage_duration_seconds_bucket\{.*\} 1\.0 # \{trace_id="[0-9a-f]{32}"\}', om.text)
    assert om.text.rstrip().endswith("# EOF")


def test_openapi_document_lists_the_routes(service):
    client, _ = service
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/enhance", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/audio", "/healthz", "/readyz"} <= set(paths)


def test_unauthenticated_endpoints_name_no_secret_and_no_path(loaded_enhancer, clip, tmp_path):
    secret_dir = tmp_path / "private-config-dir"
    secret_dir.mkdir()
    token_file = secret_dir / "token"
    token_file.write_text("tok-9f8e7d6c5b4a\n")
    client, runtime = make_client(loaded_enhancer, {"ENHANCEMENT_SERVICE__AUTH_TOKEN_FILE": str(token_file)})
    auth = {"authorization": "Bearer tok-9f8e7d6c5b4a"}
    with client:
        client.post("/v1/enhance", content=clip, headers=auth)
        client.post("/v1/enhance", content=b"RIFF....WAVE", headers=auth)  # a rejection, so error series exist too
        client.post("/v1/enhance", content=clip, headers={"authorization": "Bearer tok-wrong"})
        exposed = {
            path: client.get(path, headers={"accept": accept}).text
            for path, accept in [
                ("/metrics", "text/plain"),
                ("/metrics", "application/openmetrics-text"),
                ("/healthz", "*/*"),
                ("/readyz", "*/*"),
                ("/openapi.json", "*/*"),
            ]
        }
    forbidden = [
        "tok-9f8e7d6c5b4a",
        "tok-wrong",
        str(secret_dir),
        str(runtime.settings.model.source),
        str(tmp_path),
        str(Path.home()),
        str(Path(__file__).resolve().parents[1]),
    ]
    for path, text in exposed.items():
        assert text, path
        leaked = [word for word in forbidden if word in text]
        assert not leaked, f"{path} exposes {leaked}"
        assert not re.search(r"(?<![\w.])/(?:root|home|etc|tmp|work|app|usr)/", text), f"{path} names a filesystem path"


def test_an_empty_job_is_refused_at_once_and_counted_with_its_reason(service):
    client, runtime = service
    response = client.post("/v1/jobs", content=b"", headers={"content-type": "audio/wav"})
    assert response.status_code == 422 and response.json()["reason"] == "empty"
    assert metric(runtime, "enhancement_requests_total", outcome="rejected") == 1
    assert metric(runtime, "enhancement_stage_errors_total", stage="decode", reason="empty") == 1
