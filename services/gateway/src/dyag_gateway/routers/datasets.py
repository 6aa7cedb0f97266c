"""Datasets: build (a job), plan, list, show, download (the guide's step 2)."""

from __future__ import annotations

from typing import Annotated, Literal

import grpc
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field

from dyag.v1 import dataset_pb2
from dyag_gateway.auth import require_scope
from dyag_gateway.convert import to_json
from dyag_gateway.params import Body, Count, Filter, Id, Int32, Word

router = APIRouter(prefix="/datasets", tags=["datasets"])


class BuildRequest(Body):
    catalog: str = Field(description="catalog name")
    catalog_version: str = Field("", description="empty: the latest")
    num_questions: Count = Field(0, description="0: everything the catalog allows")
    question_types: list[str] = Field(default_factory=lambda: ["all"])
    variations: int = Field(0, ge=0, le=20, description="phrasings per entity and type; 0: 3")
    add_negatives: bool = True
    seed: Int32 = 42
    split_strategy: Literal["paraphrase", "entity"] = "paraphrase"
    split_ratios: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=list, max_length=3, description="train, validation, test; default 0.8, 0.1, 0.1"
    )
    formats: list[Literal["openai", "alpaca", "sharegpt", "prompt-completion"]] = Field(
        default_factory=lambda: ["openai"]
    )
    system_prompt: str = ""
    base_dataset_id: str = Field("", description="rebuild only what changed since this dataset")
    focus_entity_ids: list[str] = Field(
        default_factory=list,
        description="a challenger's train split: every train example about these entities (catalog ids), plus a "
        "replay of the others; validation and test stay whole",
    )
    replay_fraction: float = Field(
        0.0, ge=0, le=1000, description="with focus_entity_ids: replayed examples per focus example (0.5: half as many)"
    )


class PlanRequest(Body):
    catalog: str
    catalog_version: str = ""
    question_types: list[str] = Field(default_factory=lambda: ["all"])
    variations: int = Field(0, ge=0, le=20)
    add_negatives: bool = True


@router.post(
    "",
    status_code=202,
    dependencies=[Depends(require_scope("write"))],
    summary="Build a dataset from a catalog (a job)",
)
async def build_dataset(body: BuildRequest, request: Request) -> JSONResponse:
    job = await request.app.state.backends.datasets().BuildDataset(
        dataset_pb2.BuildDatasetRequest(**body.model_dump(), correlation_id=request.headers.get("x-correlation-id", ""))
    )
    return JSONResponse(to_json(job), status_code=202)


@router.post("/plan", summary="The guide's size arithmetic for a catalog: entities x types x variations")
async def plan_dataset(body: PlanRequest, request: Request) -> dict:
    return to_json(await request.app.state.backends.datasets().Plan(dataset_pb2.PlanRequest(**body.model_dump())))


@router.get("", summary="Built datasets, newest first")
async def list_datasets(request: Request, catalog: Filter = "") -> dict:
    reply = await request.app.state.backends.datasets().ListDatasets(dataset_pb2.ListDatasetsRequest(catalog=catalog))
    return {"datasets": [to_json(d) for d in reply.datasets]}


@router.get("/{dataset_id}", summary="A dataset: counts per split and type, files, plan")
async def get_dataset(dataset_id: Id, request: Request) -> dict:
    return to_json(await request.app.state.backends.datasets().GetDataset(dataset_pb2.GetDatasetRequest(id=dataset_id)))


@router.get("/{dataset_id}/files/{split}/{fmt}", summary="Download one file of a dataset (e.g. train/openai)")
async def download_file(dataset_id: Id, split: Word, fmt: Word, request: Request) -> StreamingResponse:
    call = request.app.state.backends.datasets().ReadFile(
        dataset_pb2.ReadFileRequest(dataset_id=dataset_id, split=split, format=fmt)
    )
    first = await call.read()  # an unknown dataset or file fails here, before the response starts

    async def chunks():
        message = first
        while message is not grpc.aio.EOF:
            yield message.data
            message = await call.read()

    filename = f"{dataset_id}-{split}.{fmt}"
    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
