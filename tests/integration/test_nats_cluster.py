"""Scale-out on a real 3-node JetStream cluster (three nats-server processes with routes): streams and KV buckets
replicated (R3, DYAG_NATS_REPLICAS), a job that survives the loss of the node its service is connected to, job
submissions idempotent under a key, and gRPC calls spread over a service's replicas and moved off a dead one."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from dyag_cli.stack import free_port
from dyag_runtime.artifacts import open_artifact_store
from dyag_runtime.events import EVENTS_STREAM, JOBS_STREAM, EventBus, connect_nats, nats_servers
from dyag_runtime.idempotency import submitting
from dyag_runtime.jobs import JobStore, JobWorker
from dyag_runtime.settings import PlatformSettings
from tests.processes import NatsCluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = NatsCluster(tmp_path_factory.mktemp("nats-cluster")).start()
    try:
        yield nodes
    finally:
        nodes.stop()


async def replicas_of(bus: EventBus, stream: str, wait_for: int = 1) -> tuple[int, int]:
    """(configured replicas, servers that hold the stream: the leader and its peers), once `wait_for` servers hold it
    or 10 s have passed (a stream raised to R3 adds its peers in the background)."""
    deadline = time.monotonic() + 10
    while True:
        info = await bus.js.stream_info(stream)
        held = 1 + len(info.cluster.replicas or [])
        if held >= wait_for or time.monotonic() > deadline:
            return info.config.num_replicas, held
        await asyncio.sleep(0.2)


def test_nats_url_lists_a_clusters_servers():
    assert nats_servers("nats://a:4222, nats://b:4222,nats://c:4222") == [
        "nats://a:4222",
        "nats://b:4222",
        "nats://c:4222",
    ]
    with pytest.raises(ConnectionError, match="NATS_URL is empty"):
        nats_servers(" , ")


def test_streams_and_buckets_take_the_clusters_replicas(cluster):
    async def scenario():
        bus = await EventBus.connect(cluster.url, "r3-test", replicas=3)
        try:
            kv = await bus.key_value("jobs_r3test")
            await kv.put("k", b"v")
            return [await replicas_of(bus, s) for s in (EVENTS_STREAM, JOBS_STREAM, "KV_jobs_r3test")]
        finally:
            await bus.close()

    assert asyncio.run(scenario()) == [(3, 3)] * 3


def test_a_stream_created_with_one_replica_is_raised_never_lowered(cluster):
    async def scenario():
        small = await EventBus.connect(cluster.url, "r1", replicas=1)
        await small.key_value("grown")
        before = await replicas_of(small, "KV_grown")
        big = await EventBus.connect(cluster.url, "r3", replicas=3)
        await big.key_value("grown")
        raised = await replicas_of(big, "KV_grown", wait_for=3)
        await small.key_value("grown")  # a replica still configured with 1 leaves it at 3
        after = await replicas_of(small, "KV_grown")
        await small.close()
        await big.close()
        return before, raised, after

    before, raised, after = asyncio.run(scenario())
    assert before == (1, 1)
    assert raised == (3, 3)
    assert after == (3, 3)


def test_a_job_survives_the_loss_of_its_services_nats_node(cluster, tmp_path):
    """The worker's NATS node is killed while its job runs: the client moves to another node, the job's record and
    request (R3) are still there, the job ends once, succeeded; the node comes back and catches up."""
    release = threading.Event()
    runs: list[str] = []

    def handler(ctx):
        runs.append(ctx.job_id)
        assert release.wait(60)
        return {"ok": True}

    async def scenario():
        bus = await EventBus.connect(cluster.url, "failover", replicas=3)
        store = await JobStore.open(bus, "failover")
        worker = JobWorker(
            store, {"test.wait": handler}, open_artifact_store(str(tmp_path / "a")), tmp_path, heartbeat=0.5
        )
        await worker.start()
        job = await store.submit("test.wait", {})
        while not runs:
            await asyncio.sleep(0.1)
        node = cluster.node_of(bus.nc.connected_url)
        cluster.kill(node)
        await asyncio.sleep(2.0)  # the client reconnects to a surviving node; the streams elect new leaders
        release.set()
        deadline = time.monotonic() + 60
        while (record := await store.get(job["id"]))["status"] != "succeeded":
            assert time.monotonic() < deadline, record
            await asyncio.sleep(0.2)
        moved_to = cluster.node_of(bus.nc.connected_url)
        cluster.start(node)
        jobs = await store.list()
        await bus.close()
        return node, moved_to, record, jobs

    node, moved_to, record, jobs = asyncio.run(scenario())
    assert moved_to != node
    assert record["attempts"] == 1 and record["result"] == {"ok": True}
    assert runs == [record["id"]]  # run once
    assert [j["id"] for j in jobs] == [record["id"]]


def test_a_job_submitted_again_under_its_key_is_the_same_job(cluster, tmp_path):
    runs: list[str] = []

    async def scenario():
        bus = await EventBus.connect(cluster.url, "idem", replicas=3)
        store = await JobStore.open(bus, "idem")
        first = await store.submit("test.once", {"n": 1}, key="pipeline-1/build")
        with submitting("pipeline-1/build"):  # the key a gRPC call carries, as the server's interceptor sets it
            again = await store.submit("test.once", {"n": 1})
        other = await store.submit("test.once", {"n": 1}, key="pipeline-2/build")
        handlers = {"test.once": lambda ctx: runs.append(ctx.job_id) or {}}
        worker = JobWorker(store, handlers, open_artifact_store(str(tmp_path)), tmp_path)
        await worker.start()
        deadline = time.monotonic() + 30
        while len(runs) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # a duplicate request, had one gone out, would run by now
        jobs = await store.list()
        await bus.close()
        return first, again, other, jobs

    first, again, other, jobs = asyncio.run(scenario())
    assert again["id"] == first["id"] and other["id"] != first["id"]
    assert sorted(runs) == sorted([first["id"], other["id"]])
    assert len(jobs) == 2


def health_server(status: str) -> tuple[grpc.Server, int, list[str]]:
    """A gRPC server with the health service, recording every Check it answers."""
    calls: list[str] = []

    class Recording(health.HealthServicer):
        def Check(self, request, context):
            calls.append(status)
            return super().Check(request, context)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = Recording()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, port, calls


def test_grpc_calls_go_round_robin_over_replicas_and_off_a_dead_one():
    (a, port_a, calls_a), (b, port_b, calls_b) = health_server("a"), health_server("b")
    settings = PlatformSettings(service_addrs={"validator": f"ipv4:127.0.0.1:{port_a},127.0.0.1:{port_b}"})
    try:
        with grpc.insecure_channel(settings.address_of("validator"), options=settings.channel_options()) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 10
            while not (calls_a and calls_b):  # until the channel is connected to both
                stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert time.monotonic() < deadline, "one replica was never called"
            calls_a.clear(), calls_b.clear()
            for _ in range(10):
                stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert len(calls_a) == len(calls_b) == 5  # each replica takes its turn
            a.stop(grace=None)  # a replica dies
            for _ in range(10):  # every call still succeeds: the dead replica is skipped or the call retried
                stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert len(calls_b) == 15
    finally:
        a.stop(grace=None)
        b.stop(grace=None)


def test_the_channel_service_config_is_valid_json_with_round_robin():
    config = json.loads(dict(PlatformSettings().channel_options())["grpc.service_config"])
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


def test_connect_names_the_url_it_cannot_reach():
    url = f"nats://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionError, match=url):
        asyncio.run(connect_nats(url, "nobody", connect_timeout=0.5))


def test_two_replicas_of_a_service_run_two_jobs_at_once(cluster, tmp_path):
    """Each replica takes up to its own DYAG_JOB_CONCURRENCY (1): the work queue's consumer does not cap them all."""
    both = threading.Barrier(2, timeout=20)

    def handler(ctx):
        both.wait()  # returns only when the other replica runs the other job at the same time
        return {}

    async def scenario():
        bus = await EventBus.connect(cluster.url, "pair", replicas=3)
        store = await JobStore.open(bus, "pair")
        for replica in ("a", "b"):
            worker = JobWorker(store, {"test.pair": handler}, open_artifact_store(str(tmp_path)), tmp_path / replica)
            await worker.start()
        jobs = [await store.submit("test.pair", {}) for _ in range(2)]
        deadline = time.monotonic() + 30
        while {(await store.get(j["id"]))["status"] for j in jobs} != {"succeeded"}:
            assert time.monotonic() < deadline, [await store.get(j["id"]) for j in jobs]
            await asyncio.sleep(0.2)
        await bus.close()

    asyncio.run(scenario())
    assert not both.broken


