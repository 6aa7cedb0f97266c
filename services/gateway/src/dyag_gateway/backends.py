"""gRPC channels to the services, opened once, and their health."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dyag.v1 import catalog_pb2_grpc, dataset_pb2_grpc, evaluation_pb2_grpc, hosted_pb2_grpc, jobs_pb2_grpc, rag_pb2_grpc, training_pb2_grpc, validation_pb2_grpc
from dyag.v1 import export_pb2_grpc
from dyag_gateway.errors import ApiError
from dyag_gateway.settings import GatewaySettings


class Backends:
    def __init__(self, settings: GatewaySettings):
        options = settings.grpc_options()
        self.timeout = settings.grpc_timeout_s
        self.addresses: dict[str, str] = {name: settings.address_of(name) for name in settings.deployed()}
        self.channels: dict[str, grpc.aio.Channel] = {
            name: grpc.aio.insecure_channel(address, options=options) for name, address in self.addresses.items()
        }

    def channel(self, service: str) -> grpc.aio.Channel:
        try:
            return self.channels[service]
        except KeyError:
            raise ApiError(503, "service_not_deployed", f"the {service} service is not part of this deployment") from None

    def catalogs(self) -> catalog_pb2_grpc.CatalogServiceStub:
        return catalog_pb2_grpc.CatalogServiceStub(self.channel("dataset-builder"))

    def datasets(self) -> dataset_pb2_grpc.DatasetServiceStub:
        return dataset_pb2_grpc.DatasetServiceStub(self.channel("dataset-builder"))

    def validator(self) -> validation_pb2_grpc.ValidatorServiceStub:
        return validation_pb2_grpc.ValidatorServiceStub(self.channel("validator"))

    def rag(self) -> rag_pb2_grpc.RagServiceStub:
        return rag_pb2_grpc.RagServiceStub(self.channel("rag-service"))

    def hosted(self) -> hosted_pb2_grpc.HostedTrainerServiceStub:
        return hosted_pb2_grpc.HostedTrainerServiceStub(self.channel("openai-trainer"))

    def trainer(self) -> training_pb2_grpc.TrainerServiceStub:
        return training_pb2_grpc.TrainerServiceStub(self.channel("gpu-lora-trainer"))

    def evaluator(self) -> evaluation_pb2_grpc.EvaluatorServiceStub:
        return evaluation_pb2_grpc.EvaluatorServiceStub(self.channel("evaluator"))

    def exporter(self) -> export_pb2_grpc.ExporterServiceStub:
        return export_pb2_grpc.ExporterServiceStub(self.channel("model-exporter"))

    def jobs(self, service: str) -> jobs_pb2_grpc.JobServiceStub:
        return jobs_pb2_grpc.JobServiceStub(self.channel(service))

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
