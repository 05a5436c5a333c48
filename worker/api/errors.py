"""One error type for the HTTP layer, and the one handler that turns it into a response.

Every refusal is JSON ``{"error": ..., "reason": ...}``. The pipeline's own
reasons (``enhancement.errors.Reason``) pass through unchanged; the HTTP
layer adds the few that only it can give, listed in ``ApiReason``.
"""

from __future__ import annotations

from enum import Enum

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from enhancement.errors import Reason


class ApiReason(str, Enum):
    """Reasons only the HTTP layer gives; everything else is a pipeline ``Reason``."""

    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    NOT_READY = "not_ready"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    QUEUE_FULL = "queue_full"
    DRAINING = "draining"
    JOB_STORE_UNAVAILABLE = "job_store_unavailable"


class ServiceError(Exception):
    """An HTTP error response: status, a stable reason, a message for a person, optional headers."""

    def __init__(self, status: int, reason: Reason | ApiReason | str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason.value if isinstance(reason, Enum) else reason
        self.message = message
        self.headers = headers


def error_response(status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "reason": reason}, status_code=status, headers=headers)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(exc.status, exc.reason, exc.message, exc.headers)


def install_error_handler(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _handle)
