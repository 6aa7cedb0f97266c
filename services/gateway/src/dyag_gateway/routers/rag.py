"""RAG: index a catalog into a collection (a job), ask questions, collection stats (the guide's step 7)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from dyag.v1 import rag_pb2
from dyag_gateway.auth import require_scope
from dyag_gateway.convert import to_json
from dyag_gateway.params import Body, CollectionName

router = APIRouter(prefix="/rag", tags=["rag"])


class IndexBody(Body):
    catalog: str = Field("", description="the stored catalog to index; empty: the collection's name")
    catalog_version: str = Field("", description="empty: the latest")
    rebuild: bool = Field(False, description="embed every chunk again instead of only those that changed")


class QueryBody(Body):
    question: str = Field(description="the question, in French or any language the embedder knows")
    n_chunks: int = Field(5, ge=1, le=50, description="chunks of the catalog given to the model")
    model: str = Field("", description="chat model: ollama:NAME, openai:NAME, local:default…; empty: the service's")
    retrieve_only: bool = Field(False, description="return the retrieved chunks without asking a model")
    max_tokens: int = Field(0, ge=0, le=4096, description="0: the service's default")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    entity_filter: bool = Field(True, description="restrict to the entities the question names (else only boost them)")
    mode: Literal["auto", "grounded", "generative"] = Field(
        "auto",
        description="grounded: from the catalog's records only; generative: the model over the retrieved chunks; "
        "auto: grounded when the question is understood with confidence, else the model",
    )


@router.post(
    "/{collection}/index",
    status_code=202,
    dependencies=[Depends(require_scope("write"))],
    summary="Index a catalog into a collection (a job; only the changed entities are embedded again)",
)
async def index(collection: CollectionName, request: Request, body: IndexBody | None = None) -> JSONResponse:
    body = body or IndexBody()
    job = await request.app.state.backends.rag().Index(
        rag_pb2.IndexRequest(
            collection=collection,
            catalog=body.catalog or collection,
            catalog_version=body.catalog_version,
            rebuild=body.rebuild,
            correlation_id=request.headers.get("x-correlation-id", ""),
        )
    )
    return JSONResponse(to_json(job), status_code=202)


@router.post(
    "/{collection}/query",
    dependencies=[Depends(require_scope("read"))],
    summary="Answer a question from the collection: {answer, sources, chunks with scores, timings, tokens}",
)
async def query(collection: CollectionName, body: QueryBody, request: Request) -> dict:
    reply = await request.app.state.backends.rag().Query(
        rag_pb2.QueryRequest(
            collection=collection,
            question=body.question,
            n_chunks=body.n_chunks,
            model=body.model,
            retrieve_only=body.retrieve_only,
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            no_entity_filter=not body.entity_filter,
            correlation_id=request.headers.get("x-correlation-id", ""),
            mode=body.mode,
        ),
        timeout=request.app.state.settings.grpc_timeout_s * 5,  # a local model on a CPU takes its time
    )
    return to_json(reply)


@router.get(
    "/{collection}/stats", summary="A collection: catalog version, entities, chunks per section, embedder, store"
)
async def stats(collection: CollectionName, request: Request) -> dict:
    return to_json(await request.app.state.backends.rag().Stats(rag_pb2.StatsRequest(collection=collection)))


@router.get("", summary="Every collection with its stats")
async def list_collections(request: Request) -> dict:
    reply = await request.app.state.backends.rag().ListCollections(rag_pb2.ListCollectionsRequest())
    return {"collections": [to_json(c) for c in reply.collections]}


@router.delete(
    "/{collection}",
    dependencies=[Depends(require_scope("admin"))],
    summary="Delete a collection, or only some entities' chunks (?entity_id=…)",
)
async def delete(
    collection: CollectionName, request: Request, entity_id: list[str] = Query(default_factory=list)
) -> dict:
    reply = await request.app.state.backends.rag().Delete(
        rag_pb2.DeleteRequest(collection=collection, entity_ids=entity_id)
    )
    return to_json(reply)
