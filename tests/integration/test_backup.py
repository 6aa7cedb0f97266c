"""`dyag backup` and `dyag restore` on a real stack of its own (a private NATS, dataset-builder, the gateway, in a
temporary DYAG_HOME; not the shared running_stack, since this test stops it and wipes its home): a backup taken while
the stack runs, the home wiped, the backup restored, the stack started again, and everything is found: the catalog's
versions, the dataset and its files, the job records, the champion, the API keys (the old ones still work), the
artifacts' bytes. And what a restore refuses: a running stack, a home in use, a file that is no backup, a corrupted
member, another format version."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from dyag_cli.backup import HEADER, MANIFEST
from dyag_cli.stack import Stack, StackConfig, free_port

pytestmark = pytest.mark.integration

NAME = "backed_up"


def config(home: Path) -> StackConfig:
    return StackConfig(
        home=home,
        gateway_port=free_port(),
        grpc_ports={"dataset-builder": free_port()},
        services=["dataset-builder"],
        start_nats_always=True,
        supervise=False,
    )


def dyag(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DYAG_URL", "DYAG_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "dyag_cli.main", *args],
        env={**env, "DYAG_HOME": str(home), "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def client(stack: Stack, key: str) -> httpx.Client:
    return httpx.Client(base_url=stack.config.gateway_url, headers={"X-API-Key": key}, timeout=60)


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def snapshot(http: httpx.Client, dataset_id: str) -> dict:
    """What the stack serves, read through the gateway: compared before the backup and after the restore."""
    dataset = http.get(f"/datasets/{dataset_id}").json()
    files = {
        f"{f['split']}/{f['format']}": http.get(f"/datasets/{dataset_id}/files/{f['split']}/{f['format']}").content
        for f in dataset["files"]
    }
    jobs = http.get("/jobs", params={"service": "dataset-builder"}).json()["jobs"]
    keys = http.get("/keys").json()["keys"]
    return {
        "versions": http.get(f"/catalogs/{NAME}/versions").json()["versions"],
        "dataset": dataset,
        "files": files,
        "jobs": sorted((j["id"], j["kind"], j["status"]) for j in jobs),
        "champion": http.get(f"/catalogs/{NAME}/champion").json()["aliases"]["champion"],
        "keys": sorted((k["id"], k["name"], tuple(k["scopes"]), k["revoked_at"]) for k in keys),
    }


def rewrite(source: Path, dest: Path, change) -> None:
    """A copy of a backup with `change(name, bytes) -> bytes` applied to each member's content."""
    with tarfile.open(source, "r:gz") as tar, tarfile.open(dest, "w:gz") as out:
        for member in tar.getmembers():
            data = change(member.name, tar.extractfile(member).read())
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))


