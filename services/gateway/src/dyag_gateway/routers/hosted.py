"""Hosted fine-tuning through the OpenAI fine-tuning API or a compatible provider (the guide's step 4)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field

from dyag.v1 import hosted_pb2, jobs_pb2
from dyag_gateway.auth import require_scope
from dyag_gateway.convert import to_json
from dyag_gateway.errors import ApiError
from dyag_gateway.params import INT32_MAX, Body, Filter, HostedModelId, Id, Label
from dyag_runtime.events import Envelope
from dyag_runtime.jobs import TERMINAL

router = APIRouter(prefix="/hosted", tags=["hosted fine-tuning"])


class HyperparametersBody(Body):
    n_epochs: int = Field(0, ge=0, le=50, description="0: the guide's Annex A preset for the dataset's size")
    batch_size: int = Field(0, ge=0, le=256, description="0: the preset")
    learning_rate_multiplier: float = Field(0.0, ge=0, le=10, description="0: the preset")


class GatesBody(Body):
    allow_pii: bool = Field(False, description="upload personal data as it is (the data owner's decision)")
    redact_pii: bool = Field(False, description="mask personal data before the upload")
    ignore_format_errors: bool = Field(False, description="upload even with lines the validator finds invalid")
    ignore_budget: bool = Field(False, description="train even above the budget, or without a known price")
    budget_usd: float = Field(0.0, ge=0, description="a lower budget for this job; 0: the service's")


class TrainBody(Body):
    dataset_id: str = Field("", description="a dataset built by dataset-builder (its train and validation splits)")
    train: str = Field("", description="or the train file's content (OpenAI chat JSONL)")
    validation: str = Field("", description="with an uploaded train file: the validation file's content, if any")
    name: Label = Field("", description="with an uploaded file: its name, for the lineage")
    catalog: str = Field("", description="with an uploaded file: the catalog it comes from (coverage, contact names)")
    catalog_version: str = ""
    base_model: str = Field("", description="e.g. gpt-4o-mini-2024-07-18; empty: the service's default")
    hyperparameters: HyperparametersBody = Field(default_factory=HyperparametersBody)
    suffix: str = Field("", max_length=64)
    seed: int | None = Field(None, ge=0, le=INT32_MAX, description="the provider's seed; empty: its own")
    gates: GatesBody = Field(default_factory=GatesBody)


@router.post(
    "/jobs",
    status_code=202,
    dependencies=[Depends(require_scope("write"))],
    summary="Fine-tune a hosted model on a dataset (a job): gates, upload, remote job, monitoring, smoke test",
)
async def train(body: TrainBody, request: Request) -> JSONResponse:
    if bool(body.dataset_id) == bool(body.train.strip()):
        raise ApiError(
            422, "invalid_request", "give either dataset_id (a built dataset) or train (the file's content), not both"
        )
    limit = request.app.state.settings.max_upload_bytes
    size = len(body.train.encode()) + len(body.validation.encode())
    if size > limit:
        raise ApiError(
            413,
            "too_large",
            f"the dataset has {size} bytes; this gateway accepts {limit} (DYAG_MAX_UPLOAD_BYTES): build it "
            "with dataset-builder and pass its dataset_id instead",
        )
    message = hosted_pb2.TrainRequest(
        base_model=body.base_model,
        hyperparameters=hosted_pb2.Hyperparameters(**body.hyperparameters.model_dump()),
        suffix=body.suffix,
        gates=hosted_pb2.GateOverrides(**body.gates.model_dump()),
        correlation_id=request.headers.get("x-correlation-id", ""),
    )
    if body.seed is not None:
        message.seed = body.seed
    if body.dataset_id:
        message.dataset_id = body.dataset_id
    else:
        message.uploaded.CopyFrom(
            hosted_pb2.UploadedDataset(
                train=body.train.encode(),
                validation=body.validation.encode(),
                name=body.name,
                catalog=body.catalog,
                catalog_version=body.catalog_version,
            )
        )
    backends = request.app.state.backends
    job = await backends.hosted().Train(message, timeout=request.app.state.settings.grpc_timeout_s)
    return JSONResponse(to_json(job), status_code=202)


def model_json(model: hosted_pb2.HostedModel) -> dict:
    """The model as JSON, its token counts as numbers (protobuf's JSON writes int64 as strings)."""
    data = to_json(model)
    cost = data.get("cost", {})
    for key in ("billed_tokens_per_epoch", "trained_tokens"):
        cost[key] = int(cost.get(key) or 0)
    return data


@router.get("/models", summary="Fine-tuned models in the registry, newest first, with their lineage")
async def list_models(request: Request, base_model: Filter = "", dataset_id: Filter = "") -> dict:
    reply = await request.app.state.backends.hosted().ListModels(
        hosted_pb2.ListModelsRequest(base_model=base_model, dataset_id=dataset_id)
    )
    return {"models": [model_json(m) for m in reply.models]}


@router.get("/models/{model_id:path}", summary="One fine-tuned model: target, lineage, cost, smoke-test answers")
async def get_model(model_id: HostedModelId, request: Request) -> dict:
    return model_json(await request.app.state.backends.hosted().GetModel(hosted_pb2.GetModelRequest(id=model_id)))


@router.get(
    "/jobs/{job_id}/progress",
    summary="A training's remote events and metrics (training.progress), live (server-sent events)",
)
async def training_progress(job_id: Id, request: Request) -> StreamingResponse:
    backends = request.app.state.backends
    jobs = backends.jobs("openai-trainer")
    await jobs.GetJob(jobs_pb2.GetJobRequest(id=job_id))  # 404 before streaming
    return StreamingResponse(_progress_stream(request, jobs, job_id), media_type="text/event-stream")


async def _progress_stream(request: Request, jobs, job_id: str) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[dict] = asyncio.Queue(maxsize=1000)
    nc = request.app.state.nats

    async def on_event(msg) -> None:
        headers = msg.headers or {}
        if headers.get("ce-subject") != job_id:
            return
        try:
            envelope = Envelope.decode(headers, msg.data, hosted_pb2.TrainingProgress)
        except ValueError:
            return
        if not queue.full():
            queue.put_nowait(to_json(envelope.data))

    sub = await nc.subscribe("dyag.events.training.progress", cb=on_event) if nc is not None else None
    try:
        while not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(queue.get(), timeout=3.0)
            except TimeoutError:
                job = to_json(await jobs.GetJob(jobs_pb2.GetJobRequest(id=job_id)))
                if job["status"] in TERMINAL:
                    yield f"event: end\ndata: {json.dumps({'id': job_id, 'status': job['status']})}\n\n".encode()
                    return
                yield b": keep-alive\n\n"
                continue
            yield f"event: training.progress\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
    finally:
        if sub is not None:
            await sub.unsubscribe()
