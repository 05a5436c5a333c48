"""How a finished clip is answered: audio with its result headers, or an error with its reason."""

from __future__ import annotations

from fastapi import Response

from enhancement.errors import Reason
from enhancement.result import Outcome
from worker.api.errors import ServiceError
from worker.api.schema import JobView
from worker.jobs import Job, JobState, Traced

MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac"}


def result_headers(answer: Traced) -> dict[str, str]:
    result = answer.processed.result
    headers = {"X-Clip-Id": result.clip_id, "X-Enhancement-Outcome": result.outcome.value}
    if answer.trace_id:
        headers["X-Trace-Id"] = answer.trace_id
    methods = ",".join(f"{s.name}={s.method}" for s in result.stages if s.method)
    if methods:
        headers["X-Enhancement-Methods"] = methods
    return headers


def finished_response(answer: Traced | None, output_format: str) -> Response:
    """The enhanced audio; a rejected clip is 422 and a failed one 500, each with the pipeline's reason."""
    if answer is None:
        raise ServiceError(500, Reason.INTERNAL, "the clip could not be processed")
    result = answer.processed.result
    headers = result_headers(answer)
    if result.outcome is Outcome.REJECTED:
        raise ServiceError(422, result.error_reason or Reason.INVALID_AUDIO, result.error or "invalid audio", headers)
    if result.outcome is Outcome.FAILED:
        raise ServiceError(500, result.error_reason or Reason.INTERNAL, result.error or "failed", headers)
    return Response(answer.processed.encoded, media_type=MEDIA_TYPES[output_format], headers=headers)


def job_view(job: Job) -> JobView:
    view = JobView(id=job.id, state=job.state.value, status_url=f"/v1/jobs/{job.id}", audio_url=f"/v1/jobs/{job.id}/audio")
    if job.state is not JobState.DONE:
        return view
    if job.answer is None:
        return view.model_copy(update={"outcome": Outcome.FAILED.value, "error": "internal error"})
    result = job.answer.processed.result
    return view.model_copy(
        update={
            "outcome": result.outcome.value,
            "error": result.error,
            "reason": result.error_reason,
            "trace_id": job.answer.trace_id,
            "audio_duration_s": result.audio_duration_s,
            "processing_s": result.processing_s,
            "methods": {s.name: s.method for s in result.stages},
            "fallbacks": [f.__dict__ for f in result.fallbacks],
        }
    )
