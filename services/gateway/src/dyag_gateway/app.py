"""The FastAPI application: routers per service, one error shape, API keys with scopes, rate limits, the audit log,
metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager

import grpc
from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from prometheus_client import make_asgi_app
from starlette.exceptions import HTTPException

from dyag_core.errors import DyagError
from dyag_gateway import errors, links
from dyag_gateway.audit import AuditLog, AuditMiddleware
from dyag_gateway.auth import require_scope
from dyag_gateway.backends import Backends
from dyag_gateway.keys import BUCKET as KEYS_BUCKET
from dyag_gateway.keys import KeyStore, RateLimiter
from dyag_gateway.pipeline import Pipelines
from dyag_gateway.retraining import Retraining
from dyag_gateway.routers import (
    catalogs,
    console,
    datasets,
    evaluations,
    exports,
    health,
    hosted,
    jobs,
    keys,
    pipelines,
    rag,
    records,
    retraining,
    training,
    validation,
)
from dyag_gateway.settings import GatewaySettings
from dyag_runtime.events import TRANSIENT, EventBus, connect_nats

log = logging.getLogger(__name__)


async def _wait_for_nats(settings: GatewaySettings):
    deadline = time.monotonic() + settings.nats_wait_s
    while True:
        try:
            return await connect_nats(settings.nats_url, "gateway", connect_timeout=3)
        except ConnectionError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("waiting for NATS", extra={"error": str(exc)})
            await asyncio.sleep(1.0)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.backends = Backends(settings)
        try:
            app.state.nats = await _wait_for_nats(settings)
        except ConnectionError as exc:  # the gateway still answers; /readyz says NATS is down
            log.warning("NATS unreachable; job event streams are off", extra={"error": str(exc)})
            app.state.nats = None
        bus = None
        if app.state.nats is not None:
            bus = EventBus(app.state.nats, app.state.nats.jetstream(), "gateway", replicas=settings.nats_replicas)
        # Access: the keys created through /keys live in the KV bucket "api_keys"; state changes go to DYAG_AUDIT.
        if bus is not None:
            try:
                app.state.keys.attach(await bus.key_value(KEYS_BUCKET, history=5))
                app.state.audit = await AuditLog.open(bus)
            except Exception as exc:
                log.warning(
                    "the key store or the audit log is unavailable: only DYAG_API_KEYS are accepted",
                    extra={"error": str(exc)},
                )
        # Pipelines: their records in the KV bucket "pipelines", run (and resumed after a restart) by this gateway.
        app.state.pipelines = None
        if bus is not None:
            try:
                app.state.pipelines = await Pipelines.start(bus, app.state.backends, settings.grpc_timeout_s)
            except Exception as exc:
                log.warning("pipelines are off: their KV store or work queue is unavailable", extra={"error": str(exc)})
        # Retraining: catalog changes start challenger pipelines; each catalog's champion answers.
        app.state.retraining = None
        if app.state.pipelines is not None:
            try:
                app.state.retraining = await Retraining.start(
                    app.state.pipelines, app.state.backends, settings.grpc_timeout_s, settings.max_upload_bytes
                )
            except Exception as exc:
                log.warning(
                    "retraining is off: its KV store or event consumer is unavailable", extra={"error": str(exc)}
                )
        yield
        if app.state.retraining is not None:
            await app.state.retraining.close()
        if app.state.pipelines is not None:
            await app.state.pipelines.close()  # running pipelines stay running: the next gateway resumes them
        if app.state.nats is not None:
            await app.state.nats.close()
        await app.state.backends.close()

    app = FastAPI(
        title="Dyag",
        version="0.1.0",
        description="From an application catalog to a measured question-answering assistant. "
        "Every route but /healthz, /readyz, /metrics and the console's static files (/ui, which asks for a key and "
        "sends it with each call) needs an API key (X-API-Key) with a scope: read, write (jobs and uploads) or admin "
        "(keys, promotion, rollback, deletion).",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs else None,
        redoc_url="/redoc" if settings.docs else None,
        openapi_url="/openapi.json" if settings.docs else None,
    )
    app.state.settings = settings
    app.state.keys = KeyStore(settings.keys(), cache_s=settings.key_cache_s)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_min)
    app.state.audit = None
    app.add_middleware(AuditMiddleware)
    app.add_exception_handler(errors.ApiError, errors.api_error_handler)
    app.add_exception_handler(grpc.aio.AioRpcError, errors.grpc_error_handler)
    for transient in TRANSIENT:
        app.add_exception_handler(transient, errors.nats_error_handler)
    app.add_exception_handler(DyagError, errors.dyag_error_handler)
    app.add_exception_handler(RequestValidationError, errors.validation_error_handler)
    app.add_exception_handler(HTTPException, errors.http_error_handler)
    app.include_router(health.router)  # open: liveness and readiness probes
    app.include_router(console.router)  # open: the web console's files at /ui (its API calls carry the key)
    # Every other route needs a key with the read scope at least; a route that needs more names its scope.
    for router in (
        keys.router,
        catalogs.router,
        records.router,
        datasets.router,
        validation.router,
        rag.router,
        hosted.router,
        training.router,
        jobs.router,
        pipelines.router,
        evaluations.router,
        exports.router,
        retraining.router,
    ):
        app.include_router(router, dependencies=[Depends(require_scope("read"))])
    app.mount("/metrics", make_asgi_app())
    links.install(app)  # /openapi.json says where each returned id goes next
    return app
