"""API keys (create, list, revoke) and the audit log: admin only."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from dyag_gateway.auth import caller, require_scope
from dyag_gateway.errors import ApiError
from dyag_gateway.params import Id

router = APIRouter(tags=["access"], dependencies=[Depends(require_scope("admin"))])


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, description="who or what holds the key, e.g. 'ci' or 'alice'")
    scopes: list[Literal["read", "write", "admin"]] = Field(
        min_length=1, description="read; write (includes read): jobs and uploads; admin (includes both)"
    )
    rate_limit_per_min: int | None = Field(
        None, ge=1, le=1_000_000, description="this key's requests a minute per gateway; empty: the gateway's default"
    )


@router.post("/keys", status_code=201, summary="Create an API key: the key is in this answer only, never again")
async def create_key(body: KeyBody, request: Request) -> JSONResponse:
    key, record = await request.app.state.keys.create(
        body.name.strip(), list(body.scopes), by=caller(request), rate_limit_per_min=body.rate_limit_per_min
    )
    return JSONResponse({"key": key, **record}, status_code=201, headers={"Cache-Control": "no-store"})


@router.get("/keys", summary="Every key: id (a prefix of its sha256), name, scopes, dates; never a key")
async def list_keys(request: Request) -> dict:
    return {"keys": await request.app.state.keys.list()}


@router.delete("/keys/{key_id}", summary="Revoke a key: refused by every gateway replica within seconds")
async def revoke_key(key_id: Id, request: Request) -> dict:
    return await request.app.state.keys.revoke(key_id, by=caller(request))


@router.get("/audit", summary="The audit log, newest first: who (key, caller), what (method, path, status), when")
async def audit(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    before: int = Query(0, ge=0, description="only records before this sequence number (paging)"),
) -> dict:
    log = getattr(request.app.state, "audit", None)
    if log is None:
        raise ApiError(
            503, "audit_unavailable", "the audit log lives in NATS, which the gateway could not reach; see /readyz"
        )
    return {"records": await log.newest(limit, before)}
