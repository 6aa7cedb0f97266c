"""dyag_runtime.peers: the one client between services, against a real gRPC server on a local port (a fake
dataset-builder) and a port nobody listens on."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest

from dyag.v1 import dataset_pb2, dataset_pb2_grpc, jobs_pb2
from dyag_core.errors import DyagError
from dyag_runtime.peers import Peers, SyncPeers, dataset_files, split_source
from dyag_runtime.server import ERROR_CODE_KEY
from dyag_runtime.settings import PlatformSettings


def a_dataset(dataset_id: str = "ds-1") -> dataset_pb2.Dataset:
    ref = lambda name: jobs_pb2.ArtifactRef(name=name, digest="sha256:" + name.encode().hex().ljust(64, "0")[:64])  # noqa: E731
    return dataset_pb2.Dataset(
        id=dataset_id,
        catalog="apps",
        catalog_version="v1",
        split_counts={"train": 8, "test": 2, "all": 10},
        files=[
            dataset_pb2.DatasetFile(split="train", format="openai", artifact=ref("train.jsonl")),
            dataset_pb2.DatasetFile(split="train", format="manifest", artifact=ref("train.manifest")),
            dataset_pb2.DatasetFile(split="test", format="openai", artifact=ref("test.jsonl")),
        ],
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dataset_builder():
    """A real gRPC server answering GetDataset (ds-1; anything else: NOT_FOUND with the service's error code)."""
    from concurrent.futures import ThreadPoolExecutor

    class Servicer(dataset_pb2_grpc.DatasetServiceServicer):
        def GetDataset(self, request, context):  # noqa: N802
            if request.id == "ds-1":
                return a_dataset()
            context.set_trailing_metadata(((ERROR_CODE_KEY, "dataset_not_found"),))
            context.abort(grpc.StatusCode.NOT_FOUND, f"dataset {request.id} not found")

    port = free_port()
    server = grpc.server(ThreadPoolExecutor(2))
    dataset_pb2_grpc.add_DatasetServiceServicer_to_server(Servicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def settings_at(address: str):
    class At(PlatformSettings):
        def address_of(self, service: str) -> str:
            return address

    return At()


def test_a_dataset_s_files_and_a_split_as_the_validator_reads_it():
    dataset = a_dataset()
    files = dataset_files(dataset)
    assert set(files) == {("train", "openai"), ("train", "manifest"), ("test", "openai")}
    source = split_source(dataset, "train")
    assert (
        source.filename == "train.jsonl"
        and source.artifact.name == "train.jsonl"
        and source.manifest_artifact.name == "train.manifest"
    )
    assert not split_source(dataset, "test").HasField("manifest_artifact")
    assert split_source(dataset, "validation") is None


def test_the_async_client_reads_and_maps_a_refusal_to_the_peer_s_own_code(dataset_builder):
    async def scenario():
        peers = Peers(settings_at(dataset_builder), timeout_s=5)
        try:
            dataset, files = await peers.dataset_files("ds-1")
            assert dataset.id == "ds-1" and ("train", "openai") in files
            with pytest.raises(DyagError) as refused:
                await peers.dataset("ds-404")
            assert refused.value.code == "dataset_not_found" and "ds-404" in refused.value.message
            with pytest.raises(DyagError) as no_split:
                await peers.validate_split(dataset, "validation")
            assert no_split.value.code == "split_not_found"
        finally:
            await peers.close()

    asyncio.run(scenario())


def test_the_blocking_client_reads_and_maps_a_refusal(dataset_builder):
    with SyncPeers(settings_at(dataset_builder), timeout_s=5) as peers:
        assert peers.dataset("ds-1").id == "ds-1"
        with pytest.raises(DyagError) as refused:
            peers.dataset("nope")
    assert refused.value.code == "dataset_not_found"


def test_a_peer_nobody_answers_is_unavailable_and_named():
    async def scenario():
        peers = Peers(settings_at(f"127.0.0.1:{free_port()}"), timeout_s=1)
        try:
            with pytest.raises(DyagError) as down:
                await peers.dataset("ds-1")
        finally:
            await peers.close()
        return down.value

    error = asyncio.run(scenario())
    assert error.code == "unavailable" and "dataset-builder" in error.message and "ds-1" in error.message
