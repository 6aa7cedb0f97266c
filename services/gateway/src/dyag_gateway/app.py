"""The FastAPI application: routers per service, one error shape, API keys, metrics."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import grpc
import nats
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from prometheus_client import make_asgi_app

from dyag_core.errors import DyagError
from dyag_gateway import errors
from dyag_gateway.backends import Backends
from dyag_gateway.pipeline import Pipelines
from dyag_gateway.retraining import Retraining
from dyag_gateway.routers import (
    catalogs,
    datasets,
    evaluations,
    exports,
    health,
    hosted,
    jobs,
    pipelines,
    rag,
    retraining,
    training,
    validation,
)
from dyag_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.backends = Backends(settings)
        try:
            app.state.nats = await nats.connect(
                settings.nats_url, name="gateway", max_reconnect_attempts=-1, connect_timeout=3
            )
        except Exception as exc:  # the gateway still answers; /readyz says NATS is down
            log.warning("NATS unreachable; job event streams are off", extra={"error": str(exc)})
            app.state.nats = None
        # Pipelines: their records in the KV bucket "pipelines", run (and resumed after a restart) by this gateway.
        app.state.pipelines = None
        if app.state.nats is not None:
            try:
                app.state.pipelines = await Pipelines.start(app.state.nats, app.state.backends, settings.grpc_timeout_s)
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
        "Routes that change state need an API key (X-API-Key).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_exception_handler(errors.ApiError, errors.api_error_handler)
    app.add_exception_handler(grpc.aio.AioRpcError, errors.grpc_error_handler)
    app.add_exception_handler(DyagError, errors.dyag_error_handler)
    app.add_exception_handler(RequestValidationError, errors.validation_error_handler)
    for router in (
        health.router,
        catalogs.router,
        datasets.router,
        validation.router,
        rag.router,
        hosted.router,
        training.router,
        jobs.router,
        pipelines.router,
    ):
        app.include_router(router)
    app.include_router(evaluations.router)
    app.include_router(exports.router)
    app.include_router(retraining.router)
    app.mount("/metrics", make_asgi_app())
    return app
