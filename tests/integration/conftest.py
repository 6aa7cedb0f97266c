"""The real stack for integration tests: a private nats-server, each gRPC service as its own
process, and the gateway, all started by the same launcher as `dyag up`."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import httpx
import nats
import pytest

from dyag_cli.stack import Stack, StackConfig, free_port, installed_services

pytestmark = pytest.mark.integration


@dataclass
class RunningStack:
    stack: Stack
    http: httpx.Client  # with the stack's API key
    anonymous: httpx.Client  # without one

    @property
    def nats_url(self) -> str:
        return self.stack.state["nats_url"]

    def wait_job(self, job_id: str, timeout: float = 120.0, until=("succeeded", "failed", "cancelled")) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.http.get(f"/jobs/{job_id}").json()
            if job.get("status") in until:
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} still {job.get('status')} after {timeout} s: {job}")


@pytest.fixture(scope="session")
def running_stack(tmp_path_factory) -> RunningStack:
    home = tmp_path_factory.mktemp("dyag-home")
    config = StackConfig(
        home=home,
        gateway_port=free_port(),
        grpc_ports={name: free_port() for name in installed_services()},
        start_nats_always=True,
        # Short timings so that a killed worker's job comes back within seconds.
        extra_env={
            "DYAG_JOB_ACK_WAIT_S": "4",
            "DYAG_JOB_HEARTBEAT_S": "0.5",
            # A small upload limit, so that "too large" is cheap to test.
            "DYAG_MAX_UPLOAD_BYTES": "2000000",
            "DYAG_MAX_CATALOG_BYTES": "2000000",
        },
    )
    stack = Stack(config)
    stack.up(timeout=120)
    key = (home / "api-key").read_text().strip()
    http = httpx.Client(base_url=config.gateway_url, headers={"X-API-Key": key}, timeout=60)
    anonymous = httpx.Client(base_url=config.gateway_url, timeout=60)
    try:
        yield RunningStack(stack, http, anonymous)
    finally:
        http.close()
        anonymous.close()
        stack.down()


def read_events(nats_url: str, subject: str, *, expect: int = 1, timeout: float = 5.0) -> list[dict]:
    """Every event stored on `subject` (JetStream), as {"headers", "data"}, waiting for at least `expect`."""

    async def collect() -> list[dict]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            deadline = time.monotonic() + timeout
            while True:
                sub = await js.subscribe(subject, ordered_consumer=True)
                found = []
                while True:
                    try:
                        msg = await sub.next_msg(timeout=0.5)
                    except (nats.errors.TimeoutError, TimeoutError):
                        break
                    found.append({"headers": dict(msg.headers or {}), "data": json.loads(msg.data or b"{}")})
                await sub.unsubscribe()
                if len(found) >= expect or time.monotonic() > deadline:
                    return found
                await asyncio.sleep(0.2)
        finally:
            await nc.close()

    return asyncio.run(collect())
