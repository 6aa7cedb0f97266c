from __future__ import annotations

from dyag_runtime.settings import ServiceSettings


class DatasetBuilderSettings(ServiceSettings):
    service_name: str = "dataset-builder"
    max_catalog_bytes: int = 50 * 1024 * 1024
    # A new catalog version rebuilds, incrementally, the latest dataset of the previous version.
    rebuild_on_catalog_update: bool = True
    # Catalog sources (a catalog following a file or an HTTP(S) URL): seconds between polls when the source names none,
    # the shortest interval accepted, the HTTP timeout, and the folders a file source may be in (os.pathsep-separated,
    # e.g. "/data/catalogs:/srv/exports"; empty: any file this service may read). Downloads are capped at
    # max_catalog_bytes.
    source_default_interval_s: int = 60
    source_min_interval_s: int = 5
    source_http_timeout_s: float = 20.0
    source_roots: str = ""
