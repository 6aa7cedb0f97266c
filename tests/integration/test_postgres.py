"""The services on PostgreSQL (DYAG_DATABASE_URL), against the real stack: dataset-builder keeps its catalogs, sources
and datasets in its schema of a fresh database (no SQLite file), a second replica on the same database, NATS and
artifact store sees and adds the same data, uploads of one catalog through both replicas at once keep one linear
history, and a service whose database cannot be reached stops at once, naming it without its password."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest

from dyag.v1 import catalog_pb2, catalog_pb2_grpc, dataset_pb2, dataset_pb2_grpc
from dyag_cli.stack import Stack, StackConfig, free_port, port_open
from dyag_runtime.database import Database
from tests.conftest import fresh_postgres_database
from tests.processes import stop

pytestmark = pytest.mark.integration
KEY = "applicationsia mini"
SERVICE = "dataset-builder"


@pytest.fixture(scope="module")
def database_url():
    """A fresh database on the tests' PostgreSQL, dropped after the module."""
    with fresh_postgres_database("dyag_it") as url:
        yield url


def service_env(stack: Stack, url: str, port: int, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "NATS_URL": stack.state["nats_url"],
        "DYAG_DATABASE_URL": url,
        "DYAG_SERVICE_NAME": SERVICE,
        "DYAG_GRPC_PORT": str(port),
        "DYAG_DATA_DIR": str(data_dir),
        "DYAG_ARTIFACT_STORE": str(stack.config.home / "artifacts"),
        "DYAG_LOG_JSON": "true",
    }


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, database_url):
    """The stack (gateway + dataset-builder) on PostgreSQL, and a second dataset-builder beside it."""
    home = tmp_path_factory.mktemp("dyag-pg")
    env = {"DYAG_DATABASE_URL": database_url, "DYAG_JOB_ACK_WAIT_S": "4", "DYAG_JOB_HEARTBEAT_S": "0.5"}
    config = StackConfig(
        home=home,
        gateway_port=free_port(),
        grpc_ports={SERVICE: free_port()},
        services=[SERVICE],
        extra_env=env | {"DYAG_RATE_LIMIT_PER_MIN": "100000"},
        start_nats_always=True,
        supervise=False,
    )
    stack = Stack(config)
    stack.up(timeout=120)
    port = free_port()
    log = (home / "replica-2.log").open("w")
    second = subprocess.Popen(
        [sys.executable, "-m", "dyag_dataset_builder"],
        env=service_env(stack, database_url, port, home / "data" / "replica-2") | env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        grpc.channel_ready_future(grpc.insecure_channel(f"127.0.0.1:{port}")).result(timeout=60)
        key = (home / "api-key").read_text().strip()
        with httpx.Client(base_url=config.gateway_url, headers={"X-API-Key": key}, timeout=60) as http:
            channels = [grpc.insecure_channel(f"127.0.0.1:{p}") for p in (config.grpc_ports[SERVICE], port)]
            yield stack, http, channels, database_url
    finally:
        stop(second)
        log.close()
        stack.down()


def catalog(records: list[dict], note: str = "") -> bytes:
    if note:
        records = [dict(records[0], descriptif=note), *records[1:]]
    return json.dumps({KEY: records}, ensure_ascii=False).encode()


def wait_job(http: httpx.Client, job_id: str) -> dict:
    for _ in range(600):
        job = http.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']}")


def test_a_second_replica_sees_and_adds_the_same_catalogs_and_datasets(replicas, sample_catalog_bytes):
    stack, http, channels, url = replicas
    records = json.loads(sample_catalog_bytes)[KEY][:8]
    first = http.post("/catalogs", files={"file": ("c.json", catalog(records))}, data={"name": "shared"})
    assert first.status_code == 201, first.text
    catalogs = [catalog_pb2_grpc.CatalogServiceStub(c) for c in channels]
    seen = catalogs[1].GetCatalog(catalog_pb2.GetCatalogRequest(name="shared"), timeout=30)
    assert seen.version == first.json()["version"] and seen.entity_count == 8

    # A version uploaded to the second replica is the gateway's (the first replica's) latest at once.
    second = catalogs[1].IngestCatalog(
        catalog_pb2.IngestCatalogRequest(name="shared", content=catalog(records, "changed"), filename="c.json"),
        timeout=60,
    )
    assert second.changed == [str(records[0]["id"])]  # against the first replica's version
    assert http.get("/catalogs/shared").json()["version"] == second.version

    job = http.post("/datasets", json={"catalog": "shared", "num_questions": 40, "seed": 5}).json()
    done = wait_job(http, job["id"])
    assert done["status"] == "succeeded", done
    dataset_id = done["result"]["dataset_id"]
    found = dataset_pb2_grpc.DatasetServiceStub(channels[1]).GetDataset(
        dataset_pb2.GetDatasetRequest(id=dataset_id), timeout=30
    )
    assert found.catalog_version == second.version

    # Everything is in the service's schema; nothing in a SQLite file.
    home = stack.config.home
    assert not [p for p in (home / "data").rglob("*") if p.suffix in (".db", ".sqlite")]
    db = Database(url, schema="dataset_builder")
    try:
        assert dict(db.all("SELECT component, version FROM schema_version")) == {
            "catalogs": 2,
            "sources": 2,
            "datasets": 2,
        }
        assert db.one("SELECT COUNT(*) FROM catalog_versions WHERE name = 'shared'") == (2,)
        assert db.one("SELECT COUNT(*) FROM datasets WHERE id = ?", (dataset_id,)) == (1,)
    finally:
        db.close()


def test_uploads_of_one_catalog_through_both_replicas_at_once_keep_one_linear_history(replicas, sample_catalog_bytes):
    _, _, channels, url = replicas
    records = json.loads(sample_catalog_bytes)[KEY][:5]
    catalogs = [catalog_pb2_grpc.CatalogServiceStub(c) for c in channels]

    def ingest(i: int) -> catalog_pb2.CatalogVersion:
        request = catalog_pb2.IngestCatalogRequest(name="raced", content=catalog(records, f"edit {i}"))
        return catalogs[i % 2].IngestCatalog(request, timeout=60)

    with ThreadPoolExecutor(4) as pool:
        stored = {v.version for v in pool.map(ingest, range(12))}
    db = Database(url, schema="dataset_builder")
    try:
        history = db.all("SELECT version, previous_version FROM catalog_versions WHERE name = 'raced' ORDER BY seq")
    finally:
        db.close()
    assert len(history) == len({v for v, _ in history}) == 12 and {v for v, _ in history} == stored
    assert [p for _, p in history] == ["", *(v for v, _ in history[:-1])]  # each after the one before: no fork


def test_a_service_whose_database_is_unreachable_stops_naming_it_without_its_password(replicas, tmp_path):
    stack, _, _, _ = replicas
    url = "postgresql://dyag:s3cret-pw@127.0.0.1:1/dyag"
    env = service_env(stack, url, free_port(), tmp_path / "data") | {"DYAG_DATABASE_WAIT_S": "0"}
    ended = subprocess.run(
        [sys.executable, "-m", "dyag_dataset_builder"], env=env, capture_output=True, text=True, timeout=120
    )
    assert ended.returncode != 0
    named = "dataset-builder: database postgresql://dyag:***@127.0.0.1:1/dyag (schema dataset_builder) is unreachable"
    assert named in ended.stderr
    assert "s3cret" not in ended.stderr + ended.stdout
    assert not port_open("127.0.0.1", int(env["DYAG_GRPC_PORT"]))
