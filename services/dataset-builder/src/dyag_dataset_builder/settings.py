from __future__ import annotations

from dyag_runtime.settings import ServiceSettings


class DatasetBuilderSettings(ServiceSettings):
    service_name: str = "dataset-builder"
    max_catalog_bytes: int = 50 * 1024 * 1024
