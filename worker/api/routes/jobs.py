"""/v1/jobs: queue a clip, poll its state, collect its audio; from whichever replica answers."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from worker.answers import Answer
from worker.api.deps import RuntimeDep, Upload, authorise
from worker.api.errors import ApiReason, ServiceError
from worker.api.responses import finished_response, job_view
from worker.api.schema import JobView, audio_response, audio_upload, errors
from worker.jobs import JobState

router = APIRouter(prefix="/v1/jobs", dependencies=[Depends(authorise)])


@router.post(
    "",
    status_code=202,
    summary="Queue one clip",
    response_model=JobView,
    openapi_extra=audio_upload(),
    responses={
        202: {"description": "Queued; poll status_url.", "headers": {"Location": {"schema": {"type": "string"}}}},
        **errors(401, 413, 415, 422, 429, 503),
    },
)
async def submit_job(data: Upload, runtime: RuntimeDep, response: Response) -> JobView:
    if not data and runtime.pipeline is not None:
        # Refused now rather than accepted and failed later; the pipeline still counts it and says why.
        finished_response(Answer.of(await run_in_threadpool(runtime.process_now, data)), runtime.settings.output.format)
    record = await run_in_threadpool(runtime.admit_job, data)
    response.headers["Location"] = f"/v1/jobs/{record.id}"
    return job_view(record)


@router.get("/{job_id}", summary="Status of a queued clip", response_model=JobView, responses=errors(401, 404, 503))
def job_status(job_id: str, runtime: RuntimeDep) -> JobView:
    return job_view(runtime.find_job(job_id))


@router.get(
    "/{job_id}/audio",
    summary="Enhanced audio of a finished clip",
    response_class=Response,
    responses={200: audio_response("The enhanced clip."), **errors(401, 404, 409, 422, 500, 503)},
)
def job_audio(job_id: str, runtime: RuntimeDep) -> Response:
    record = runtime.find_job(job_id)
    if record.state is not JobState.DONE or record.answer is None:
        raise ServiceError(409, ApiReason.NOT_READY, f"job {job_id} is {record.state.value}")
    return finished_response(record.answer, runtime.settings.output.format)
