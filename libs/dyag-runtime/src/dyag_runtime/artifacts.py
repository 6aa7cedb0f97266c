"""Content-addressed artifact store: a local folder by default, S3-compatible behind the same interface.

An artifact is named by the sha256 of its bytes, so the same file is stored once and a
reference ("sha256:<hex>") stays valid across services, hosts and restarts.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dyag.v1 import jobs_pb2

_CHUNK = 1 << 20


class ArtifactNotFound(KeyError):
    pass


class ArtifactStoreFull(OSError):
    """The store's disk is full: nothing of the artifact was kept (no half-written file)."""


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    digest: str  # "sha256:<hex>"
    size: int
    media_type: str = "application/octet-stream"

    def to_proto(self) -> jobs_pb2.ArtifactRef:
        return jobs_pb2.ArtifactRef(name=self.name, digest=self.digest, size=self.size, media_type=self.media_type)

    @classmethod
    def from_proto(cls, ref: jobs_pb2.ArtifactRef) -> Artifact:
        return cls(ref.name, ref.digest, ref.size, ref.media_type)

    def to_dict(self) -> dict:
        return {"name": self.name, "digest": self.digest, "size": self.size, "media_type": self.media_type}


class ArtifactStore(Protocol):
    def put_bytes(self, data: bytes, name: str, media_type: str = ...) -> Artifact: ...
    def put_file(self, path: Path, name: str | None = None, media_type: str = ...) -> Artifact: ...
    def get_bytes(self, digest: str) -> bytes: ...
    def fetch(self, digest: str, dest: Path) -> Path: ...
    def exists(self, digest: str) -> bool: ...


def _hex(digest: str) -> str:
    algo, _, value = digest.partition(":")
    if algo != "sha256" or len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        raise ValueError(f"not an artifact digest: {digest!r} (expected sha256:<64 hex>)")
    return value


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


class LocalArtifactStore:
    """sha256/<ab>/<rest> under a root folder. Writes go through a temp file and a rename: never half a file."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, digest: str) -> Path:
        value = _hex(digest)
        return self.root / "sha256" / value[:2] / value[2:]

    def _write(self, name: str, write) -> Path:
        """The bytes in a temp file of the store; on any failure (a full disk) the temp file is removed, so that
        nothing half-written stays, and a full disk is said as such."""
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            with os.fdopen(fd, "wb") as f:
                write(f)
            return Path(tmp)
        except BaseException as exc:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ArtifactStoreFull(
                    exc.errno, f"the artifact store {self.root} is full (no space left on device) writing {name}"
                ) from exc
            raise

    def _commit(self, tmp: Path, digest: str) -> None:
        target = self._path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)

    def put_bytes(self, data: bytes, name: str, media_type: str = "application/octet-stream") -> Artifact:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self._commit(self._write(name, lambda f: f.write(data)), digest)
        return Artifact(name, digest, len(data), media_type)

    def put_file(self, path: Path, name: str | None = None, media_type: str = "application/octet-stream") -> Artifact:
        path = Path(path)
        digest = file_digest(path)
        if not self.exists(digest):

            def copy(f) -> None:
                with open(path, "rb") as source:
                    shutil.copyfileobj(source, f, _CHUNK)

            self._commit(self._write(name or path.name, copy), digest)
        return Artifact(name or path.name, digest, path.stat().st_size, media_type)

    def get_bytes(self, digest: str) -> bytes:
        try:
            return self._path(digest).read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFound(digest) from None

    def fetch(self, digest: str, dest: Path) -> Path:
        source = self._path(digest)
        if not source.exists():
            raise ArtifactNotFound(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        return dest

    def exists(self, digest: str) -> bool:
        return self._path(digest).exists()


class S3ArtifactStore:
    """The same layout as the local store, as keys of an S3-compatible bucket (AWS, MinIO, Ceph…)."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None):
        import boto3  # optional: the dyag-runtime[s3] extra

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, digest: str) -> str:
        value = _hex(digest)
        return "/".join(p for p in (self.prefix, "sha256", value[:2], value[2:]) if p)

    def put_bytes(self, data: bytes, name: str, media_type: str = "application/octet-stream") -> Artifact:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self.client.put_object(Bucket=self.bucket, Key=self._key(digest), Body=data, ContentType=media_type)
        return Artifact(name, digest, len(data), media_type)

    def put_file(self, path: Path, name: str | None = None, media_type: str = "application/octet-stream") -> Artifact:
        path = Path(path)
        digest = file_digest(path)
        if not self.exists(digest):
            self.client.upload_file(str(path), self.bucket, self._key(digest), ExtraArgs={"ContentType": media_type})
        return Artifact(name or path.name, digest, path.stat().st_size, media_type)

    def get_bytes(self, digest: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(digest))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise ArtifactNotFound(digest) from None

    def fetch(self, digest: str, dest: Path) -> Path:
        if not self.exists(digest):
            raise ArtifactNotFound(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.client.download_file(self.bucket, self._key(digest), str(dest))
        return dest

    def exists(self, digest: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(digest))
            return True
        except ClientError:
            return False


def open_artifact_store(location: str, s3_endpoint_url: str | None = None) -> ArtifactStore:
    """ "s3://bucket/prefix" opens an S3 store; anything else is a local folder."""
    if location.startswith("s3://"):
        bucket, _, prefix = location[5:].partition("/")
        return S3ArtifactStore(bucket, prefix, s3_endpoint_url)
    return LocalArtifactStore(location)
