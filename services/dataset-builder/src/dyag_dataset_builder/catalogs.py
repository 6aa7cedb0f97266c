"""CatalogService: ingest, version, diff and profile catalogs; emits catalog.updated."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime

from dyag.v1 import catalog_pb2, catalog_pb2_grpc, events_pb2
from dyag_core.catalog import Catalog, FieldRoles, diff_catalogs, load_catalog, profile_catalog, validate_catalog_name
from dyag_runtime.server import Runtime

from dyag_dataset_builder.catalog_store import CatalogStore, VersionRow, now


def version_proto(row: VersionRow, *, unchanged: bool = False) -> catalog_pb2.CatalogVersion:
    return catalog_pb2.CatalogVersion(
        name=row.name,
        version=row.version,
        entity_count=row.entity_count,
        added=row.added,
        changed=row.changed,
        removed=row.removed,
        warnings=row.warnings,
        artifact=row.artifact.to_proto(),
        unchanged=unchanged,
        source_format=row.source_format,
        created_at=datetime.fromtimestamp(row.created_at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, rt: Runtime, store: CatalogStore, max_bytes: int):
        self.rt, self.store, self.max_bytes = rt, store, max_bytes
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def IngestCatalog(self, request, context):
        name = validate_catalog_name(request.name)
        roles = FieldRoles.from_yaml(request.roles_yaml) if request.roles_yaml else None
        catalog = await asyncio.to_thread(
            load_catalog,
            request.content,
            filename=request.filename or None,
            roles=roles,
            repair_mojibake_text=not request.reject_mojibake,
            max_bytes=self.max_bytes,
        )
        async with self._locks[name]:  # two uploads of one catalog are versioned one after the other
            previous = self.store.latest(name)
            if previous and previous.version == catalog.version:
                return version_proto(previous, unchanged=True)
            row = await asyncio.to_thread(self._store_version, name, catalog, request, previous)
        await self.rt.bus.emit(
            "catalog.updated",
            events_pb2.CatalogUpdated(
                name=name,
                version=row.version,
                previous_version=row.previous_version,
                added=row.added,
                changed=row.changed,
                removed=row.removed,
                artifact=row.artifact.to_proto(),
            ),
            subject=name,
            correlation_id=request.correlation_id,
        )
        return version_proto(row)

    def _store_version(self, name: str, catalog: Catalog, request, previous: VersionRow | None) -> VersionRow:
        artifacts = self.rt.artifacts
        upload = artifacts.put_bytes(request.content, request.filename or "catalog", "application/octet-stream")
        normalised = artifacts.put_bytes(
            json.dumps(catalog.to_dict(), ensure_ascii=False).encode(), f"{name}.catalog.json", "application/json"
        )
        diff = diff_catalogs(self.store.catalog(previous) if previous else None, catalog)
        row = VersionRow(
            name=name,
            version=catalog.version,
            created_at=now(),
            entity_count=len(catalog.entities),
            source_format=catalog.source_format,
            artifact=normalised,
            upload=upload,
            previous_version=previous.version if previous else "",
            added=list(diff.added),
            changed=list(diff.changed),
            removed=list(diff.removed),
            warnings=list(catalog.warnings),
        )
        self.store.add(row)
        return row

    async def GetCatalog(self, request, context):
        return version_proto(self.store.get(validate_catalog_name(request.name), request.version))

    async def ListCatalogs(self, request, context):
        return catalog_pb2.ListCatalogsResponse(catalogs=[version_proto(r) for r in self.store.names()])

    async def ListVersions(self, request, context):
        rows = self.store.versions(validate_catalog_name(request.name))
        return catalog_pb2.ListVersionsResponse(versions=[version_proto(r) for r in rows])

    async def GetProfile(self, request, context):
        row = self.store.get(validate_catalog_name(request.name), request.version)
        profile = profile_catalog(await asyncio.to_thread(self.store.catalog, row))
        return catalog_pb2.CatalogProfile(
            name=row.name,
            version=row.version,
            entity_count=profile.entity_count,
            fields=[catalog_pb2.FieldFill(field=f.field, filled=f.filled, rate=f.rate) for f in profile.fields],
            roles=[catalog_pb2.FieldFill(field=f.field, filled=f.filled, rate=f.rate) for f in profile.roles],
            status_distribution=profile.status_distribution,
            domain_distribution=profile.domain_distribution,
            warnings=list(profile.warnings),
        )

