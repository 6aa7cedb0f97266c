"""Replicas on a 3-node NATS cluster (issue 17, in small; bench/bench_scale.py is the whole proof): two dataset-builder
replicas sharing a JetStream cluster (DYAG_NATS_REPLICAS=3) and one PostgreSQL database; the replica running a build
is killed with SIGKILL, and so is the NATS node leading the job records' bucket, and the build still ends once: the
other replica resumes it (attempts 2), one job for the request, one terminal event, one dataset row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import httpx
import pytest

from dyag.v1 import catalog_pb2, catalog_pb2_grpc, dataset_pb2, dataset_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from dyag_cli.stack import free_port
from dyag_runtime.database import Database
from dyag_runtime.healthcheck import check as grpc_serving
from dyag_runtime.jobs import STATUS_NAMES
from tests.conftest import REPO_ROOT, fresh_postgres_database
from tests.integration.conftest import read_events
from tests.processes import NatsCluster, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SERVICE = "dataset-builder"
BIG = REPO_ROOT / "examples" / "catalogs" / "synthetic-1000.json"


@pytest.fixture(scope="module")
def database_url():
    """A fresh database on the tests' PostgreSQL, dropped after the module."""
    with fresh_postgres_database("dyag_it_scale") as url:
        yield url


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nats = NatsCluster(tmp_path_factory.mktemp("nats"), size=3).start(timeout=60)
    try:
        yield nats
    finally:
        nats.stop()


class Replica:
    def __init__(self, root: Path, index: int, env: dict[str, str]):
        self.port, self.data_dir = free_port(), root / f"replica-{index}"
        self.env = {**env, "DYAG_GRPC_PORT": str(self.port), "DYAG_DATA_DIR": str(self.data_dir)}
        self.log = root / f"replica-{index}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dyag_dataset_builder"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_serving(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not grpc_serving(f"127.0.0.1:{self.port}", timeout=2):
            assert self.proc.poll() is None, f"replica exited: {self.log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"replica not serving after {timeout} s"
            time.sleep(0.3)

    def runs(self, job_id: str) -> bool:
        return (self.data_dir / "jobs" / job_id).exists()

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop(self.proc)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, cluster, database_url):
    root = tmp_path_factory.mktemp("scale")
    env = {
        **os.environ,
        "NATS_URL": cluster.url,
        "DYAG_NATS_REPLICAS": "3",
        "DYAG_DATABASE_URL": database_url,
        "DYAG_SERVICE_NAME": SERVICE,
        "DYAG_ARTIFACT_STORE": str(root / "artifacts"),
        "DYAG_JOB_ACK_WAIT_S": "4",
        "DYAG_JOB_HEARTBEAT_S": "0.5",
        "DYAG_LOG_JSON": "true",
    }
    pair = [Replica(root, 1, env), Replica(root, 2, env)]
    ports = [r.port for r in pair]
    for r in pair:
        r.env["DYAG_SERVICE_ADDRS"] = json.dumps({SERVICE: "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)})
        r.start()
    try:
        for r in pair:
            r.wait_serving()
        yield pair
    finally:
        for r in pair:
            r.stop()


def leader_of(cluster: NatsCluster, stream: str) -> int:
    for i, proc in enumerate(cluster.procs):
        if proc is None:
            continue
        url = f"http://127.0.0.1:{cluster.monitor_ports[i]}/jsz?streams=true"
        for account in httpx.get(url, timeout=2).json().get("account_details") or []:
            for s in account.get("stream_detail") or []:
                if s["name"] == stream and (s.get("cluster") or {}).get("leader"):
                    return int(s["cluster"]["leader"].lstrip("n")) - 1
    raise AssertionError(f"no leader for {stream}")


def test_build_survives_its_replica_and_a_nats_node_killed(cluster, replicas, database_url):
    a, b = replicas
    correlation = f"scale-{uuid.uuid4().hex[:8]}"
    target = "ipv4:" + ",".join(f"127.0.0.1:{r.port}" for r in replicas)
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        catalogs = catalog_pb2_grpc.CatalogServiceStub(channel)
        datasets = dataset_pb2_grpc.DatasetServiceStub(channel)
        jobs = jobs_pb2_grpc.JobServiceStub(channel)
        catalogs.IngestCatalog(
            catalog_pb2.IngestCatalogRequest(name="scale_big", content=BIG.read_bytes(), filename=BIG.name), timeout=60
        )
        job = datasets.BuildDataset(
            dataset_pb2.BuildDatasetRequest(catalog="scale_big", num_questions=3000, correlation_id=correlation),
            timeout=60,
        )

        def get():
            for _ in range(60):  # a replica or a NATS node restarting: ask again
                try:
                    return jobs.GetJob(jobs_pb2.GetJobRequest(id=job.id), timeout=10)
                except grpc.RpcError:
                    time.sleep(0.5)
            raise AssertionError(f"job {job.id} unreadable for 30 s")

        deadline = time.monotonic() + 120
        while True:
            current = get()
            running = [r for r in replicas if r.runs(job.id)]
            if STATUS_NAMES[current.status] == "running" and running and current.progress.fraction >= 0.05:
                break
            assert STATUS_NAMES[current.status] in ("queued", "running"), f"ended before the kill: {current}"
            assert time.monotonic() < deadline, "the build never got going"
            time.sleep(0.05)
        victim = running[0]
        survivor = b if victim is a else a
        node = leader_of(cluster, f"KV_jobs_{SERVICE}")
        victim.kill()
        cluster.kill(node)
        try:
            deadline = time.monotonic() + 150
            while STATUS_NAMES[(current := get()).status] not in ("succeeded", "failed", "cancelled"):
                assert time.monotonic() < deadline, f"job still {STATUS_NAMES[current.status]} 150 s after the kill"
                time.sleep(0.3)
        finally:
            cluster.start(node)
        assert STATUS_NAMES[current.status] == "succeeded", current.error
        assert current.attempts == 2
        assert survivor.runs(job.id)
        mine = [
            j
            for j in jobs.ListJobs(jobs_pb2.ListJobsRequest(kind="dataset.build", limit=100), timeout=30).jobs
            if j.correlation_id == correlation
        ]
        assert [j.id for j in mine] == [job.id]
    first = cluster.url.split(",")[(node + 1) % 3]
    deadline = time.monotonic() + 30  # the restarted node rejoins and the stream may elect a leader: read again
    while True:
        try:
            terminal = [
                e
                for status in ("succeeded", "failed", "cancelled")
                for e in read_events(first, f"dyag.events.job.{status}", expect=0, timeout=3)
                if e["headers"].get("ce-subject") == job.id
            ]
        except Exception:  # nats: timeout while the stream has no leader
            terminal = []
        if terminal or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(terminal) == 1, terminal
    db = Database(database_url)
    try:
        rows = db.all(
            "SELECT id FROM dataset_builder.datasets WHERE catalog = ?",
            ("scale_big",),
        )
    finally:
        db.close()
    assert len(rows) == 1, rows
