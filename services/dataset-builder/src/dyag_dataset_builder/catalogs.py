"""CatalogService: ingest, version, diff and profile catalogs; emits catalog.updated."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime

from dyag.v1 import catalog_pb2, catalog_pb2_grpc, events_pb2
from dyag_core.catalog import Catalog, FieldRoles, diff_catalogs, load_catalog, profile_catalog, validate_catalog_name
from dyag_core.errors import DyagError
from dyag_dataset_builder.catalog_store import CatalogNotFound, CatalogStore, VersionRow, now
from dyag_dataset_builder.source_store import SourceRecord
from dyag_dataset_builder.sources import CatalogSources, PollResult
from dyag_runtime.server import Runtime


def rfc3339(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if ts else ""


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
        created_at=rfc3339(row.created_at),
    )


def source_proto(record: SourceRecord) -> catalog_pb2.CatalogSource:
    message = catalog_pb2.CatalogSource(
        name=record.name,
        kind=record.kind,
        path=record.location if record.kind == "file" else "",
        url=record.location if record.kind == "http" else "",
        interval_s=record.interval_s,
        reject_mojibake=record.reject_mojibake,
        created_at=rfc3339(record.created_at),
        last_checked_at=rfc3339(record.last_checked_at),
        last_changed_at=rfc3339(record.last_changed_at),
        last_version=record.last_version,
        consecutive_failures=record.consecutive_failures,
        next_check_at=rfc3339(record.next_check_at),
        etag=record.etag,
        last_modified=record.last_modified,
        mtime=rfc3339(record.mtime_ns / 1e9) if record.mtime_ns else "",
        size=record.size,
        sha256=record.sha256,
        checks=record.checks,
        changes=record.changes,
    )
    if record.error_code:
        message.last_error.CopyFrom(
            catalog_pb2.SourceError(code=record.error_code, message=record.error_message, at=rfc3339(record.error_at))
        )
    return message


def poll_proto(result: PollResult) -> catalog_pb2.SourcePoll:
    reply = catalog_pb2.SourcePoll(outcome=result.outcome, detail=result.detail, source=source_proto(result.record))
    if result.version is not None:
        reply.version.CopyFrom(version_proto(result.version, unchanged=result.outcome != "changed"))
    return reply


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, rt: Runtime, store: CatalogStore, max_bytes: int):
        self.rt, self.store, self.max_bytes = rt, store, max_bytes
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.sources: CatalogSources | None = None  # set by the service's setup: they ingest through self.ingest

    def version_or_none(self, name: str, version: str) -> VersionRow | None:
        try:
            return self.store.get(name, version)
        except CatalogNotFound:
            return None

    async def IngestCatalog(self, request, context):
        row, unchanged = await self.ingest(
            name=request.name,
            content=request.content,
            filename=request.filename,
            roles_yaml=request.roles_yaml,
            reject_mojibake=request.reject_mojibake,
            correlation_id=request.correlation_id,
        )
        return version_proto(row, unchanged=unchanged)

    async def ingest(
        self,
        *,
        name: str,
        content: bytes,
        filename: str = "",
        roles_yaml: str = "",
        reject_mojibake: bool = False,
        correlation_id: str = "",
    ) -> tuple[VersionRow, bool]:
        """The one way a catalog gets a version (an upload, a source's change): parse, repair and check it, store it
        content-hashed, emit catalog.updated. (the version, True) when the content is the current version already."""
        name = validate_catalog_name(name)
        roles = FieldRoles.from_yaml(roles_yaml) if roles_yaml else None
        catalog = await asyncio.to_thread(
            load_catalog,
            content,
            filename=filename or None,
            roles=roles,
            repair_mojibake_text=not reject_mojibake,
            max_bytes=self.max_bytes,
        )
        async with self._locks[name]:  # two uploads of one catalog are versioned one after the other
            for _ in range(20):
                previous = self.store.latest(name)
                if previous and previous.version == catalog.version:
                    return previous, True  # this content is the latest version (perhaps another replica's upload)
                row = await asyncio.to_thread(self._store_version, name, catalog, content, filename, previous)
                if row is not None:
                    break
                # Not stored: another replica stored a version after `previous` meanwhile, or this content is an
                # earlier version of the catalog.
                earlier = self.version_or_none(name, catalog.version)
                if earlier is not None and earlier.version != self.store.get(name).version:
                    raise DyagError(
                        "conflict",
                        f"catalog {name!r} had this content before, as version {earlier.version}: versions are named "
                        "by their content, so an earlier content cannot become the latest version again",
                    )
            else:
                raise DyagError("unavailable", f"catalog {name!r}: too many concurrent uploads; try again")
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
            correlation_id=correlation_id,
        )
        return row, False

    def _store_version(
        self, name: str, catalog: Catalog, content: bytes, filename: str, previous: VersionRow | None
    ) -> VersionRow | None:
        """The version stored after `previous`; None when the store refused it (CatalogStore.add)."""
        artifacts = self.rt.artifacts
        upload = artifacts.put_bytes(content, filename or "catalog", "application/octet-stream")
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
        return row if self.store.add(row) else None

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

    async def ReadCatalog(self, request, context):
        """A version's normalised records, the JSON stored at ingest, in chunks of 1 MiB."""
        row = self.store.get(validate_catalog_name(request.name), request.version)
        data = await asyncio.to_thread(self.rt.artifacts.get_bytes, row.artifact.digest)
        for start in range(0, len(data), 1 << 20):
            yield catalog_pb2.CatalogChunk(data=data[start : start + (1 << 20)])

    # --- sources: a catalog that follows a file or a URL (sources.py) ------------------------------------------------
    def _sources(self) -> CatalogSources:
        if self.sources is None:
            raise DyagError("unavailable", "this dataset-builder follows no catalog sources")
        return self.sources

    async def SetSource(self, request, context):
        result = await self._sources().set(
            request.name,
            path=request.path,
            url=request.url,
            interval_s=request.interval_s,
            reject_mojibake=request.reject_mojibake,
            roles_yaml=request.roles_yaml,
            correlation_id=request.correlation_id,
        )
        return poll_proto(result)

    async def GetSource(self, request, context):
        return source_proto(self._sources().get(request.name))

    async def RemoveSource(self, request, context):
        return source_proto(await self._sources().remove(request.name))

    async def PollSource(self, request, context):
        return poll_proto(await self._sources().poll(request.name, request.correlation_id))
