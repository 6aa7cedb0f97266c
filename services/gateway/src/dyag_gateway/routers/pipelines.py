"""Pipelines: the whole workflow on a catalog in one request (the guide's steps 1 to 7), its state kept in NATS KV."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from dyag_gateway import pipeline as P
from dyag_gateway.auth import require_scope
from dyag_gateway.errors import ApiError
from dyag_gateway.params import Id, Limit, Word, idempotency_key
from dyag_gateway.routers.jobs import SSE_HEARTBEAT_S, _sse

if TYPE_CHECKING:  # the runner is the app's (app.state.pipelines): a router only types it
    from dyag_gateway.pipeline import Pipelines

router = APIRouter(prefix="/pipelines", tags=["pipelines"])


def _pipelines(request: Request) -> Pipelines:
    pipelines = getattr(request.app.state, "pipelines", None)
    if pipelines is None:
        raise ApiError(
            503,
            "pipelines_unavailable",
            "pipelines need NATS (their state lives in its KV store), which the gateway "
            "could not reach at start-up; see /readyz",
        )
    return pipelines


@router.post(
    "",
    status_code=202,
    dependencies=[Depends(require_scope("write"))],
    summary="Run the whole workflow on a catalog: ingest, build, validate, fine-tune, index RAG, evaluate, compare",
)
async def create_pipeline(body: P.PipelineRequest, request: Request) -> JSONResponse:
    pipelines = _pipelines(request)
    limit = request.app.state.settings.max_upload_bytes
    declared = int(request.headers.get("content-length") or 0)
    if declared > limit * 4 // 3 + 1_000_000:  # the catalog travels base64-encoded in the body
        raise ApiError(
            413,
            "too_large",
            f"the request is {declared:,} bytes: its catalog is over the upload limit of {limit:,} bytes "
            "(DYAG_MAX_UPLOAD_BYTES)",
        )
    record = await pipelines.create(
        body,
        upload_limit=limit,
        correlation_id=request.headers.get("x-correlation-id", ""),
        idempotency_key=idempotency_key(request),
    )
    return JSONResponse(pipelines.view(record), status_code=202, headers={"Location": f"/pipelines/{record['id']}"})


@router.get("", summary="Pipelines, newest first")
async def list_pipelines(
    request: Request,
    status: Literal["", "queued", "running", "succeeded", "failed", "cancelled"] = "",
    limit: Limit = 50,
) -> dict:
    now = time.time()
    return {"pipelines": [P.summary_view(r, now) for r in await _pipelines(request).list(status=status, limit=limit)]}


@router.get(
    "/{pipeline_id}", summary="A pipeline: each step (status, job, timings, artifacts) and the comparison report"
)
async def get_pipeline(pipeline_id: Id, request: Request) -> dict:
    pipelines = _pipelines(request)
    return pipelines.view(await pipelines.get(pipeline_id))


@router.post(
    "/{pipeline_id}/cancel",
    dependencies=[Depends(require_scope("write"))],
    summary="Cancel a pipeline: its running steps' jobs are cancelled, what is done stays",
)
async def cancel_pipeline(pipeline_id: Id, request: Request) -> dict:
    pipelines = _pipelines(request)
    return pipelines.view(await pipelines.cancel(pipeline_id))


@router.get("/{pipeline_id}/report.{fmt}", summary="The comparison report of a finished pipeline (html, md or json)")
async def pipeline_report(pipeline_id: Id, fmt: Word, request: Request) -> Response:
    if fmt not in ("html", "md", "json"):
        raise ApiError(
            404, "unknown_format", f"reports come as report.html, report.md or report.json, not report.{fmt}"
        )
    content, media_type, filename = await _pipelines(request).report(pipeline_id, fmt)
    return Response(content, media_type=media_type, headers={"Content-Disposition": f'inline; filename="{filename}"'})


@router.get("/{pipeline_id}/events", summary="A pipeline's progress until it ends (server-sent events)")
async def pipeline_events(pipeline_id: Id, request: Request) -> StreamingResponse:
    pipelines = _pipelines(request)
    record = await pipelines.get(pipeline_id)  # 404 before streaming
    return StreamingResponse(_event_stream(request, pipelines, record), media_type="text/event-stream")


async def _event_stream(request: Request, pipelines: Pipelines, record: dict) -> AsyncIterator[bytes]:
    """The pipeline's view each time one of its jobs (or itself) changes, re-read every few seconds, until it ends."""
    changed = asyncio.Event()
    correlation_id, pipeline_id = record["correlation_id"], record["id"]

    async def on_event(msg) -> None:
        headers = msg.headers or {}
        if headers.get("ce-correlationid") == correlation_id or headers.get("ce-subject") == pipeline_id:
            changed.set()

    nc = request.app.state.nats
    sub = await nc.subscribe("dyag.events.job.>", cb=on_event) if nc is not None else None
    try:
        last_sent = 0.0
        while not await request.is_disconnected():
            current = pipelines.view(await pipelines.get(pipeline_id))
            yield _sse("pipeline", current)
            last_sent = time.monotonic()
            if current["status"] in ("succeeded", "failed", "cancelled"):
                yield _sse("end", {"id": pipeline_id, "status": current["status"]})
                return
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), timeout=min(3.0, SSE_HEARTBEAT_S))
            except TimeoutError:
                pass
            await asyncio.sleep(max(0.0, 0.5 - (time.monotonic() - last_sent)))  # at most two views a second
    finally:
        if sub is not None:
            await sub.unsubscribe()
