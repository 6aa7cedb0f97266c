"""A service process: grpc.aio server with health and reflection, the event bus, jobs, metrics.

A service module only declares its servicers and job handlers:

    async def setup(rt: Runtime) -> None:
        rt.add_servicer(
            catalog_pb2_grpc.add_CatalogServiceServicer_to_server, CatalogServicer(rt), "dyag.v1.CatalogService"
        )
        rt.handlers["dataset.build"] = build_dataset

    run(ServiceSettings(service_name="dataset-builder"), setup)
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Counter, Histogram, start_http_server

from dyag.v1 import jobs_pb2, jobs_pb2_grpc
from dyag_core.errors import DyagError
from dyag_runtime.artifacts import ArtifactStore, ArtifactStoreFull, open_artifact_store
from dyag_runtime.events import EVENTS_STREAM, TRANSIENT, EventBus, ProcessedEvents, event_subject
from dyag_runtime.idempotency import key_of, request_key
from dyag_runtime.jobs import STATUS_NAMES, JobHandler, JobNotFound, JobStore, JobWorker, record_to_proto
from dyag_runtime.logs import configure_logging
from dyag_runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

RPC_COUNT = Counter("dyag_grpc_requests_total", "gRPC requests handled", ["service", "method", "code"])
RPC_SECONDS = Histogram("dyag_grpc_request_seconds", "gRPC request duration", ["service", "method"])

# Domain error codes that are not plain bad input.
_STATUS_OF_CODE = {
    "not_found": grpc.StatusCode.NOT_FOUND,
    "too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "conflict": grpc.StatusCode.FAILED_PRECONDITION,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "service_not_deployed": grpc.StatusCode.UNAVAILABLE,
    "storage_full": grpc.StatusCode.RESOURCE_EXHAUSTED,  # the gateway answers 507
}
ERROR_CODE_KEY = "dyag-error-code"


def domain_error(exc: Exception) -> DyagError | None:
    """The domain error a handler's exception is, if any: a full artifact store is one (storage_full), not a bug."""
    if isinstance(exc, DyagError):
        return exc
    if isinstance(exc, ArtifactStoreFull):
        return DyagError("storage_full", f"{exc}: free space there, then try again (nothing was stored)")
    return None


def status_of(error: DyagError) -> grpc.StatusCode:
    if error.code.endswith("not_found"):
        return grpc.StatusCode.NOT_FOUND
    return _STATUS_OF_CODE.get(error.code, grpc.StatusCode.INVALID_ARGUMENT)


class ErrorsAndMetrics(grpc.aio.ServerInterceptor):
    """Turns domain errors into gRPC statuses that name the problem, and counts every call."""

    def __init__(self, service: str):
        self.service = service

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method.rsplit("/", 1)[-1]
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _wrap_unary(self, inner, method):
        async def call(request, context):
            start = time.perf_counter()
            code = "OK"
            request_key.set(key_of(context.invocation_metadata()))  # this call's task only: the handler sees it
            try:
                return await inner(request, context)
            except Exception as raised:
                if isinstance(raised, TRANSIENT):  # NATS failing over: the caller may try again (idempotent)
                    code = "UNAVAILABLE"
                    await context.abort(grpc.StatusCode.UNAVAILABLE, f"NATS is not answering: {raised!r}")
                error = domain_error(raised)
                if error is None:
                    code = context.code().name if context.code() else "UNKNOWN"
                    raise
                code = status_of(error).name
                context.set_trailing_metadata(((ERROR_CODE_KEY, error.code),))
                await context.abort(status_of(error), error.message)
            finally:
                RPC_COUNT.labels(self.service, method, code).inc()
                RPC_SECONDS.labels(self.service, method).observe(time.perf_counter() - start)

        return call

    def _wrap_stream(self, inner, method):
        async def call(request, context):
            code = "OK"
            try:
                async for item in inner(request, context):
                    yield item
            except DyagError as exc:
                code = status_of(exc).name
                context.set_trailing_metadata(((ERROR_CODE_KEY, exc.code),))
                await context.abort(status_of(exc), exc.message)
            finally:
                RPC_COUNT.labels(self.service, method, code).inc()

        return call


class NotFound(DyagError):
    def __init__(self, what: str):
        super().__init__("not_found", f"{what} not found")


@dataclass
class Runtime:
    """What a service's setup gets: settings, bus, artifacts, jobs and the gRPC server."""

    settings: ServiceSettings
    bus: EventBus
    artifacts: ArtifactStore
    jobs: JobStore
    server: grpc.aio.Server
    handlers: dict[str, JobHandler] = field(default_factory=dict)
    service_names: list[str] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    worker: JobWorker | None = None

    def add_servicer(self, add_to_server: Callable, servicer: object, full_name: str) -> None:
        add_to_server(servicer, self.server)
        self.service_names.append(full_name)

    async def subscribe(self, event_type: str, payload_type: type, handler: Callable, *, consumer: str) -> None:
        """Run `handler` once per event of this type: a durable consumer, at-least-once, idempotent by event id."""
        await self.bus.consume(
            stream=EVENTS_STREAM,
            durable=consumer,
            subject=event_subject(event_type),
            payload_type=payload_type,
            handler=handler,
            processed=await ProcessedEvents.open(self.bus, consumer),
        )


