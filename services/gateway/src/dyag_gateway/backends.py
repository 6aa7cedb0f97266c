"""The gateway's peers: every deployed service's channel opened at start (dyag_runtime.peers' typed stubs over them),
a service this deployment does not run refused with a 503, and the services' health."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dyag_gateway.errors import ApiError
from dyag_gateway.settings import GatewaySettings
from dyag_runtime.peers import Peers


class Backends(Peers):
    def __init__(self, settings: GatewaySettings):
        super().__init__(settings, timeout_s=settings.grpc_timeout_s)
        options = settings.grpc_options()
        self.timeout = settings.grpc_timeout_s
        self.addresses: dict[str, str] = {name: settings.address_of(name) for name in settings.deployed()}
        self.channels: dict[str, grpc.aio.Channel] = {
            name: grpc.aio.insecure_channel(address, options=options) for name, address in self.addresses.items()
        }
        self._channels = self.channels

    def channel(self, service: str) -> grpc.aio.Channel:
        try:
            return self.channels[service]
        except KeyError:
            raise ApiError(503, "service_not_deployed", f"the {service} service is not part of this deployment") from None

    def service_of_job(self, job_id: str) -> str:
        """Job ids start with the name of the service that runs them."""
        for name in sorted(self.channels, key=len, reverse=True):
            if job_id.startswith(name + "-"):
                return name
        raise ApiError(404, "job_not_found", f"job {job_id!r} not found (no service owns jobs named like that)")

    async def health(self) -> dict[str, str]:
        async def check(name: str, channel: grpc.aio.Channel) -> tuple[str, str]:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2.0)
                return name, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status).lower()
            except grpc.aio.AioRpcError as exc:
                return name, f"unreachable ({exc.code().name.lower()})"

        return dict(await asyncio.gather(*(check(n, c) for n, c in self.channels.items())))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.channels.values()))
