"""POST /v1/enhance: one clip in, the enhanced clip out, on the caller's connection."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Response

from worker.answers import Answer
from worker.api.deps import RuntimeDep, Upload, authorise
from worker.api.responses import finished_response
from worker.api.schema import audio_response, audio_upload, errors
from worker.jobs import Job

router = APIRouter(prefix="/v1", dependencies=[Depends(authorise)])


@router.post(
    "/enhance",
    summary="Enhance one clip and return the audio",
    response_class=Response,
    openapi_extra=audio_upload(),
    responses={200: audio_response("The enhanced clip."), **errors(401, 413, 415, 422, 429, 500, 503)},
)
async def enhance(data: Upload, runtime: RuntimeDep) -> Response:
    # The wait holds no thread: the worker thread resolves a future on this event loop. Waiting
    # in the shared thread pool would let a deep queue starve /metrics and the probes.
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[Job] = loop.create_future()

    def settle(job: Job) -> None:
        if not answered.done():  # a client that hung up cancelled it
            answered.set_result(job)

    def resolve(job: Job) -> None:
        loop.call_soon_threadsafe(settle, job)

    runtime.admit(data, then=resolve)
    job = await answered
    return finished_response(Answer.of(job.answer), runtime.settings.output.format)
