"""One client for every call between services: typed stubs over channels opened on first use, one mapping of gRPC
errors to DyagError, and the lookups several services make (a dataset's files, a catalog version's records, a split
sent to the validator).

    peers = Peers(settings)                        # asyncio services and the gateway
    dataset, files = await peers.dataset_files(dataset_id)
    catalog = await peers.load_catalog("applications_ia", "", rt.artifacts)

    with SyncPeers(settings) as peers:             # job threads (training, export): blocking calls
        dataset = peers.dataset(dataset_id)

A peer's refusal comes back as a DyagError with the peer's own error code (the `dyag-error-code` trailer its
server set), so a service that passes it on answers with the same status; a peer that cannot be reached gives
`unavailable`, naming the peer and what was asked of it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from dyag.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    dataset_pb2,
    dataset_pb2_grpc,
    evaluation_pb2_grpc,
    export_pb2_grpc,
    hosted_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    rag_pb2_grpc,
    training_pb2,
    training_pb2_grpc,
    validation_pb2,
    validation_pb2_grpc,
)
from dyag_core.errors import DyagError
from dyag_runtime.idempotency import SendKey
from dyag_runtime.server import ERROR_CODE_KEY  # the trailer a service's server sets on a refusal

if TYPE_CHECKING:
    from dyag_core.catalog.model import Catalog
    from dyag_runtime.artifacts import ArtifactStore
    from dyag_runtime.settings import PlatformSettings

T = TypeVar("T")
CALL_TIMEOUT_S = 30.0
FilesByKind = dict[tuple[str, str], jobs_pb2.ArtifactRef]


# --- what several services read off a dataset -------------------------------------------------------------------------
def dataset_files(dataset: Any) -> FilesByKind:
    """A dataset's (or a dataset.built event's) files by (split, format): ("train", "openai"), ("test", "manifest")…"""
    return {(f.split, f.format): f.artifact for f in dataset.files}


def split_source(dataset: Any, split: str) -> validation_pb2.DatasetSource | None:
    """One split of a built dataset as the validator reads it (its OpenAI chat file and its manifest), or None."""
    files = dataset_files(dataset)
    if (split, "openai") not in files:
        return None
    source = validation_pb2.DatasetSource(artifact=files[(split, "openai")], filename=f"{split}.jsonl")
    if (split, "manifest") in files:
        source.manifest_artifact.CopyFrom(files[(split, "manifest")])
    return source


def peer_error(exc: grpc.RpcError, service: str, what: str, not_found: str = "not_found") -> DyagError:
    """A failed call as the domain's error: the peer's own code when it gave one, `not_found` (or the caller's name for
    it), `unavailable` when the peer could not be reached in time."""
    code = exc.code() if callable(getattr(exc, "code", None)) else grpc.StatusCode.UNKNOWN
    details = (exc.details() if callable(getattr(exc, "details", None)) else "") or code.name
    trailers = exc.trailing_metadata() if callable(getattr(exc, "trailing_metadata", None)) else None
    given = dict(trailers or ()).get(ERROR_CODE_KEY)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return DyagError("unavailable", f"cannot reach {service} for {what}: {details}")
    if code == grpc.StatusCode.NOT_FOUND:
        return DyagError(given if given and given.endswith("not_found") else not_found, details)
    return DyagError(given or code.name.lower(), details)


# --- the stubs --------------------------------------------------------------------------------------------------------
class _Stubs:
    """Typed stubs of every service, over `channel(service)` (the subclass opens it, async or blocking)."""

    def channel(self, service: str) -> Any:
        raise NotImplementedError

    def catalogs(self) -> catalog_pb2_grpc.CatalogServiceStub:
        return catalog_pb2_grpc.CatalogServiceStub(self.channel("dataset-builder"))

    def datasets(self) -> dataset_pb2_grpc.DatasetServiceStub:
        return dataset_pb2_grpc.DatasetServiceStub(self.channel("dataset-builder"))

    def validator(self) -> validation_pb2_grpc.ValidatorServiceStub:
        return validation_pb2_grpc.ValidatorServiceStub(self.channel("validator"))

    def rag(self) -> rag_pb2_grpc.RagServiceStub:
        return rag_pb2_grpc.RagServiceStub(self.channel("rag-service"))

    def trainer(self) -> training_pb2_grpc.TrainerServiceStub:
        return training_pb2_grpc.TrainerServiceStub(self.channel("gpu-lora-trainer"))

    def hosted(self) -> hosted_pb2_grpc.HostedTrainerServiceStub:
        return hosted_pb2_grpc.HostedTrainerServiceStub(self.channel("openai-trainer"))

    def evaluator(self) -> evaluation_pb2_grpc.EvaluatorServiceStub:
        return evaluation_pb2_grpc.EvaluatorServiceStub(self.channel("evaluator"))

    def exporter(self) -> export_pb2_grpc.ExporterServiceStub:
        return export_pb2_grpc.ExporterServiceStub(self.channel("model-exporter"))

    def jobs(self, service: str) -> jobs_pb2_grpc.JobServiceStub:
        return jobs_pb2_grpc.JobServiceStub(self.channel(service))


class Peers(_Stubs):
    """The asyncio client: channels opened on first use (never at import or start), closed by close().

    `services`: the services this deployment runs (the gateway's DYAG_SERVICES); a call to another one is refused
    with `service_not_deployed`. None: every service is assumed reachable at its address."""

    def __init__(
        self, settings: PlatformSettings, *, timeout_s: float = CALL_TIMEOUT_S, services: Iterable[str] | None = None
    ):
        self.settings, self.timeout_s = settings, timeout_s
        self.services = None if services is None else tuple(services)
        self._channels: dict[str, grpc.aio.Channel] = {}

    def deployed(self, service: str) -> bool:
        return self.services is None or service in self.services

    def address(self, service: str) -> str:
        return self.settings.address_of(service)

    def channel(self, service: str) -> grpc.aio.Channel:
        if not self.deployed(service):
            raise DyagError(
                "service_not_deployed", f"the {service} service is not part of this deployment (DYAG_SERVICES)"
            )
        if service not in self._channels:
            self._channels[service] = grpc.aio.insecure_channel(
                self.address(service), options=self.settings.channel_options(), interceptors=[SendKey()]
            )
        return self._channels[service]

    async def call(self, service: str, what: str, rpc: Callable[[], Awaitable[T]], not_found: str = "not_found") -> T:
        """One call, its failure as a DyagError (peer_error)."""
        try:
            return await rpc()
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc, service, what, not_found) from None

    async def dataset(self, dataset_id: str) -> dataset_pb2.Dataset:
        return await self.call(
            "dataset-builder",
            f"dataset {dataset_id}",
            lambda: self.datasets().GetDataset(dataset_pb2.GetDatasetRequest(id=dataset_id), timeout=self.timeout_s),
            "dataset_not_found",
        )

    async def dataset_files(self, dataset_id: str) -> tuple[dataset_pb2.Dataset, FilesByKind]:
        dataset = await self.dataset(dataset_id)
        return dataset, dataset_files(dataset)

    async def catalog_version(self, name: str, version: str = "") -> catalog_pb2.CatalogVersion:
        return await self.call(
            "dataset-builder",
            f"the catalog {name}",
            lambda: self.catalogs().GetCatalog(
                catalog_pb2.GetCatalogRequest(name=name, version=version), timeout=self.timeout_s
            ),
            "catalog_not_found",
        )

    async def load_catalog(self, name: str, version: str, artifacts: ArtifactStore) -> Catalog:
        """A catalog version's records: its version from dataset-builder, its content from the artifact store."""
        reply = await self.catalog_version(name, version)
        return await read_catalog(artifacts, reply.artifact.digest)

    async def validate_split(
        self, dataset: dataset_pb2.Dataset, split: str, *, timeout_s: float | None = None, **fields: Any
    ) -> validation_pb2.ValidationResult:
        """One split of a built dataset checked by the validator against the dataset's catalog version."""
        source = split_source(dataset, split)
        if source is None:
            has = sorted({s for s, fmt in dataset_files(dataset) if fmt == "openai"})
            raise DyagError(
                "split_not_found",
                f"dataset {dataset.id} has no {split!r} split in the OpenAI chat format; "
                f"it has {', '.join(has) or 'none'}",
            )
        request = validation_pb2.ValidateRequest(
            dataset=source,
            catalog=dataset.catalog,
            catalog_version=dataset.catalog_version,
            split_counts={k: v for k, v in dataset.split_counts.items() if k != "all"},
            **fields,
        )
        return await self.call(
            "validator",
            f"the {split} split of dataset {dataset.id}",
            lambda: self.validator().Validate(request, timeout=timeout_s or 20 * self.timeout_s),
        )

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(c.close() for c in channels), return_exceptions=True)


