"""How a finished clip is answered: audio with its result headers, or an error with its reason."""

from __future__ import annotations

from fastapi import Response

from enhancement.errors import Reason
from enhancement.result import Outcome
from worker.answers import Answer
from worker.api.errors import ServiceError
from worker.api.schema import JobView
from worker.jobstore import JobRecord

MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac"}


def result_headers(answer: Answer) -> dict[str, str]:
    headers = {"X-Clip-Id": answer.clip_id, "X-Enhancement-Outcome": answer.outcome}
    if answer.trace_id:
        headers["X-Trace-Id"] = answer.trace_id
    methods = ",".join(f"{stage}={method}" for stage, method in answer.methods.items() if method)
    if methods:
        headers["X-Enhancement-Methods"] = methods
    return headers


def finished_response(answer: Answer, output_format: str) -> Response:
    """The enhanced audio; a rejected clip is 422 and a failed one 500, each with the pipeline's reason."""
    headers = result_headers(answer)
    if answer.outcome == Outcome.REJECTED.value:
        raise ServiceError(422, answer.reason or Reason.INVALID_AUDIO, answer.error or "invalid audio", headers)
    if answer.outcome == Outcome.FAILED.value or answer.audio is None:
        raise ServiceError(500, answer.reason or Reason.INTERNAL, answer.error or "failed", headers)
    return Response(answer.audio, media_type=MEDIA_TYPES[output_format], headers=headers)


def job_view(record: JobRecord) -> JobView:
    view = JobView(id=record.id, state=record.state.value, status_url=f"/v1/jobs/{record.id}", audio_url=f"/v1/jobs/{record.id}/audio")
    answer = record.answer
    if answer is None:
        return view
    return view.model_copy(
        update={
            "outcome": answer.outcome,
            "error": answer.error,
            "reason": answer.reason,
            "trace_id": answer.trace_id,
            "audio_duration_s": answer.audio_duration_s,
            "processing_s": answer.processing_s,
            "methods": answer.methods,
            "fallbacks": answer.fallbacks,
        }
    )
