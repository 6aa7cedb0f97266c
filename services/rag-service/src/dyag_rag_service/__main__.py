"""python -m dyag_rag_service: serve RagService over gRPC, run rag.index jobs, follow catalog.updated."""

from __future__ import annotations

import asyncio

from dyag.v1 import events_pb2, rag_pb2_grpc
from dyag_llm.embeddings import open_embedder
from dyag_rag_service.engine import RagEngine
from dyag_rag_service.service import INDEX, FollowCatalogs, IndexJob, RagServicer
from dyag_rag_service.settings import RagSettings
from dyag_runtime.peers import Peers
from dyag_runtime.server import Runtime, run


def main() -> None:
    settings = RagSettings()

    async def setup(rt: Runtime) -> None:
        engine = await asyncio.to_thread(RagEngine, settings)
        await asyncio.to_thread(open_embedder, settings.rag_embedder)  # load the model now, not on the first question
        peers = Peers(settings)
        rt.on_shutdown.append(peers.close)
        rt.add_servicer(
            rag_pb2_grpc.add_RagServiceServicer_to_server, RagServicer(rt, engine, peers), "dyag.v1.RagService"
        )
        rt.handlers[INDEX] = IndexJob(rt, engine, peers).run
        if settings.rag_follow_catalogs:
            await rt.subscribe(
                "catalog.updated",
                events_pb2.CatalogUpdated,
                FollowCatalogs(rt, engine),
                consumer="rag-service-on-catalog-updated",
            )

    run(settings, setup)


if __name__ == "__main__":
    main()
