"""The HTTP application: the routers, the one error handler, response counting and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from worker.api.deps import read_token
from worker.api.errors import install_error_handler
from worker.api.routes import enhance, health, jobs
from worker.runtime import VERSION, Runtime


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(runtime.shutdown)

    app = FastAPI(
        title="enhancement-worker",
        version=VERSION,
        description="Speech enhancement: interruption repair, MetricGAN+, loudness, quality checks.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.token = read_token(runtime.settings.service.auth_token_file)
    install_error_handler(app)

    @app.middleware("http")
    async def count_responses(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        runtime.metrics.http_responses.labels(route=getattr(route, "path", "unmatched"), code=str(response.status_code)).inc()
        return response

    for router in (enhance.router, jobs.router, health.router):
        app.include_router(router)
    return app