def test_backup_restore_round_trip_and_what_a_restore_refuses(tmp_path, sample_catalog_bytes):
    home = tmp_path / "home"
    stack = Stack(config(home))
    try:
        stack.up(timeout=120)
        admin = (home / "api-key").read_text().strip()
        http = client(stack, admin)
        reply = http.post("/catalogs", files={"file": ("c.json", sample_catalog_bytes)}, data={"name": NAME})
        assert reply.status_code in (200, 201), reply.text
        job = http.post("/datasets", json={"catalog": NAME, "num_questions": 50})
        assert job.status_code == 202, job.text
        job = job.json()
        for _ in range(600):
            job = http.get(f"/jobs/{job['id']}").json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.2)
        assert job["status"] == "succeeded", job
        dataset_id = job["result"]["dataset_id"]
        created = http.post("/keys", json={"name": "ci", "scopes": ["read"]})
        assert created.status_code in (200, 201), created.text
        extra_key = created.json()["key"]
        reply = http.post(f"/catalogs/{NAME}/champion", json={"target": {"kind": "grounded", "id": NAME}})
        assert reply.status_code == 200, reply.text
        before = snapshot(http, dataset_id)
        assert before["files"] and before["jobs"] and len(before["keys"]) >= 2
        assert before["champion"]["label"] == f"grounded:{NAME}"

        # The backup, while the stack runs, as a user runs it.
        archive = tmp_path / "out" / "dyag.tar.gz"
        done = dyag(home, "backup", str(archive))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "the stack runs" in done.stdout and "databases:" in done.stdout and f"✓ {archive}" in done.stdout
        assert oct(archive.stat().st_mode & 0o777) == "0o600"  # it holds the keys
        assert not list(archive.parent.glob("*.partial")) and not list(archive.parent.glob(".dyag-backup-*"))
        with tarfile.open(archive, "r:gz") as tar:
            names = tar.getnames()
            manifest = json.loads(tar.extractfile(MANIFEST).read())
        assert names[0] == HEADER and names[-1] == MANIFEST
        assert set(manifest["members"]) == set(names) - {HEADER, MANIFEST}
        assert {"home/data/dataset-builder/catalogs.db", "home/data/dataset-builder/datasets.db"} <= set(names)
        assert not [n for n in names if n.endswith(("-wal", "-shm")) or n.startswith(("home/nats", "home/logs"))]
        assert {"api_keys", "retraining", "jobs_dataset-builder"} <= set(manifest["kv_buckets"])
        assert manifest["kv_buckets"]["jobs_dataset-builder"]["entries"] == len(before["jobs"])
        assert manifest["parts"]["artifacts"]["files"] == len(tree(home / "artifacts")) > 0

        # Onto the running stack: refused, even with --force, and nothing is touched.
        refused = dyag(home, "restore", "--force", str(archive))
        assert refused.returncode == 2 and "is running: stop it first (dyag down)" in refused.stderr, refused.stderr
        artifacts = tree(home / "artifacts")
        admin_file = (home / "api-key").read_bytes()
    finally:
        stack.down()

    # A home in use (stopped, not empty): refused without --force.
    refused = dyag(home, "restore", str(archive))
    assert refused.returncode == 2 and "is not empty" in refused.stderr and "--force" in refused.stderr

    # The home wiped, then restored.
    shutil.rmtree(home)
    done = dyag(home, "restore", str(archive))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every sha256 as in the manifest" in done.stdout and "dyag up" in done.stdout
    assert tree(home / "artifacts") == artifacts and (home / "api-key").read_bytes() == admin_file
    assert oct((home / "api-key").stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob(".home.*")), list(tmp_path.iterdir())  # no staging folder left behind

    stack = Stack(config(home))
    try:
        stack.up(timeout=120)
        http = client(stack, admin)
        after = snapshot(http, dataset_id)
        assert after == before
        with client(stack, extra_key) as old_key:  # the key created through /keys still works
            reply = old_key.get(f"/catalogs/{NAME}")
            assert reply.status_code == 200, reply.text
            assert old_key.post("/keys", json={"name": "x", "scopes": ["read"]}).status_code == 403  # still read-only
        # The restored stack works on: a new dataset from the restored catalog.
        job = http.post("/datasets", json={"catalog": NAME, "num_questions": 50})
        assert job.status_code == 202, job.text
    finally:
        stack.down()

    # Bad files: each refused with exit code 2 and its reason; the (stopped) home is left as it was.
    restored = tree(home)
    not_gzip = tmp_path / "notes.tar.gz"
    not_gzip.write_text("hello")
    other_tar = tmp_path / "other.tar.gz"
    with tarfile.open(other_tar, "w:gz") as tar:
        tar.add(not_gzip, arcname="notes.txt")
    corrupted = tmp_path / "corrupted.tar.gz"
    member = "home/data/dataset-builder/datasets.db"
    rewrite(archive, corrupted, lambda name, data: data[:-1] + bytes([data[-1] ^ 1]) if name == member else data)
    newer = tmp_path / "newer.tar.gz"
    rewrite(
        archive,
        newer,
        lambda name, data: json.dumps({**json.loads(data), "version": 99}).encode() if name == HEADER else data,
    )
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    cases = [
        (tmp_path / "missing.tar.gz", "no such backup file"),
        (not_gzip, "not a Dyag backup"),
        (other_tar, f"not a Dyag backup: {other_tar} does not begin with {HEADER}"),
        (corrupted, f"the backup is corrupted, nothing was restored:\n  {member}: corrupted (sha256"),
        (newer, "format version 99; this dyag reads version 1 only"),
        (truncated, "cannot be read"),
    ]
    for path, message in cases:
        refused = dyag(home, "restore", "--force", str(path))
        assert refused.returncode == 2, (path, refused.stdout, refused.stderr)
        assert message in refused.stderr, (path, refused.stderr)
    assert tree(home) == restored
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
