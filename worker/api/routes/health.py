"""Liveness, readiness and the metrics scrape: the routes an orchestrator and Prometheus call."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import choose_encoder

from enhancement.resilience import BreakerState
from worker.api.deps import RuntimeDep
from worker.api.schema import Health, Readiness
from worker.readiness import read_memory

router = APIRouter()
OPTIONAL_COMPONENTS = ("telemetry", "jobs")


# These three are `async def` on purpose: they run on the event loop, never in the thread pool that
# job lookups share, so they answer within a probe's timeout at any queue depth and any load.
@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(runtime.registry), media_type=content_type)


@router.get("/healthz", summary="Liveness", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness, per component",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: a component says why."}},
)
async def readyz(runtime: RuntimeDep, response: Response) -> Readiness:
    settings = runtime.settings
    pipeline = runtime.pipeline
    breaker = pipeline.breaker.state if pipeline is not None else None
    model_ok = pipeline is not None and (breaker is not BreakerState.OPEN or not settings.service.ready_requires_closed_breaker)
    memory = read_memory()
    components: dict[str, dict[str, Any]] = {
        "pattern_detection": {"ok": True, "enabled": settings.patterns.enabled},
        "model": {
            "ok": model_ok,
            "loaded": pipeline is not None,
            "breaker": breaker.value if breaker else None,
            "error": runtime.model_error,
            "checkpoint": runtime.checkpoint.name,
            "checkpoint_sha256": runtime.checkpoint.sha256,
        },
        "loudness": {"ok": True, "gain_ratio": settings.loudness.gain_ratio, "ceiling_dbtp": settings.loudness.ceiling_dbtp},
        "resources": {"ok": memory.enough, "memory_available_bytes": memory.available_bytes, "gpus": runtime.gpus.gpu_count},
        "telemetry": {"ok": True, "traces_exported": runtime.traces_configured},
        "queue": {"ok": runtime.queue.accepting, "depth": runtime.queue.depth, "capacity": runtime.queue.capacity},
        "jobs": runtime.jobs.health(),
    }
    # Reported, never required: a dead collector or job store must not take the worker out of
    # service, since /v1/enhance needs neither.
    ready = all(c["ok"] for name, c in components.items() if name not in OPTIONAL_COMPONENTS)
    response.status_code = 200 if ready else 503
    return Readiness(ready=ready, components=components)
