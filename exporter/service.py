"""The HTTP service: synchronous and queued enhancement, metrics, health and readiness."""

from __future__ import annotations

import hmac
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client.exposition import choose_encoder
from starlette.concurrency import run_in_threadpool

from enhancement.errors import QueueFull
from enhancement.pipeline import Processed
from enhancement.resilience import BreakerState
from enhancement.result import Outcome
from exporter.api_schema import ACCEPTED_CONTENT_TYPES, Health, JobView, Readiness, audio_response, audio_upload, errors
from exporter.jobs import Job, JobState
from exporter.readiness import MIN_AVAILABLE_MEMORY_BYTES
from exporter.runtime import VERSION, Runtime

logger = logging.getLogger(__name__)

MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac"}
# A client told to come back should wait about one clip's processing time.
RETRY_AFTER_SECONDS = 2


def _error(status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "reason": reason}, status_code=status, headers=headers)


def _read_token(path: Path | None) -> str | None:
    if path is None:
        return None
    token = path.read_text().strip()
    if not token:
        raise ValueError(f"auth token file {path} is empty")
    return token


def _result_headers(processed: Processed) -> dict[str, str]:
    result = processed.result
    headers = {"X-Clip-Id": result.clip_id, "X-Enhancement-Outcome": result.outcome.value}
    if result.trace_id:
        headers["X-Trace-Id"] = result.trace_id
    methods = ",".join(f"{s.name}={s.method}" for s in result.stages if s.method)
    if methods:
        headers["X-Enhancement-Methods"] = methods
    return headers


def _job_view(job: Job) -> dict:
    view = {"id": job.id, "state": job.state.value, "status_url": f"/v1/jobs/{job.id}", "audio_url": f"/v1/jobs/{job.id}/audio"}
    if job.state is JobState.DONE:
        if job.processed is None:
            view.update(outcome=Outcome.FAILED.value, error="internal error")
        else:
            result = job.processed.result
            view.update(
                outcome=result.outcome.value,
                error=result.error,
                reason=result.error_reason,
                trace_id=result.trace_id,
                audio_duration_s=result.audio_duration_s,
                processing_s=result.processing_s,
                methods={s.name: s.method for s in result.stages},
                fallbacks=[f.__dict__ for f in result.fallbacks],
            )
    return view


