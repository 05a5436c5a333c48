"""POST /v1/enhance: one clip in, the enhanced clip out, on the caller's connection."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from worker.api.deps import RuntimeDep, Upload, authorise
from worker.api.responses import finished_response
from worker.api.schema import audio_response, audio_upload, errors

router = APIRouter(prefix="/v1", dependencies=[Depends(authorise)])


@router.post(
    "/enhance",
    summary="Enhance one clip and return the audio",
    response_class=Response,
    openapi_extra=audio_upload(),
    responses={200: audio_response("The enhanced clip."), **errors(401, 413, 415, 422, 429, 500, 503)},
)
async def enhance(data: Upload, runtime: RuntimeDep) -> Response:
    job = runtime.admit(data, retain=False)
    await run_in_threadpool(job.done.wait)
    return finished_response(job.answer, runtime.settings.output.format)
