"""python -m dyag_dataset_builder: serve CatalogService (and dataset jobs) over gRPC."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from dyag.v1 import catalog_pb2_grpc, dataset_pb2_grpc, events_pb2
from dyag_dataset_builder.catalog_store import CatalogStore
from dyag_dataset_builder.catalogs import CatalogServicer
from dyag_dataset_builder.datasets import BUILD, DatasetBuilder, DatasetServicer, DatasetStore, RebuildOnCatalogUpdate
from dyag_dataset_builder.settings import DatasetBuilderSettings
from dyag_dataset_builder.source_store import SourceStore
from dyag_dataset_builder.sources import CatalogSources, SourceLimits
from dyag_runtime.server import Runtime, run


def main() -> None:
    settings = DatasetBuilderSettings()

    async def setup(rt: Runtime) -> None:
        store = CatalogStore(settings.database("catalogs.db"), rt.artifacts)
        catalogs = CatalogServicer(rt, store, settings.max_catalog_bytes)
        rt.add_servicer(catalog_pb2_grpc.add_CatalogServiceServicer_to_server, catalogs, "dyag.v1.CatalogService")
        # Sources: their records beside the catalogs' versions; each change is ingested as an upload is.
        catalogs.sources = CatalogSources(
            SourceStore(store.db),
            catalogs.ingest,
            SourceLimits(
                default_interval_s=settings.source_default_interval_s,
                min_interval_s=settings.source_min_interval_s,
                max_bytes=settings.max_catalog_bytes,
                http_timeout_s=settings.source_http_timeout_s,
                roots=tuple(Path(p) for p in settings.source_roots.split(os.pathsep) if p.strip()),
            ),
            versions=catalogs.version_or_none,
        )
        datasets = DatasetStore(settings.database("datasets.db"))
        rt.add_servicer(
            dataset_pb2_grpc.add_DatasetServiceServicer_to_server,
            DatasetServicer(rt, store, datasets),
            "dyag.v1.DatasetService",
        )
        rt.handlers[BUILD] = DatasetBuilder(rt, store, datasets, asyncio.get_running_loop())
        if settings.rebuild_on_catalog_update:
            await rt.subscribe(
                "catalog.updated",
                events_pb2.CatalogUpdated,
                RebuildOnCatalogUpdate(rt, datasets),
                consumer="dataset-builder-on-catalog-updated",
            )
        await catalogs.sources.start()  # last: a source overdue since the last run is polled at once
        rt.on_shutdown.append(catalogs.sources.stop)

    run(settings, setup)


if __name__ == "__main__":
    main()