def test_a_worker_that_lost_its_job_stops_and_writes_nothing(cluster, tmp_path):
    """Fencing: while a job runs, another worker takes it over (as after a redelivery). The first worker's run is
    cancelled at its next heart-beat and its outcome is not written over the new owner's record."""
    started, stopped = threading.Event(), threading.Event()

    def handler(ctx):
        started.set()
        give_up = time.monotonic() + 15  # never told (no fencing): the test fails rather than hangs
        while not ctx.cancelled and time.monotonic() < give_up:
            time.sleep(0.05)
        stopped.set()
        return {"written_by": "the old owner"}

    async def scenario():
        bus = await EventBus.connect(cluster.url, "fence", replicas=3)
        store = await JobStore.open(bus, "fence")
        worker = JobWorker(store, {"test.fence": handler}, open_artifact_store(str(tmp_path)), tmp_path, heartbeat=0.3)
        await worker.start()
        job = await store.submit("test.fence", {})
        while not started.is_set():
            await asyncio.sleep(0.05)
        await store.mutate(job["id"], lambda r: r.update(owner="another-worker", heartbeat_at=time.time()))
        began = time.monotonic()
        while not stopped.is_set() or worker.running:
            await asyncio.sleep(0.05)
        assert time.monotonic() - began < 10, "the old owner was never stopped"
        record = await store.get(job["id"])
        await bus.close()
        return record

    record = asyncio.run(scenario())
    assert record["status"] == "running" and record["owner"] == "another-worker"
    assert record["result"] == {}


