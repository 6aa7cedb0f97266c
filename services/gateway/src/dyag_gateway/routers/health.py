"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The gateway process is up")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="The services behind the gateway and NATS are serving")
async def readyz(request: Request) -> JSONResponse:
    services = await request.app.state.backends.health()
    nc = request.app.state.nats
    nats_state = "connected" if nc is not None and nc.is_connected else "disconnected"
    ready = nats_state == "connected" and all(s == "serving" for s in services.values())
    body = {"status": "ready" if ready else "not_ready", "services": services, "nats": nats_state}
    return JSONResponse(body, status_code=200 if ready else 503)
