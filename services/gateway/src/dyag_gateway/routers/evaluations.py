"""Evaluations (the guide's steps 6 and 7): evaluate a target on a test set (a job), the runs, their reports
(JSON with the guide's fields, Markdown, self-contained HTML), and the comparison of N runs."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from dyag.v1 import evaluation_pb2
from dyag_gateway.auth import require_scope
from dyag_gateway.convert import to_json
from dyag_gateway.errors import ApiError
from dyag_gateway.params import Body, Count, Filter, Id, Int32, JsonObject, Label, Limit, Word

router = APIRouter(prefix="/evaluations", tags=["evaluation"])

TARGET_SPELLINGS = (
    "base, base:FOLDER, lora:MODEL_ID, openai:MODEL, ollama:MODEL, gguf:MODEL, rag:COLLECTION, grounded:COLLECTION, "
    "hybrid:MODEL_ID+COLLECTION"
)


class TargetBody(Body):
    kind: str = Field(description="base | lora | openai | ollama | gguf | rag | hybrid")
    model: str = Field(
        "", description="base: 'default' or a folder; lora/hybrid: the LoRA model id; openai/ollama: the model name"
    )
    base_url: str = Field(
        "", description="openai: an OpenAI-compatible endpoint (default: the evaluator's OPENAI_BASE_URL)"
    )
    api_key_env: str = Field(
        "", description="openai: the NAME of the variable holding the key on the evaluator's host (never the key)"
    )
    host: str = Field("", description="ollama: the server (default: the evaluator's OLLAMA_HOST)")
    collection: str = Field("", description="rag/hybrid: the RAG collection")
    n_chunks: int = Field(0, ge=0, le=50, description="rag/hybrid: chunks given to the model; 0: 5")
    rag_mode: str = Field(
        "", description="rag: auto (default) | grounded (the catalog's records only) | generative (the model)"
    )
    llm: str = Field(
        "", description="rag: the answering model (ollama:NAME, openai:NAME, local:default); empty: rag-service's"
    )
    approach: str = Field("", description="base | fine_tuned | rag | hybrid, for the comparison; empty: from the kind")
    training_cost_usd: float | None = Field(
        None, ge=0, description="what training this model cost, for the decision table"
    )
    artifact_digest: str = Field(
        "", description="gguf: a GGUF in the artifact store (sha256:…, e.g. an export's file's artifact digest)"
    )


def parse_target(spec: str) -> dict[str, Any]:
    """The CLI's spelling (rag:applications_ia, hybrid:lora-…+applications_ia, openai:ft:gpt-4o-mini:…) as a Target."""
    kind, _, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind == "rag":
        return {"kind": kind, "collection": rest}
    if kind == "grounded":  # answers from the catalog's records only: a rag target in grounded mode
        return {"kind": "rag", "collection": rest, "rag_mode": "grounded"}
    if kind == "hybrid":
        model, plus, collection = rest.rpartition("+")
        if not plus:
            raise ApiError(422, "invalid_target", f"a hybrid target is hybrid:MODEL_ID+COLLECTION, not {spec!r}")
        return {"kind": kind, "model": model, "collection": collection}
    return {"kind": kind, "model": rest}


class EvaluateBody(Body):
    target: str | TargetBody = Field(description=f"a spec ({TARGET_SPELLINGS}) or a Target object")
    # with a spec: the options a spec does not spell
    llm: str = Field("", description="rag target: the answering model")
    rag_mode: str = Field("", description="rag target: auto | grounded | generative")
    n_chunks: int = Field(0, ge=0, le=50)
    base_url: str = ""
    api_key_env: str = ""
    host: str = ""
    approach: str = ""
    training_cost_usd: float | None = Field(None, ge=0)
    # the test set: a dataset's split, or a file's content, or an artifact
    dataset_id: str = Field("", description="a dataset built by dataset-builder (its test split)")
    split: str = Field("", description="with dataset_id: test (default)")
    test_set: str = Field("", description="or the test file's content: eval JSONL or OpenAI chat JSONL")
    filename: str = Field("", description="with test_set: its file name, shown in the reports")
    manifest: str = Field("", description="with an OpenAI chat test_set: its provenance manifest (key facts)")
    format: str = Field("", description="eval | openai; empty: detected")
    artifact_digest: str = Field("", description="or a test file already in the artifact store (sha256:…)")
    name: Label = Field("", description="the run's label in reports; empty: the target's spec")
    max_questions: Count = Field(0, description="0: every question; else a sample stratified by question type")
    concurrency: Int32 | None = Field(
        None, description="requests in flight at once (at least 1); empty: the evaluator's default"
    )
    seed: Int32 = 0
    max_tokens: int = Field(0, ge=0, le=32_768, description="per answer; 0: the evaluator's default")
    temperature: float = Field(0.0, ge=0, le=2)
    system_prompt: str = ""
    catalog: str = Field(
        "", description="the catalog answers are checked against (hallucinations); empty: the dataset's or collection's"
    )
    catalog_version: str = ""
    judge_model: str = Field("", description="an LLM judge (openai:…, ollama:…); empty: the evaluator's, if any")
    skip_similarity: bool = False
    labels: dict[str, str] = Field(default_factory=dict)


