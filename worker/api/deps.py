"""What the routes depend on: the runtime on ``app.state``, the bearer token, the upload."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from enhancement.errors import Reason
from worker.api.errors import ApiReason, ServiceError
from worker.api.schema import ACCEPTED_CONTENT_TYPES
from worker.runtime import Runtime


def read_token(path: Path | None) -> str | None:
    """The bearer token from its file, read once at start-up; an empty file is a configuration error."""
    if path is None:
        return None
    token = path.read_text().strip()
    if not token:
        raise ValueError(f"auth token file {path} is empty")
    return token


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

bearer = HTTPBearer(auto_error=False, description="Required on /v1/* when the worker runs with service.auth_token_file.")


async def authorise(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    token: str | None = request.app.state.token
    if token is None:
        return
    supplied = credentials.credentials.strip() if credentials is not None else ""
    if not hmac.compare_digest(supplied.encode(), token.encode()):
        raise ServiceError(401, ApiReason.UNAUTHORIZED, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})


async def read_upload(request: Request, runtime: RuntimeDep) -> bytes:
    """The raw body, refused early when it is not audio or exceeds the size cap while it streams in."""
    cap = runtime.settings.audio.max_input_bytes
    content_type = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_CONTENT_TYPES:
        raise ServiceError(
            415, ApiReason.UNSUPPORTED_MEDIA_TYPE, f"content type {content_type!r} is not audio; send audio/wav, audio/flac or audio/ogg"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ServiceError(413, Reason.TOO_LARGE, f"upload of {declared} bytes exceeds the {cap}-byte limit")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise ServiceError(413, Reason.TOO_LARGE, f"upload exceeds the {cap}-byte limit")
    return bytes(body)


Upload = Annotated[bytes, Depends(read_upload)]
