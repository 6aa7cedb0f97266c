"""The artifact store's contract, for the local folder and the S3 backend (against moto's S3 server)."""

from __future__ import annotations

import errno
import hashlib
import socket

import pytest

from dyag_runtime import artifacts
from dyag_runtime.artifacts import (
    ArtifactNotFound,
    ArtifactStoreFull,
    LocalArtifactStore,
    S3ArtifactStore,
    open_artifact_store,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    server_module = pytest.importorskip("moto.server")
    port = _free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, monkeypatch):
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "artifacts")
    endpoint = request.getfixturevalue("s3_endpoint")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="dyag")
    return open_artifact_store("s3://dyag/artifacts", endpoint)


def test_put_and_get_bytes_by_content_hash(store):
    data = "catalogue: 45 applications, é".encode()
    artifact = store.put_bytes(data, "catalog.json", "application/json")
    assert artifact.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert artifact.size == len(data) and artifact.name == "catalog.json"
    assert store.get_bytes(artifact.digest) == data
    assert store.exists(artifact.digest)


def test_the_same_content_is_stored_once_under_the_same_digest(store):
    first = store.put_bytes(b"same", "a.txt")
    second = store.put_bytes(b"same", "b.txt")
    assert first.digest == second.digest and second.name == "b.txt"


def test_files_round_trip(store, tmp_path):
    source = tmp_path / "train.jsonl"
    source.write_bytes(b'{"messages": []}\n' * 1000)
    artifact = store.put_file(source)
    fetched = store.fetch(artifact.digest, tmp_path / "out" / "copy.jsonl")
    assert fetched.read_bytes() == source.read_bytes() and artifact.name == "train.jsonl"


def test_a_missing_artifact_is_named(store, tmp_path):
    missing = "sha256:" + "0" * 64
    with pytest.raises(ArtifactNotFound):
        store.get_bytes(missing)
    with pytest.raises(ArtifactNotFound):
        store.fetch(missing, tmp_path / "x")
    assert not store.exists(missing)


@pytest.mark.parametrize("digest", ["md5:abc", "sha256:xyz", "sha256:" + "a" * 63, "../../etc/passwd"])
def test_malformed_digests_are_refused(store, digest):
    with pytest.raises(ValueError, match="not an artifact digest"):
        store.get_bytes(digest)


def test_s3_url_opens_the_s3_backend(s3_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert isinstance(open_artifact_store("s3://bucket/prefix", s3_endpoint), S3ArtifactStore)


@pytest.mark.parametrize("how", ["bytes", "file"])
def test_a_full_disk_leaves_no_half_written_file_and_says_so(tmp_path, monkeypatch, how):
    """ENOSPC in the middle of a write (bench/bench_faults.py's disk-full case): the temp file is removed, nothing is
    stored under the digest, and the error names the store and the full disk."""
    store = LocalArtifactStore(tmp_path / "store")
    real_fdopen = artifacts.os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(bytes(data)[:10])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(artifacts.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    data = b"x" * 100_000
    with pytest.raises(ArtifactStoreFull, match="is full .no space left on device. writing big.bin") as raised:
        if how == "bytes":
            store.put_bytes(data, "big.bin")
        else:
            (tmp_path / "big.bin").write_bytes(data)
            store.put_file(tmp_path / "big.bin")
    assert raised.value.errno == errno.ENOSPC and str(tmp_path / "store") in str(raised.value)
    assert list((tmp_path / "store").glob(".incoming-*")) == []
    assert not store.exists("sha256:" + hashlib.sha256(data).hexdigest())


def test_a_full_store_is_a_storage_full_error_that_the_gateway_answers_507():
    import grpc

    from dyag_gateway.errors import api_error_of
    from dyag_runtime.artifacts import ArtifactStoreFull
    from dyag_runtime.server import ERROR_CODE_KEY, domain_error, status_of

    error = domain_error(ArtifactStoreFull(28, "the artifact store /data is full"))
    assert error is not None and error.code == "storage_full" and "/data is full" in error.message
    assert status_of(error) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert domain_error(ValueError("a bug")) is None  # not a domain error: it stays a server error
    refused = grpc.aio.AioRpcError(
        status_of(error),
        grpc.aio.Metadata(),
        grpc.aio.Metadata((ERROR_CODE_KEY, error.code)),
        details=error.message,
    )
    api = api_error_of(refused)
    assert (api.status, api.code) == (507, "storage_full")
    too_large = grpc.aio.AioRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.aio.Metadata(), grpc.aio.Metadata((ERROR_CODE_KEY, "too_large")), "big"
    )
    assert api_error_of(too_large).status == 413