class CompareBody(Body):
    run_ids: list[str] = Field(default_factory=list, description="evaluation runs, side by side in this order")
    results: list[JsonObject] = Field(
        default_factory=list, description="result documents (results.json), after the runs"
    )
    baseline: int = Field(0, ge=0, le=10_000, description="index of the baseline among runs then results")
    catalog_size: Count | None = Field(None, description="picks the guide's 7.2 row; empty: the runs'")
    title: str = ""
    format: Literal["json", "md", "html"] = Field("json", description="json: everything; md / html: the report alone")


def _target(body: EvaluateBody) -> evaluation_pb2.Target:
    if isinstance(body.target, TargetBody):
        values = body.target.model_dump()
    else:
        values = parse_target(body.target)
        for key in ("llm", "rag_mode", "n_chunks", "base_url", "api_key_env", "host", "approach", "training_cost_usd"):
            value = getattr(body, key)
            if value not in ("", 0, None):
                values[key] = value
    return evaluation_pb2.Target(**{k: v for k, v in values.items() if v is not None})


@router.post(
    "",
    status_code=202,
    dependencies=[Depends(require_scope("write"))],
    summary="Evaluate a target (base, LoRA, OpenAI-compatible, Ollama, RAG, hybrid) on a test set (a job)",
)
async def evaluate(body: EvaluateBody, request: Request) -> JSONResponse:
    sources = [bool(body.dataset_id), bool(body.test_set), bool(body.artifact_digest)]
    if sum(sources) != 1:
        raise ApiError(
            422,
            "invalid_request",
            "give exactly one test set: dataset_id, test_set (the file's content) or artifact_digest",
        )
    limit = request.app.state.settings.max_upload_bytes
    size = len(body.test_set.encode()) + len(body.manifest.encode())
    if size > limit:
        raise ApiError(
            413, "too_large", f"the test set has {size} bytes; this gateway accepts {limit} (DYAG_MAX_UPLOAD_BYTES)"
        )
    test_set = evaluation_pb2.TestSet(
        split=body.split, filename=body.filename, format=body.format, manifest=body.manifest.encode()
    )
    if body.dataset_id:
        test_set.dataset_id = body.dataset_id
    elif body.artifact_digest:
        test_set.artifact_digest = body.artifact_digest
    else:
        test_set.content = body.test_set.encode()
    req = evaluation_pb2.EvaluateRequest(
        test_set=test_set,
        target=_target(body),
        name=body.name,
        max_questions=body.max_questions,
        seed=body.seed,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        system_prompt=body.system_prompt,
        catalog=body.catalog,
        catalog_version=body.catalog_version,
        judge_model=body.judge_model,
        skip_similarity=body.skip_similarity,
        labels=body.labels,
        correlation_id=request.headers.get("x-correlation-id", ""),
    )
    if body.concurrency is not None:
        req.concurrency = body.concurrency
    job = await request.app.state.backends.evaluator().Evaluate(
        req, timeout=request.app.state.settings.grpc_timeout_s * 2
    )
    return JSONResponse(to_json(job), status_code=202)


@router.get("", summary="Evaluation runs, newest first, with their figures")
async def list_runs(
    request: Request, target_kind: Filter = "", dataset_id: Filter = "", status: Filter = "", limit: Limit = 100
) -> dict:
    reply = await request.app.state.backends.evaluator().ListRuns(
        evaluation_pb2.ListRunsRequest(target_kind=target_kind, dataset_id=dataset_id, status=status, limit=limit)
    )
    return {"evaluations": [to_json(r) for r in reply.runs]}


@router.post(
    "/compare",
    dependencies=[Depends(require_scope("read"))],
    summary="Compare N runs: the guide's 6.2 table with deltas, RAG vs fine-tuned vs hybrid, the 7.2 decision table",
)
async def compare(body: CompareBody, request: Request) -> Any:
    req = evaluation_pb2.CompareRequest(
        run_ids=body.run_ids,
        results=[json.dumps(r).encode() for r in body.results],
        baseline=body.baseline,
        title=body.title,
    )
    if body.catalog_size is not None:
        req.catalog_size = body.catalog_size
    reply = await request.app.state.backends.evaluator().Compare(
        req, timeout=request.app.state.settings.grpc_timeout_s * 2
    )
    if body.format == "md":
        return Response(reply.markdown, media_type="text/markdown; charset=utf-8")
    if body.format == "html":
        return Response(reply.html, media_type="text/html; charset=utf-8")
    return to_json(reply)


@router.get(
    "/{run_id}", summary="One run: status, target, test set, figures (the guide's 6.2 fields), report artifacts"
)
async def get_run(run_id: Id, request: Request) -> dict:
    return to_json(await request.app.state.backends.evaluator().GetRun(evaluation_pb2.GetRunRequest(id=run_id)))


@router.get("/{run_id}/report.{fmt}", summary="A run's report: json (results with the guide's fields), md or html")
async def get_report(run_id: Id, fmt: Word, request: Request) -> Response:
    report = await request.app.state.backends.evaluator().GetReport(
        evaluation_pb2.GetReportRequest(id=run_id, format=fmt)
    )
    return Response(
        report.content,
        media_type=report.media_type,
        headers={"Content-Disposition": f'inline; filename="{run_id}-{report.filename}"'},
    )
