"""The gateway's peers: dyag_runtime.peers' one client, limited to the services this deployment runs (a call to
another is refused with a 503), plus what only the gateway asks: which service owns a job, and every service's
health."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dyag_gateway.errors import ApiError
from dyag_gateway.settings import GatewaySettings
from dyag_runtime.peers import Peers


class Backends(Peers):
    def __init__(self, settings: GatewaySettings):
        super().__init__(settings, timeout_s=settings.grpc_timeout_s, services=settings.deployed())
        self.services: tuple[str, ...]

    def service_of_job(self, job_id: str) -> str:
        """Job ids start with the name of the service that runs them."""
        for name in sorted(self.services, key=len, reverse=True):
            if job_id.startswith(name + "-"):
                return name
        raise ApiError(404, "job_not_found", f"job {job_id!r} not found (no service owns jobs named like that)")

    async def health(self) -> dict[str, str]:
        async def check(name: str) -> tuple[str, str]:
            try:
                reply = await health_pb2_grpc.HealthStub(self.channel(name)).Check(
                    health_pb2.HealthCheckRequest(), timeout=2.0
                )
                return name, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status).lower()
            except grpc.aio.AioRpcError as exc:
                return name, f"unreachable ({exc.code().name.lower()})"

        return dict(await asyncio.gather(*(check(n) for n in self.services)))
