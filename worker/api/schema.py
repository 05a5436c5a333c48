"""The HTTP contract as the OpenAPI document states it: bodies, errors, headers and the bearer scheme.

The routes read raw bytes (so that the size cap applies while streaming), which
FastAPI cannot describe on its own; this module says what they take and return,
so that /docs is complete and schemathesis can test the service against it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

ACCEPTED_CONTENT_TYPES = (
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/flac",
    "audio/x-flac",
    "audio/ogg",
    "application/ogg",
    "application/octet-stream",
)
OUTPUT_MEDIA_TYPES = ("audio/wav", "audio/flac")
BINARY = {"type": "string", "format": "binary"}


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, for a person.")
    reason: str = Field(description="A stable code for programs, the same as the `reason` label on the worker's metrics.")


class JobView(BaseModel):
    id: str
    state: str = Field(description="queued, running or done.")
    status_url: str
    audio_url: str
    outcome: str | None = Field(None, description="success, degraded, rejected or failed, once done.")
    error: str | None = None
    reason: str | None = None
    trace_id: str | None = None
    audio_duration_s: float | None = None
    processing_s: float | None = None
    methods: dict[str, str | None] | None = Field(None, description="The method each stage used, fallbacks included.")
    fallbacks: list[dict] | None = None


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    components: dict[str, dict] = Field(description="Per component: ok, and what it depends on.")


ERROR_DESCRIPTIONS = {
    401: "The bearer token is missing or wrong (only when the worker runs with a token file).",
    404: "No such job: never queued, or its result has been dropped after its retention.",
    409: "The job has not finished yet.",
    413: "The upload is larger than the worker's audio.max_input_bytes.",
    415: "The content type is not an accepted audio type.",
    422: "The upload is not usable audio (the reason says why); nothing was written.",
    429: "The queue is full; retry after Retry-After seconds.",
    500: "The clip failed inside the worker; the reason says where.",
    503: "The model is not loaded, or the worker is shutting down.",
}
RETRY_AFTER_HEADER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
RESULT_HEADERS = {
    "X-Clip-Id": {"description": "The clip's id, also on its log lines.", "schema": {"type": "string"}},
    "X-Enhancement-Outcome": {"description": "success or degraded (a fallback was used).", "schema": {"type": "string"}},
    "X-Trace-Id": {"description": "The OpenTelemetry trace of this clip, when traces are on.", "schema": {"type": "string"}},
    "X-Enhancement-Methods": {"description": "stage=method pairs, comma separated.", "schema": {"type": "string"}},
}


def errors(*codes: int) -> dict:
    documented = {}
    for code in codes:
        documented[code] = {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]}
        if code == 429:
            documented[code]["headers"] = RETRY_AFTER_HEADER
    return documented


def audio_upload() -> dict:
    """`openapi_extra` for a route whose body is one audio file, sent as is."""
    return {
        "requestBody": {
            "required": True,
            "description": "One audio file (WAV, FLAC or OGG), as the raw body.",
            "content": {media: {"schema": BINARY} for media in ACCEPTED_CONTENT_TYPES},
        }
    }


def audio_response(description: str) -> dict:
    return {"description": description, "headers": RESULT_HEADERS, "content": {media: {"schema": BINARY} for media in OUTPUT_MEDIA_TYPES}}