def test_a_stopping_replica_hands_its_job_to_the_other_at_once(cluster, tmp_path):
    """SIGTERM's path (JobWorker.hand_back, then the consumers stop): the other replica resumes the job within
    seconds, not after DYAG_JOB_ACK_WAIT_S (30 s here), and only its outcome is written."""
    started = threading.Event()

    def stopping_replica(ctx):
        started.set()
        give_up = time.monotonic() + 20  # never told: the test fails rather than hangs
        while not ctx.cancelled and time.monotonic() < give_up:
            time.sleep(0.05)
        return {"by": "the stopped replica"}

    async def scenario():
        bus_a = await EventBus.connect(cluster.url, "handback-a", replicas=3)
        bus_b = await EventBus.connect(cluster.url, "handback-b", replicas=3)
        store_a, store_b = await JobStore.open(bus_a, "handback"), await JobStore.open(bus_b, "handback")
        artifacts = open_artifact_store(str(tmp_path))
        a = JobWorker(store_a, {"test.handback": stopping_replica}, artifacts, tmp_path / "a", ack_wait=30)
        await a.start()
        job = await store_a.submit("test.handback", {})
        while not started.is_set():
            await asyncio.sleep(0.05)
        b = JobWorker(store_b, {"test.handback": lambda ctx: {"by": "the other replica"}}, artifacts, tmp_path / "b")
        await b.start()
        began = time.monotonic()
        await a.hand_back()
        await bus_a.close()
        while (record := await store_b.get(job["id"]))["status"] != "succeeded":
            assert time.monotonic() - began < 15, record
            await asyncio.sleep(0.1)
        await bus_b.close()
        return record, time.monotonic() - began

    record, seconds = asyncio.run(scenario())
    assert record["result"] == {"by": "the other replica"} and record["attempts"] == 2
    assert seconds < 15