def create_app(runtime: Runtime) -> FastAPI:
    config = runtime.config
    token = _read_token(config.service.auth_token_file)
    cap = config.audio.max_input_bytes
    media_type = MEDIA_TYPES[config.output.format]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await run_in_threadpool(runtime.shutdown)

    app = FastAPI(
        title="enhancement-worker",
        version=VERSION,
        description="Speech enhancement: interruption repair, MetricGAN+, loudness, quality checks.",
        lifespan=lifespan,
    )

    @app.middleware("http")
    async def count_responses(request: Request, call_next):
        response = await call_next(request)
        route = request.scope.get("route")
        runtime.metrics.http_responses.labels(route=getattr(route, "path", "unmatched"), code=str(response.status_code)).inc()
        return response

    bearer = HTTPBearer(auto_error=False, description="Required on /v1/* when the worker runs with service.auth_token_file.")

    def authorise(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if token is None:
            return
        supplied = credentials.credentials.strip() if credentials is not None else ""
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            raise HTTPException(401, detail="missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    async def read_upload(request: Request) -> bytes:
        content_type = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
        if content_type not in ACCEPTED_CONTENT_TYPES:
            raise HTTPException(415, detail=f"content type {content_type!r} is not audio; send audio/wav, audio/flac or audio/ogg")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise HTTPException(413, detail=f"upload of {declared} bytes exceeds the {cap}-byte limit")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > cap:
                raise HTTPException(413, detail=f"upload exceeds the {cap}-byte limit")
        return bytes(body)

    def admit(data: bytes, retain: bool) -> Job | JSONResponse:
        if runtime.pipeline is None:
            return _error(503, "model_unavailable", f"model not loaded ({runtime.model_error or 'model_unavailable'}); see the worker's log")
        try:
            return runtime.queue.submit(data, retain=retain)
        except QueueFull as exc:
            status = 503 if exc.reason == "draining" else 429
            return _error(status, exc.reason, str(exc), {"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        reason = {401: "unauthorized", 404: "not_found", 409: "not_ready", 413: "too_large", 415: "unsupported_media_type"}
        return _error(exc.status_code, reason.get(exc.status_code, "http_error"), str(exc.detail), exc.headers)

    @app.post("/v1/enhance", dependencies=[Depends(authorise)], summary="Enhance one clip and return the audio",
              response_class=Response, openapi_extra=audio_upload(),
              responses={200: audio_response("The enhanced clip."), **errors(401, 413, 415, 422, 429, 500, 503)})
    async def enhance(request: Request):
        admitted = admit(await read_upload(request), retain=False)
        if isinstance(admitted, JSONResponse):
            return admitted
        await run_in_threadpool(admitted.done.wait)
        return _finished_response(admitted.processed)

    def _finished_response(processed: Processed | None):
        if processed is None:
            return _error(500, "internal", "the clip could not be processed")
        headers = _result_headers(processed)
        result = processed.result
        if result.outcome is Outcome.REJECTED:
            return JSONResponse({"error": result.error, "reason": result.error_reason}, status_code=422, headers=headers)
        if result.outcome is Outcome.FAILED:
            return JSONResponse({"error": result.error, "reason": result.error_reason}, status_code=500, headers=headers)
        return Response(processed.encoded, media_type=media_type, headers=headers)

    @app.post("/v1/jobs", status_code=202, dependencies=[Depends(authorise)], summary="Queue one clip",
              response_model=JobView, openapi_extra=audio_upload(),
              responses={202: {"description": "Queued; poll status_url.", "headers": {"Location": {"schema": {"type": "string"}}}},
                         **errors(401, 413, 415, 422, 429, 503)})
    async def submit_job(request: Request):
        data = await read_upload(request)
        if not data and runtime.pipeline is not None:
            # Refused now rather than accepted and failed later; the pipeline still counts it and says why.
            return _finished_response(await run_in_threadpool(runtime.process_now, data))
        admitted = admit(data, retain=True)
        if isinstance(admitted, JSONResponse):
            return admitted
        return JSONResponse(_job_view(admitted), status_code=202, headers={"Location": f"/v1/jobs/{admitted.id}"})

    def find(job_id: str) -> Job:
        job = runtime.queue.get(job_id)
        if job is None:
            raise HTTPException(404, detail=f"no job {job_id}")
        return job

    @app.get("/v1/jobs/{job_id}", dependencies=[Depends(authorise)], summary="Status of a queued clip",
             response_model=JobView, responses=errors(401, 404))
    def job_status(job_id: str):
        return _job_view(find(job_id))

    @app.get("/v1/jobs/{job_id}/audio", dependencies=[Depends(authorise)], summary="Enhanced audio of a finished clip",
             response_class=Response,
             responses={200: audio_response("The enhanced clip."), **errors(401, 404, 409, 422, 500)})
    def job_audio(job_id: str):
        job = find(job_id)
        if job.state is not JobState.DONE:
            raise HTTPException(409, detail=f"job {job_id} is {job.state.value}")
        return _finished_response(job.processed)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request):
        encoder, content_type = choose_encoder(request.headers.get("accept"))
        return Response(encoder(runtime.registry), media_type=content_type)

    @app.get("/healthz", summary="Liveness", response_model=Health)
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness, per component", response_model=Readiness,
             responses={503: {"model": Readiness, "description": "Not ready: a component says why."}})
    def readyz():
        import psutil

        pipeline = runtime.pipeline
        breaker = pipeline.breaker.state if pipeline is not None else None
        model_ok = pipeline is not None and (breaker is not BreakerState.OPEN or not config.service.ready_requires_closed_breaker)
        available = psutil.virtual_memory().available
        components = {
            "pattern_detection": {"ok": True, "enabled": config.patterns.enabled},
            "model": {
                "ok": model_ok,
                "loaded": pipeline is not None,
                "breaker": breaker.value if breaker else None,
                "error": runtime.model_error,
            },
            "loudness": {"ok": True, "gain_ratio": config.loudness.gain_ratio, "ceiling_dbtp": config.loudness.ceiling_dbtp},
            "resources": {"ok": available >= MIN_AVAILABLE_MEMORY_BYTES, "memory_available_bytes": available, "gpus": runtime.gpus.gpu_count},
            "telemetry": {"ok": True, "traces_exported": runtime.traces_configured},
            "queue": {"ok": runtime.queue.accepting, "depth": runtime.queue.depth, "capacity": runtime.queue.capacity},
        }
        ready = all(c["ok"] for name, c in components.items() if name != "telemetry")
        return JSONResponse({"ready": ready, "components": components}, status_code=200 if ready else 503)

    return app
