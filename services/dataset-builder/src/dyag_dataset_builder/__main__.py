"""python -m dyag_dataset_builder: serve CatalogService (and dataset jobs) over gRPC."""

from __future__ import annotations

import asyncio

from dyag.v1 import catalog_pb2_grpc, dataset_pb2_grpc, events_pb2
from dyag_runtime.server import Runtime, run

from dyag_dataset_builder.catalog_store import CatalogStore
from dyag_dataset_builder.catalogs import CatalogServicer
from dyag_dataset_builder.datasets import BUILD, DatasetBuilder, DatasetServicer, DatasetStore, RebuildOnCatalogUpdate
from dyag_dataset_builder.settings import DatasetBuilderSettings


def main() -> None:
    settings = DatasetBuilderSettings()

    async def setup(rt: Runtime) -> None:
        store = CatalogStore(settings.data_dir / "catalogs.db", rt.artifacts)
        rt.add_servicer(
            catalog_pb2_grpc.add_CatalogServiceServicer_to_server,
            CatalogServicer(rt, store, settings.max_catalog_bytes),
            "dyag.v1.CatalogService",
        )
        datasets = DatasetStore(settings.data_dir / "datasets.db")
        rt.add_servicer(
            dataset_pb2_grpc.add_DatasetServiceServicer_to_server,
            DatasetServicer(rt, store, datasets),
            "dyag.v1.DatasetService",
        )
        rt.handlers[BUILD] = DatasetBuilder(rt, store, datasets, asyncio.get_running_loop())
        if settings.rebuild_on_catalog_update:
            await rt.subscribe(
                "catalog.updated", events_pb2.CatalogUpdated, RebuildOnCatalogUpdate(rt, datasets), consumer="dataset-builder-on-catalog-updated"
            )

    run(settings, setup)


if __name__ == "__main__":
    main()
