"""The real stack for integration tests: a private nats-server, each gRPC service as its own
process, and the gateway, all started by the same launcher as `dyag up`."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from dataclasses import dataclass

import httpx
import nats
import pytest

from dyag_cli.stack import Stack, StackConfig, free_port, installed_services
from tests.fake_llm import FakeOllama, FakeOpenAI
from tests.fakes import openai_server
from tests.fakes.ollama_server import FakeOllamaServer

pytestmark = pytest.mark.integration


@dataclass
class RunningStack:
    stack: Stack
    http: httpx.Client  # with the stack's API key
    anonymous: httpx.Client  # without one
    fine_tuning: openai_server.FakeOpenAI | None = None  # the fake fine-tuning API openai-trainer talks to
    ollama_registry: FakeOllamaServer | None = (
        None  # the fake Ollama model-exporter creates models on (/api/blobs, /api/create)
    )

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


@dataclass
class LLMFakes:
    ollama: FakeOllama
    openai: FakeOpenAI
    embedding_cache: str  # shared by the stack's rag-service and in-process engines: each text is embedded once


@pytest.fixture(scope="session")
def llm_fakes(tmp_path_factory) -> LLMFakes:
    """Chat servers that speak Ollama's and OpenAI's protocols on loopback (there is no real one here)."""
    with FakeOllama(models=("applications-ia",)) as ollama, FakeOpenAI(api_key="sk-dyag-test") as openai:
        yield LLMFakes(ollama, openai, str(tmp_path_factory.mktemp("rag") / "embeddings.sqlite"))


@pytest.fixture(scope="session")
def running_stack(tmp_path_factory, llm_fakes) -> RunningStack:
    home = tmp_path_factory.mktemp("dyag-home")
    # openai-trainer's provider: a fake OpenAI API on loopback. Its key goes through the environment, as a
    # real one would (not extra_env, which the launcher records in stack.json): tests grep for it.
    fake_openai = openai_server.FakeOpenAI(api_key="sk-dyag-test-" + secrets.token_hex(16)).start()
    ollama_registry = FakeOllamaServer().start()
    previous_key = os.environ.get("DYAG_OPENAI_API_KEY")
    os.environ["DYAG_OPENAI_API_KEY"] = fake_openai.api_key
    config = StackConfig(
        home=home,
        gateway_port=free_port(),
        grpc_ports={name: free_port() for name in installed_services()},
        start_nats_always=True,
        supervise=False,  # tests kill and restart services themselves (test_supervision.py has its own stack)
        # Short timings so that a killed worker's job comes back within seconds.
        extra_env={
            "DYAG_JOB_ACK_WAIT_S": "4",
            "DYAG_JOB_HEARTBEAT_S": "0.5",
            # A small upload limit, so that "too large" is cheap to test.
            "DYAG_MAX_UPLOAD_BYTES": "2000000",
            "DYAG_MAX_CATALOG_BYTES": "2000000",
            # The tests poll far faster than people do, all with the stack's one key: its rate limit out of the way
            # (test_access sets a tiny one on a key of its own).
            "DYAG_RATE_LIMIT_PER_MIN": "100000",
            # rag-service: the fake chat servers, and one embedding cache for the session.
            "OLLAMA_HOST": llm_fakes.ollama.host,
            "OPENAI_BASE_URL": llm_fakes.openai.base_url,
            "OPENAI_API_KEY": llm_fakes.openai.api_key,
            "DYAG_RAG_EMBEDDING_CACHE": llm_fakes.embedding_cache,
            # openai-trainer: the fake fine-tuning API, and polls and retries of a fraction of a second.
            **fake_openai.service_env(),
            # model-exporter: `ollama create` goes to a fake Ollama implementing /api/blobs and /api/create.
            "DYAG_EXPORTER_OLLAMA_HOST": ollama_registry.host,
        },
    )
    stack = Stack(config)
    stack.up(timeout=120)
    key = (home / "api-key").read_text().strip()
    http = httpx.Client(base_url=config.gateway_url, headers={"X-API-Key": key}, timeout=60)
    anonymous = httpx.Client(base_url=config.gateway_url, timeout=60)
    try:
        yield RunningStack(stack, http, anonymous, fake_openai, ollama_registry)
    finally:
        http.close()
        anonymous.close()
        stack.down()
        fake_openai.stop()
        ollama_registry.stop()
        if previous_key is None:
            os.environ.pop("DYAG_OPENAI_API_KEY", None)
        else:
            os.environ["DYAG_OPENAI_API_KEY"] = previous_key


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
