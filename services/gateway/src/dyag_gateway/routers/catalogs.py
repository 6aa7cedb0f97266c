"""Catalogs: upload (versioned, content-hashed), list, versions, profile (the guide's step 1); sources (a catalog that
follows a file or an HTTP(S) URL, polled by dataset-builder)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from dyag.v1 import catalog_pb2
from dyag_core.catalog.names import default_name
from dyag_gateway.auth import require_scope
from dyag_gateway.convert import to_json
from dyag_gateway.errors import ApiError
from dyag_gateway.params import CatalogName, Version

router = APIRouter(prefix="/catalogs", tags=["catalogs"])

_UPLOAD_DOC = {
    # With a raw body (JSON or CSV), what the multipart form's fields say travels in the query string.
    "parameters": [
        {
            "name": "name",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "maxLength": 200, "example": "demo"},
            "description": "with a raw body: the catalog's name (required then)",
        },
        {
            "name": "filename",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "maxLength": 200, "example": "demo.json"},
            "description": "with a raw body: the file's name (helps detect its format)",
        },
        {
            "name": "reject_mojibake",
            "in": "query",
            "required": False,
            "schema": {"type": "boolean"},
            "description": "with a raw body: refuse mis-encoded text instead of repairing it",
        },
    ],
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "keyed JSON, JSON list, JSONL or CSV",
                        },
                        "name": {"type": "string", "description": "catalog name; default: from the file name"},
                        "roles": {"type": "string", "description": "field roles (YAML) for a non-default catalog"},
                        "reject_mojibake": {
                            "type": "boolean",
                            "description": "refuse mis-encoded text instead of repairing it",
                        },
                    },
                }
            },
            "application/json": {
                "schema": {"description": "the catalog itself; name in ?name="},
                "example": {"applications": [{"id": "demo-1", "nom": "Démo", "statut si": "En production"}]},
            },
            "text/csv": {"schema": {"type": "string"}},
        }
    },
}


async def read_limited(upload: UploadFile, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := await upload.read(1 << 20):
        size += len(chunk)
        if size > limit:
            raise ApiError(
                413, "too_large", f"the file is over the upload limit of {limit:,} bytes (DYAG_MAX_UPLOAD_BYTES)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "",
    status_code=201,
    dependencies=[Depends(require_scope("write"))],
    openapi_extra=_UPLOAD_DOC,
    summary="Upload a catalog: stores a new version and emits catalog.updated",
)
async def upload_catalog(request: Request) -> JSONResponse:
    limit = request.app.state.settings.max_upload_bytes
    declared = int(request.headers.get("content-length") or 0)
    if declared > limit + 1_000_000:
        raise ApiError(413, "too_large", f"the request is {declared:,} bytes, over the upload limit of {limit:,} bytes")
    content_type = request.headers.get("content-type", "")
    roles, reject = "", False
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_part_size=limit + 1)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "missing_file", "send the catalog as the multipart field 'file'")
        content = await read_limited(upload, limit)
        filename = upload.filename or ""
        name = str(form.get("name") or "") or default_name(filename or "catalog")
        roles = str(form.get("roles") or "")
        reject = str(form.get("reject_mojibake") or "").lower() in ("1", "true", "yes")
    else:
        chunks, size = [], 0
        async for chunk in request.stream():  # a body sent without Content-Length is cut off at the limit too
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "too_large", f"the catalog is over the upload limit of {limit:,} bytes")
            chunks.append(chunk)
        content = b"".join(chunks)
        filename = request.query_params.get("filename", "")
        name = request.query_params.get("name", "")
        if not name:
            raise ApiError(422, "missing_name", "give the catalog a name: POST /catalogs?name=applications_ia")
        reject = request.query_params.get("reject_mojibake", "").lower() in ("1", "true", "yes")
    version = await request.app.state.backends.catalogs().IngestCatalog(
        catalog_pb2.IngestCatalogRequest(
            name=name,
            content=content,
            filename=filename,
            roles_yaml=roles,
            reject_mojibake=reject,
            correlation_id=request.headers.get("x-correlation-id", ""),
        ),
        timeout=request.app.state.settings.grpc_timeout_s,
    )
    return JSONResponse(to_json(version), status_code=200 if version.unchanged else 201)


@router.get("", summary="Every catalog, at its latest version")
async def list_catalogs(request: Request) -> dict:
    reply = await request.app.state.backends.catalogs().ListCatalogs(catalog_pb2.ListCatalogsRequest())
    return {"catalogs": [to_json(c) for c in reply.catalogs]}


@router.get("/{name}", summary="A catalog's latest version (or ?version=)")
async def get_catalog(name: CatalogName, request: Request, version: Version = "") -> dict:
    reply = await request.app.state.backends.catalogs().GetCatalog(
        catalog_pb2.GetCatalogRequest(name=name, version=version)
    )
    return to_json(reply)


@router.get("/{name}/versions", summary="A catalog's versions, newest first")
async def list_versions(name: CatalogName, request: Request) -> dict:
    reply = await request.app.state.backends.catalogs().ListVersions(catalog_pb2.GetCatalogRequest(name=name))
    return {"versions": [to_json(v) for v in reply.versions]}


@router.get("/{name}/profile", summary="Entity count, per-field fill rate, status distribution (the guide's step 1.1)")
async def get_profile(name: CatalogName, request: Request, version: Version = "") -> dict:
    reply = await request.app.state.backends.catalogs().GetProfile(
        catalog_pb2.GetCatalogRequest(name=name, version=version)
    )
    return to_json(reply)


# --- sources: dataset-builder polls them; each change is a new version and one catalog.updated, as an upload -------
class SourceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        "", description="either: an absolute path to the catalog file, read by dataset-builder on its own host"
    )
    url: str = Field("", description="or: an http:// or https:// URL, polled with If-None-Match / If-Modified-Since")
    interval_s: int = Field(
        0,
        ge=0,
        le=2_147_483_647,
        description="seconds between polls; 0: dataset-builder's default (60 s); "
        "at least DYAG_SOURCE_MIN_INTERVAL_S (5 s)",
    )
    reject_mojibake: bool = Field(
        False, description="refuse mis-encoded text instead of repairing it (the poll fails, the last version stays)"
    )
    roles: str = Field("", description="field roles (YAML) for a non-default catalog")


@router.put(
    "/{name}/source",
    dependencies=[Depends(require_scope("write"))],
    summary="Follow a file or an HTTP(S) URL: polled at once, then every interval_s; each change is a new version",
)
async def set_source(name: CatalogName, body: SourceBody, request: Request) -> dict:
    reply = await request.app.state.backends.catalogs().SetSource(
        catalog_pb2.SetSourceRequest(
            name=name,
            path=body.path,
            url=body.url,
            interval_s=body.interval_s,
            reject_mojibake=body.reject_mojibake,
            roles_yaml=body.roles,
            correlation_id=request.headers.get("x-correlation-id", ""),
        ),
        timeout=request.app.state.settings.grpc_timeout_s,
    )
    return to_json(reply)


@router.get("/{name}/source", summary="A catalog's source and its poll state (last check, last change, last error…)")
async def get_source(name: CatalogName, request: Request) -> dict:
    return to_json(await request.app.state.backends.catalogs().GetSource(catalog_pb2.CatalogSourceRequest(name=name)))


@router.delete(
    "/{name}/source",
    dependencies=[Depends(require_scope("admin"))],
    summary="Stop following the source (the catalog and its versions stay)",
)
async def remove_source(name: CatalogName, request: Request) -> dict:
    return to_json(
        await request.app.state.backends.catalogs().RemoveSource(catalog_pb2.CatalogSourceRequest(name=name))
    )


@router.post(
    "/{name}/source/poll",
    dependencies=[Depends(require_scope("write"))],
    summary="Poll the source now: changed (a new version), unchanged, or failed (the last version stays)",
)
async def poll_source(name: CatalogName, request: Request) -> dict:
    reply = await request.app.state.backends.catalogs().PollSource(
        catalog_pb2.CatalogSourceRequest(name=name, correlation_id=request.headers.get("x-correlation-id", "")),
        timeout=request.app.state.settings.grpc_timeout_s,
    )
    return to_json(reply)
