from __future__ import annotations

from dyag_runtime.settings import ServiceSettings


class DatasetBuilderSettings(ServiceSettings):
    service_name: str = "dataset-builder"
    max_catalog_bytes: int = 50 * 1024 * 1024
    # A new catalog version rebuilds, incrementally, the latest dataset of the previous version.
    rebuild_on_catalog_update: bool = True
