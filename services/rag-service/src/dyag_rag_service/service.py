"""RagService over gRPC, the rag.index job, and the catalog.updated consumer that keeps collections current."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from google.protobuf import json_format

from dyag.v1 import events_pb2, rag_pb2, rag_pb2_grpc
from dyag_core.catalog import validate_catalog_name
from dyag_core.errors import DyagError
from dyag_core.rag import RagError, validate_collection_name
from dyag_rag_service.engine import RagEngine
from dyag_rag_service.indexer import IndexReport
from dyag_rag_service.store import dyag_metadata, info
from dyag_runtime.jobs import JobContext, record_to_proto
from dyag_runtime.peers import Peers, read_catalog
from dyag_runtime.server import Runtime

log = logging.getLogger(__name__)

INDEX = "rag.index"


class RagServicer(rag_pb2_grpc.RagServiceServicer):
    def __init__(self, rt: Runtime, engine: RagEngine, peers: Peers):
        self.rt, self.engine, self.peers = rt, engine, peers

    async def Index(self, request, context):
        catalog = validate_catalog_name(request.catalog)
        collection = validate_collection_name(request.collection or catalog)
        version = await self.peers.catalog_version(catalog, request.catalog_version)  # an unknown catalog fails now
        params = {
            "collection": collection,
            "catalog": catalog,
            "catalog_version": version.version,
            "artifact": version.artifact.digest,
            "rebuild": request.rebuild,
        }
        record = await self.rt.jobs.submit(INDEX, params, request.correlation_id)
        return record_to_proto(record)

    async def Query(self, request, context):
        if request.mode != "generative" and not request.retrieve_only:
            await self._load_catalog(request.collection, required=request.mode == "grounded")
        reply = await asyncio.to_thread(
            self.engine.query,
            request.collection,
            request.question,
            n_chunks=request.n_chunks,
            model=request.model,
            retrieve_only=request.retrieve_only,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            entity_filter=not request.no_entity_filter,
            mode=request.mode,
        )
        return json_format.ParseDict(reply, rag_pb2.QueryResponse(), ignore_unknown_fields=True)

    async def _load_catalog(self, collection: str, *, required: bool) -> None:
        """The records of the catalog version the collection holds, for grounded answers (loaded once per version)."""
        try:
            meta = info(await asyncio.to_thread(self.engine.store.get, validate_collection_name(collection)))
        except RagError:
            return  # an unknown collection: the engine says so
        name, version = str(meta.get("catalog", "")), str(meta.get("catalog_version", ""))
        if not name or not version or self.engine.has_catalog(name, version):
            return
        try:
            stored = await self.peers.catalog_version(name, version)
            catalog = await read_catalog(self.rt.artifacts, stored.artifact.digest)
            await asyncio.to_thread(self.engine.register_catalog, name, version, catalog)
        except DyagError as exc:
            if required:
                raise
            log.warning(
                "grounded answers unavailable; answering with the model",
                extra={"collection": collection, "error": str(exc)},
            )

    async def Stats(self, request, context):
        return await asyncio.to_thread(self._stats, request.collection)

    async def ListCollections(self, request, context):
        def collect() -> list[rag_pb2.CollectionStats]:
            stats = []
            for name in self.engine.store.names():
                try:
                    stats.append(self._stats(name))
                except RagError:  # deleted meanwhile
                    continue
            return stats

        return rag_pb2.ListCollectionsResponse(collections=await asyncio.to_thread(collect))

    async def Delete(self, request, context):
        return await asyncio.to_thread(self._delete, request.collection, list(request.entity_ids))

    def _stats(self, name: str) -> rag_pb2.CollectionStats:
        collection = self.engine.store.get(name)
        loaded = self.engine.retriever.cache.load(collection)
        meta = info(collection)
        sections = Counter(str(m.get("section", "")) for m in loaded.metadatas)
        return rag_pb2.CollectionStats(
            collection=collection.name,
            catalog=str(meta.get("catalog", "")),
            catalog_version=str(meta.get("catalog_version", "")),
            entities=len(loaded.by_entity),
            chunks=len(loaded.ids),
            sections=dict(sections),
            embedder=str(meta.get("embedder", "")),
            dimension=int(meta.get("dimension", 0) or 0),
            store=self.engine.store.where,
            indexed_at=str(meta.get("indexed_at", "")),
            last_job_id=str(meta.get("last_job", "")),
            follows_catalog=self.engine.settings.rag_follow_catalogs and bool(meta.get("catalog")),
        )

    def _delete(self, name: str, entity_ids: list[str]) -> rag_pb2.DeleteResponse:
        collection = self.engine.store.get(name)
        if not entity_ids:
            chunks = collection.count()
            entities = len(self.engine.retriever.cache.load(collection).by_entity)
            self.engine.store.delete(collection.name)
            self.engine.retriever.cache.forget(collection.name)
            return rag_pb2.DeleteResponse(
                collection=collection.name, deleted_chunks=chunks, deleted_entities=entities, collection_deleted=True
            )
        found = collection.get(where={"entity_id": {"$in": entity_ids}}, include=["metadatas"])
        if found["ids"]:
            collection.delete(ids=found["ids"])
        meta = info(collection)
        collection.modify(metadata=dyag_metadata(meta, generation=int(meta.get("generation", 0)) + 1))
        deleted_entities = len({m["entity_id"] for m in found["metadatas"]})
        return rag_pb2.DeleteResponse(
            collection=collection.name, deleted_chunks=len(found["ids"]), deleted_entities=deleted_entities
        )


class IndexJob:
    """The rag.index job: the catalog version's chunks into the collection, embedding only what changed.
    Register `IndexJob(...).run` (a coroutine function: the worker awaits it; the embedding runs in a thread)."""

    def __init__(self, rt: Runtime, engine: RagEngine, peers: Peers):
        self.rt, self.engine, self.peers = rt, engine, peers

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        p = ctx.params
        ctx.progress(0.0, "loading the catalog")
        catalog = await read_catalog(self.rt.artifacts, p["artifact"])
        report: IndexReport = await asyncio.to_thread(
            self.engine.indexer.sync,
            p["collection"],
            catalog,
            p["catalog"],
            p["catalog_version"],
            progress=ctx.progress,
            rebuild=bool(p.get("rebuild")),
            job_id=ctx.job_id,
        )
        await asyncio.to_thread(self.engine.register_catalog, p["catalog"], p["catalog_version"], catalog)
        ctx.log(
            f"{report.collection}: catalog {report.catalog} version {report.catalog_version}; "
            f"entities +{len(report.added)} ~{len(report.changed)} -{len(report.removed)} "
            f"({report.unchanged} unchanged); {report.chunks_embedded} chunks embedded, "
            f"{report.chunks_deleted} deleted, {report.chunks} in all ({report.seconds} s)"
        )
        event = rag_pb2.RagIndexed(
            collection=report.collection,
            catalog=report.catalog,
            catalog_version=report.catalog_version,
            previous_version=report.previous_version,
            added=report.added,
            changed=report.changed,
            removed=report.removed,
            chunks_embedded=report.chunks_embedded,
            chunks_deleted=report.chunks_deleted,
            chunks=report.chunks,
            entities=report.entities,
            job_id=ctx.job_id,
        )
        try:  # the index is done: an event lost to a NATS hiccup must not fail (or hold) the job
            await asyncio.wait_for(
                self.rt.bus.emit("rag.indexed", event, subject=report.collection, correlation_id=ctx.correlation_id), 15
            )
        except Exception as exc:
            log.warning("could not publish rag.indexed", extra={"collection": report.collection, "error": repr(exc)})
        return report.to_dict()


class FollowCatalogs:
    """catalog.updated -> a rag.index job for each collection that holds an older version of that catalog."""

    def __init__(self, rt: Runtime, engine: RagEngine):
        self.rt, self.engine = rt, engine

    async def __call__(self, envelope) -> None:
        event: events_pb2.CatalogUpdated = envelope.data
        followers = await asyncio.to_thread(self._followers, event.name, event.version)
        for collection in followers:
            params = {
                "collection": collection,
                "catalog": event.name,
                "catalog_version": event.version,
                "artifact": event.artifact.digest,
                "rebuild": False,
                "event_changes": {
                    "added": len(event.added),
                    "changed": len(event.changed),
                    "removed": len(event.removed),
                },
            }
            record = await self.rt.jobs.submit(INDEX, params, envelope.correlation_id or envelope.id)
            log.info(
                "re-indexing after a catalog update",
                extra={"collection": collection, "catalog": event.name, "job_id": record["id"]},
            )

    def _followers(self, catalog: str, version: str) -> list[str]:
        followers = []
        for name in self.engine.store.names():
            try:
                meta = info(self.engine.store.get(name))
            except RagError:
                continue
            if meta.get("catalog") == catalog and meta.get("catalog_version") != version:
                followers.append(name)
        return followers