async def read_catalog(artifacts: ArtifactStore, digest: str) -> Catalog:
    """A stored catalog version's records (the JSON dataset-builder wrote), parsed off the event loop."""
    from dyag_core.catalog.model import Catalog

    data = await asyncio.to_thread(artifacts.get_bytes, digest)
    return await asyncio.to_thread(lambda: Catalog.from_dict(json.loads(data)))


class SyncPeers(_Stubs):
    """The blocking client, for job handlers that run in worker threads (training, export)."""

    def __init__(self, settings: PlatformSettings, *, timeout_s: float = CALL_TIMEOUT_S):
        self.settings, self.timeout_s = settings, timeout_s
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def channel(self, service: str) -> grpc.Channel:
        with self._lock:
            if service not in self._channels:
                self._channels[service] = grpc.insecure_channel(
                    self.settings.address_of(service), options=self.settings.channel_options()
                )
            return self._channels[service]

    def call(self, service: str, what: str, rpc: Callable[[], T], not_found: str = "not_found") -> T:
        try:
            return rpc()
        except grpc.RpcError as exc:
            raise peer_error(exc, service, what, not_found) from None

    def dataset(self, dataset_id: str) -> dataset_pb2.Dataset:
        return self.call(
            "dataset-builder",
            f"dataset {dataset_id}",
            lambda: self.datasets().GetDataset(dataset_pb2.GetDatasetRequest(id=dataset_id), timeout=self.timeout_s),
            "dataset_not_found",
        )

    def lora_model(self, model_id: str) -> training_pb2.LoraModel:
        return self.call(
            "gpu-lora-trainer",
            f"model {model_id}",
            lambda: self.trainer().GetModel(training_pb2.GetLoraModelRequest(id=model_id), timeout=self.timeout_s),
            "model_not_found",
        )

    def close(self) -> None:
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()

    def __enter__(self) -> SyncPeers:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
