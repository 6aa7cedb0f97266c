"""A catalog's records, a page at a time, and what changed between two of its versions, field by field.

The records come from dataset-builder (ReadCatalog: the normalised JSON stored at ingest). A version is a content hash,
so a version read once never changes: the gateway keeps the last few it read in memory.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from dyag.v1 import catalog_pb2
from dyag_core.text import fold
from dyag_gateway.params import CatalogName

router = APIRouter(prefix="/catalogs", tags=["catalogs"])

CACHED_VERSIONS = 4  # a 1,000-application catalog is a few MB parsed
MAX_PAGE = 500
_SUMMARY = ("id", "name", "long_name", "status")


class _Versions:
    """The last few catalog versions read, parsed: {(name, version): [record, …]}."""

    def __init__(self) -> None:
        self.entries: OrderedDict[tuple[str, str], list[dict[str, Any]]] = OrderedDict()
        self.locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def records(self, request: Request, name: str, version: str) -> list[dict[str, Any]]:
        key = (name, version)
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        async with self.locks.setdefault(key, asyncio.Lock()):
            if key not in self.entries:
                call = request.app.state.backends.catalogs().ReadCatalog(
                    catalog_pb2.GetCatalogRequest(name=name, version=version),
                    timeout=request.app.state.settings.grpc_timeout_s,
                )
                chunks = []
                async for chunk in call:
                    chunks.append(chunk.data)
                data = b"".join(chunks)
                self.entries[key] = (await asyncio.to_thread(json.loads, data)).get("entities", [])
                while len(self.entries) > CACHED_VERSIONS:
                    self.entries.popitem(last=False)
        self.locks.pop(key, None)
        return self.entries[key]


def _versions(request: Request) -> _Versions:
    cache = getattr(request.app.state, "catalog_records", None)
    if cache is None:
        cache = request.app.state.catalog_records = _Versions()
    return cache


async def _resolve(request: Request, name: str, version: str) -> str:
    """The version asked for, or the latest (a 404 names the catalog or version that is not there)."""
    reply = await request.app.state.backends.catalogs().GetCatalog(
        catalog_pb2.GetCatalogRequest(name=name, version=version)
    )
    return reply.version


def _matches(record: dict[str, Any], words: str) -> bool:
    text = fold(" ".join(str(record.get(k) or "") for k in ("id", "name", "long_name", "description")))
    return all(w in text for w in words.split())


def _label(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in _SUMMARY}


@router.get("/{name}/entities", summary="A catalog's records, a page at a time (search, status, ids)")
async def list_entities(
    name: CatalogName,
    request: Request,
    version: str = Query("", max_length=64, description="empty: the latest"),
    offset: int = Query(0, ge=0, le=10_000_000),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    q: str = Query("", max_length=200, description="words found in the id, name, long name or description"),
    status: str = Query("", max_length=200, description="only records with this status"),
    # At most 4,500 characters: percent-encoded (up to 12 bytes a character), the longest URL this route accepts
    # stays under the ~64 KB request line the HTTP server reads; past it the server answers a bare 400 of its own.
    ids: str = Query("", max_length=4_500, description="only these ids, comma-separated"),
) -> dict[str, Any]:
    version = await _resolve(request, name, version)
    records = await _versions(request).records(request, name, version)
    selected = records
    if ids:
        wanted = {i.strip() for i in ids.split(",") if i.strip()}
        selected = [r for r in selected if str(r.get("id")) in wanted]
    if status:
        selected = [r for r in selected if (r.get("status") or "") == status]
    if q.strip():
        words = fold(q)
        selected = [r for r in selected if _matches(r, words)]
    return {
        "name": name,
        "version": version,
        "count": len(records),
        "total": len(selected),
        "offset": offset,
        "limit": limit,
        "entities": selected[offset : offset + limit],
    }


@router.get(
    "/{name}/diff",
    summary="What changed between two versions of a catalog: records added, removed, and changed field by field",
)
async def diff_versions(
    name: CatalogName,
    request: Request,
    to: str = Query("", max_length=64, description="the newer version; empty: the latest"),
    since: str = Query(
        "", alias="from", max_length=64, description="the older version; empty: the version before `to`"
    ),
    kind: Literal["", "added", "changed", "removed"] = Query("", description="only this kind of change"),
    offset: int = Query(0, ge=0, le=10_000_000),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
) -> dict[str, Any]:
    to = await _resolve(request, name, to)
    if not since:
        versions = [
            v.version
            for v in (
                await request.app.state.backends.catalogs().ListVersions(catalog_pb2.GetCatalogRequest(name=name))
            ).versions
        ]
        older = versions[versions.index(to) + 1 :] if to in versions else []
        since = older[0] if older else ""
    else:
        since = await _resolve(request, name, since)
    cache = _versions(request)
    after = {str(r.get("id")): r for r in await cache.records(request, name, to)}
    before = {str(r.get("id")): r for r in await cache.records(request, name, since)} if since else {}
    changes: list[dict[str, Any]] = []
    for entity_id, record in after.items():
        old = before.get(entity_id)
        if old is None:
            changes.append({"kind": "added", **_label(record), "record": record})
        elif old != record:
            fields = [
                {"field": key, "before": old.get(key), "after": record.get(key)}
                for key in dict.fromkeys([*old, *record])
                if old.get(key) != record.get(key)
            ]
            changes.append({"kind": "changed", **_label(record), "fields": fields, "record": record})
    changes += [
        {"kind": "removed", **_label(record), "record": record}
        for entity_id, record in before.items()
        if entity_id not in after
    ]
    counts = {k: sum(1 for c in changes if c["kind"] == k) for k in ("added", "changed", "removed")}
    selected = [c for c in changes if not kind or c["kind"] == kind]
    return {
        "name": name,
        "from": since,
        "to": to,
        "counts": counts,
        "total": len(selected),
        "offset": offset,
        "limit": limit,
        "changes": selected[offset : offset + limit],
    }
