"""Jobs of every service: list, show, cancel, logs, and live progress as server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from dyag.v1 import events_pb2, jobs_pb2
from dyag_gateway.auth import require_scope
from dyag_gateway.convert import to_json
from dyag_gateway.errors import ApiError
from dyag_gateway.params import Filter, Id, Limit
from dyag_runtime.events import Envelope
from dyag_runtime.jobs import STATUS_NAMES, TERMINAL, proto_to_dict

router = APIRouter(prefix="/jobs", tags=["jobs"])
_STATUS_OF_NAME = {v: k for k, v in STATUS_NAMES.items()}
SSE_HEARTBEAT_S = 15.0
LIST_TIMEOUT_S = 20.0  # a service busy with a CPU-bound job still answers, slowly


@router.get("", summary="Jobs of every service, newest first")
async def list_jobs(
    request: Request, service: Filter = "", kind: Filter = "", status: Filter = "", limit: Limit = 100
) -> dict:
    backends = request.app.state.backends
    if service and service not in backends.services:
        raise ApiError(
            422,
            "unknown_service",
            f"service: this deployment runs no service {service!r}; its services are {', '.join(backends.services)}",
        )
    if status and status not in _STATUS_OF_NAME:
        raise ApiError(
            422, "unknown_status", f"status: {status!r} is not a job status; one of {', '.join(_STATUS_OF_NAME)}"
        )
    services = [service] if service else list(backends.services)
    query = jobs_pb2.ListJobsRequest(kind=kind, status=_STATUS_OF_NAME.get(status, 0), limit=limit)

    unavailable: dict[str, str] = {}

    async def one(name: str) -> list[dict]:
        try:
            reply = await backends.jobs(name).ListJobs(query, timeout=LIST_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            # Said, not hidden: a busy or stopped service's jobs are missing from this page, not gone.
            unavailable[name] = exc.details() or exc.code().name
            return []
        return [to_json(j) for j in reply.jobs]

    jobs = [j for batch in await asyncio.gather(*(one(n) for n in services)) for j in batch]
    jobs.sort(key=lambda j: j.get("created_at", ""), reverse=True)
    return {"jobs": jobs[:limit], "unavailable": unavailable}


@router.get("/events", summary="Every job event, live (server-sent events)")
async def all_job_events(request: Request) -> StreamingResponse:
    return StreamingResponse(_event_stream(request, job_id=None), media_type="text/event-stream")


@router.get("/{job_id}", summary="One job: status, progress, result, artifacts")
async def get_job(job_id: Id, request: Request) -> dict:
    backends = request.app.state.backends
    return to_json(await backends.jobs(backends.service_of_job(job_id)).GetJob(jobs_pb2.GetJobRequest(id=job_id)))


@router.post(
    "/{job_id}/cancel", dependencies=[Depends(require_scope("write"))], summary="Cancel a queued or running job"
)
async def cancel_job(job_id: Id, request: Request) -> dict:
    backends = request.app.state.backends
    return to_json(await backends.jobs(backends.service_of_job(job_id)).CancelJob(jobs_pb2.CancelJobRequest(id=job_id)))


@router.get("/{job_id}/logs", summary="A job's log lines")
async def job_logs(
    job_id: Id, request: Request, tail: int = Query(0, ge=0, le=1_000_000, description="the last N lines; 0: all")
) -> dict:
    backends = request.app.state.backends
    reply = await backends.jobs(backends.service_of_job(job_id)).GetJobLogs(
        jobs_pb2.GetJobLogsRequest(id=job_id, tail=tail)
    )
    return {"lines": [to_json(line) for line in reply.lines]}


@router.get("/{job_id}/events", summary="A job's progress until it ends (server-sent events)")
async def job_events(job_id: Id, request: Request) -> StreamingResponse:
    backends = request.app.state.backends
    await backends.jobs(backends.service_of_job(job_id)).GetJob(
        jobs_pb2.GetJobRequest(id=job_id)
    )  # 404 before streaming
    return StreamingResponse(_event_stream(request, job_id), media_type="text/event-stream")


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _event_stream(request: Request, job_id: str | None) -> AsyncIterator[bytes]:
    """Job events from NATS; for one job, its current state first and a re-read every few seconds."""
    queue: asyncio.Queue[dict] = asyncio.Queue(maxsize=1000)
    nc = request.app.state.nats

    async def on_event(msg) -> None:
        headers = msg.headers or {}
        if job_id and headers.get("ce-subject") != job_id:
            return
        try:
            envelope = Envelope.decode(headers, msg.data, events_pb2.JobEvent)
        except ValueError:
            return
        if not queue.full():
            queue.put_nowait(proto_to_dict(envelope.data.job))

    sub = await nc.subscribe("dyag.events.job.>", cb=on_event) if nc is not None else None
    backends = request.app.state.backends
    stub = backends.jobs(backends.service_of_job(job_id)) if job_id else None
    try:
        if stub:
            queue.put_nowait(to_json(await stub.GetJob(jobs_pb2.GetJobRequest(id=job_id))))
        while not await request.is_disconnected():
            try:
                job = await asyncio.wait_for(queue.get(), timeout=SSE_HEARTBEAT_S if not stub else 3.0)
            except TimeoutError:
                if not stub:
                    yield b": keep-alive\n\n"
                    continue
                job = to_json(await stub.GetJob(jobs_pb2.GetJobRequest(id=job_id)))  # in case an event was missed
            yield _sse("job", job)
            if job_id and job["status"] in TERMINAL:
                yield _sse("end", {"id": job_id, "status": job["status"]})
                return
    finally:
        if sub is not None:
            await sub.unsubscribe()