class JobServicer(jobs_pb2_grpc.JobServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt

    async def _get(self, job_id: str) -> dict:
        try:
            return await self.rt.jobs.get(job_id)
        except JobNotFound:
            raise NotFound(f"job {job_id!r}") from None

    async def GetJob(self, request, context):
        return record_to_proto(await self._get(request.id))

    async def ListJobs(self, request, context):
        records = await self.rt.jobs.list(request.kind, STATUS_NAMES.get(request.status, ""), request.limit or 100)
        return jobs_pb2.ListJobsResponse(jobs=[record_to_proto(r) for r in records])

    async def CancelJob(self, request, context):
        await self._get(request.id)
        record = await self.rt.jobs.request_cancel(request.id)
        if self.rt.worker:
            await self.rt.worker.cancel_local(request.id)
        return record_to_proto(record)

    async def GetJobLogs(self, request, context):
        record = await self._get(request.id)
        lines = record["logs"][-request.tail :] if request.tail else record["logs"]
        return jobs_pb2.GetJobLogsResponse(
            lines=[jobs_pb2.JobLogLine(level=line["level"], message=line["message"]) for line in lines]
        )

    async def WatchJob(self, request, context):
        record = await self._get(request.id)
        yield record_to_proto(record)
        last = record["updated_at"]
        while record["status"] not in ("succeeded", "failed", "cancelled"):
            await asyncio.sleep(0.25)
            record = await self._get(request.id)
            if record["updated_at"] != last:
                last = record["updated_at"]
                yield record_to_proto(record)


async def _connect_bus(settings: ServiceSettings, attempts: int = 30) -> EventBus:
    for attempt in range(1, attempts + 1):
        try:
            return await EventBus.connect(settings.nats_url, settings.service_name, replicas=settings.nats_replicas)
        except ConnectionError as exc:
            if attempt == attempts:
                raise
            log.warning("waiting for NATS", extra={"error": str(exc), "attempt": attempt})
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


async def serve(settings: ServiceSettings, setup: Callable[[Runtime], Awaitable[None]]) -> None:
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    bus = await _connect_bus(settings)
    artifacts = open_artifact_store(settings.artifact_root(), settings.s3_endpoint_url)
    jobs = await JobStore.open(bus, settings.service_name)
    server = grpc.aio.server(interceptors=[ErrorsAndMetrics(settings.service_name)], options=settings.server_options())
    rt = Runtime(settings=settings, bus=bus, artifacts=artifacts, jobs=jobs, server=server)
    try:
        await setup(rt)
    except DyagError as exc:  # what the service cannot start with (its database unreachable…), said in one line
        log.error("cannot start", extra={"code": exc.code, "error": exc.message})
        await bus.close()
        raise SystemExit(f"{settings.service_name}: {exc.message}") from None
    rt.add_servicer(jobs_pb2_grpc.add_JobServiceServicer_to_server, JobServicer(rt), "dyag.v1.JobService")

    health_servicer = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*rt.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    address = f"{settings.grpc_host}:{settings.port()}"
    if server.add_insecure_port(address) == 0:
        raise SystemExit(f"{settings.service_name}: cannot listen on {address} (port in use?)")
    await server.start()
    for name in ["", *rt.service_names]:
        await _set_health(health_servicer, name, health_pb2.HealthCheckResponse.SERVING)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.grpc_host)

    if rt.handlers:
        rt.worker = JobWorker(
            jobs,
            rt.handlers,
            artifacts,
            settings.data_dir,
            ack_wait=settings.job_ack_wait_s,
            heartbeat=settings.job_heartbeat_s,
            max_attempts=settings.job_max_attempts,
            concurrency=settings.job_concurrency,
        )
        await rt.worker.start()
    log.info("serving", extra={"address": address, "services": rt.service_names, "job_kinds": sorted(rt.handlers)})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    for name in ["", *rt.service_names]:
        await _set_health(health_servicer, name, health_pb2.HealthCheckResponse.NOT_SERVING)
    if rt.worker is not None:
        await rt.worker.hand_back()
    await server.stop(grace=5)
    for hook in rt.on_shutdown:
        await hook()
    await bus.close()


async def _set_health(servicer, name: str, status) -> None:
    result = servicer.set(name, status)
    if asyncio.iscoroutine(result):
        await result


def run(settings: ServiceSettings, setup: Callable[[Runtime], Awaitable[None]]) -> None:
    asyncio.run(serve(settings, setup))
