"""Scale on one machine: every service twice, a 3-node NATS cluster, PostgreSQL, and processes killed under a pipeline.

    .venv/bin/python bench/bench_scale.py                      # faults, checks, throughput; writes bench/SCALE.md
    .venv/bin/python bench/bench_scale.py --batch 4 --repeat 2 --no-write
    .venv/bin/python bench/bench_scale.py --skip-throughput --keep

What it starts (all on loopback, free ports, a fresh home under $TMPDIR):

- a 3-node JetStream cluster (tests.processes.NatsCluster: n1..n3, routes to one another, a store each), waited for
  until its meta group has a leader (/jsz);
- a fresh PostgreSQL database (DYAG_DATABASE_URL; dropped at the end);
- a Chroma server (`chroma run`) that both rag-service replicas use (CHROMA_URL);
- two replicas of each gRPC service and two gateways, their environment built by `dyag up`'s launcher
  (dyag_cli.stack.Stack, its API key, model cache and settings), each replica with its own gRPC port and
  DYAG_DATA_DIR, all sharing NATS_URL (the three nodes), DYAG_NATS_REPLICAS=3, the database, one artifact folder and
  DYAG_SERVICE_ADDRS = {service: "ipv4:127.0.0.1:<A>,127.0.0.1:<B>"}.

Faults: one pipeline (the sample catalog `dyag run` uses, sized small for this CPU, with an export) through a gateway's
HTTP API; while it runs, one replica of each service is killed with SIGKILL (its whole process group), the replica
running that service's step when it is caught running, the gateway running the pipeline too, then one NATS node (the
leader of the work queue's stream); each is started again some seconds later. Timeline of every event.

Checks afterwards: the pipeline succeeded; every job record (KV buckets jobs_<service> and pipelines) ended, one job
per (correlation id, kind, step label), attempts reported (a resumed job: 2 or more); one terminal job event per job
on DYAG_EVENTS; no duplicated registry row in PostgreSQL (each table's natural keys); the streams and KV buckets
replicated on 3 nodes (config.num_replicas and the cluster's replicas).

Throughput: a batch of pipelines started together, with 2 replicas of everything and with 1 (the second replicas
stopped), wall time and pipelines per minute side by side, and per service the steps' wall and queue times (where
pipelines waited: the limiting service).

Writes bench/SCALE.md (and --json); a summary section "Scale" in bench/RELIABILITY.md links to it. Every process it
starts is killed on exit (process groups; atexit, SIGINT, SIGTERM) and the database dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_faults import count_events  # noqa: E402
from bench.reliability import load, machine, publish, wait_until  # noqa: E402
from dyag_cli.pipeline import request_body  # noqa: E402
from dyag_cli.stack import (  # noqa: E402
    GATEWAY,
    Stack,
    StackConfig,
    _pid_alive,
    ensure_api_key,
    free_port,
    installed_services,
    tail,
)
from dyag_runtime.database import Database  # noqa: E402
from dyag_runtime.healthcheck import check as grpc_serving  # noqa: E402
from tests.conftest import POSTGRES_URL  # noqa: E402
from tests.processes import NatsCluster  # noqa: E402

SCALE_MD = ROOT / "bench" / "SCALE.md"
ENDED = ("succeeded", "failed", "cancelled")
NATS_REPLICAS = 3
RESTART_AFTER_S = 8.0
# The fault pipeline: every step of `dyag run` on the sample catalog, sized for a 2-core CPU shared by 17 processes.
FAULT_OPTIONS: dict[str, Any] = {
    "max_steps": 8,
    "max_eval_questions": 6,
    "eval_max_tokens": 32,
    "targets": ["fine_tuned", "grounded"],
    "skip_similarity": True,
    "export": ["q8_0"],
    "device": "cpu",
}
# The throughput batch: the same, smaller, without the export.
BATCH_OPTIONS: dict[str, Any] = {
    **{k: v for k, v in FAULT_OPTIONS.items() if k != "export"},
    "max_steps": 4,
    "max_eval_questions": 4,
    "eval_max_tokens": 24,
}

T0 = time.monotonic()
TIMELINE: list[tuple[float, str]] = []


def log(message: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')} +{time.monotonic() - T0:6.1f}s] {message}", flush=True)


def event(message: str) -> None:
    """A timeline entry (seconds since the bench started), printed."""
    TIMELINE.append((round(time.monotonic() - T0, 1), message))
    log(message)


# --- the platform: NATS cluster, PostgreSQL, Chroma, replicas ---------------------------------------------------------


class Platform:
    """Everything the bench runs, and its cleanup (idempotent; atexit and signal handlers call it)."""

    def __init__(self, home: Path, replicas: int, keep: bool):
        self.home, self.replicas, self.keep = home, replicas, keep
        self.services = installed_services()
        self.nats: NatsCluster | None = None
        self.database = ""
        self.db_url = ""
        self.ports = {(s, r): free_port() for s in self.services for r in range(1, replicas + 1)}
        self.gateway_ports = {r: free_port() for r in range(1, replicas + 1)}
        self.stack: Stack | None = None
        self.key = ""
        self.timers: list[threading.Timer] = []
        self._cleaned = False
        self.rss_peak: dict[str, Any] = {"total_mib": 0.0}
        self.spawned: dict[str, list[float]] = {}  # each process's start times (a restart: one more)

    # names: "dataset-builder-1", "gateway-2"
    def name(self, service: str, r: int) -> str:
        return f"{service}-{r}"

    def data_dir(self, service: str, r: int) -> Path:
        return self.home / "data" / self.name(service, r)

    def gateway_urls(self, only: list[int] | None = None) -> list[str]:
        return [f"http://127.0.0.1:{p}" for r, p in self.gateway_ports.items() if only is None or r in only]

    # --- start ------------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.start_nats()
        self.create_database()
        addrs = {
            s: "ipv4:" + ",".join(f"127.0.0.1:{self.ports[(s, r)]}" for r in range(1, self.replicas + 1))
            for s in self.services
        }
        os.environ.setdefault("DYAG_MODEL_CACHE", str(Path.home() / ".dyag" / "models"))  # every process shares it
        config = StackConfig(
            home=self.home,
            gateway_port=self.gateway_ports[1],
            nats_url=self.nats.url,
            grpc_ports={s: self.ports[(s, 1)] for s in self.services},
            services=self.services,
            supervise=False,  # the bench kills and restarts processes itself
            extra_env={
                "DYAG_NATS_REPLICAS": str(NATS_REPLICAS),
                "DYAG_DATABASE_URL": self.db_url,
                "DYAG_SERVICE_ADDRS": json.dumps(addrs),
                # Short job timings, as the fault benches and integration tests use: a killed worker's job is
                # redelivered within seconds.
                "DYAG_JOB_ACK_WAIT_S": "4",
                "DYAG_JOB_HEARTBEAT_S": "0.5",
                "DYAG_RATE_LIMIT_PER_MIN": "100000",
                # Every index embeds its catalog: no replica gets a head start from its own cache.
                "DYAG_RAG_EMBEDDING_CACHE": "off",
            },
        )
        self.stack = Stack(config)
        self.key = ensure_api_key(self.home)
        config.extra_env["CHROMA_URL"] = self.start_chroma()
        for s in self.services:
            for r in range(1, self.replicas + 1):
                self.spawn_service(s, r)
        for r in range(1, self.replicas + 1):
            self.spawn_gateway(r)
        self.wait_ready(timeout=600)

    def start_nats(self) -> None:
        self.nats = NatsCluster(self.home / "nats", size=3)
        self.nats.start(timeout=60)
        leader = wait_until(self.meta_leader, 60, "a JetStream meta leader")
        event(f"NATS cluster up: n1..n3 on client ports {self.nats.client_ports}, meta leader {leader}")

    def meta_leader(self) -> str:
        for i, proc in enumerate(self.nats.procs):
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(httpx.HTTPError, ValueError):
                jsz = httpx.get(f"http://127.0.0.1:{self.nats.monitor_ports[i]}/jsz", timeout=2).json()
                if leader := (jsz.get("meta_cluster") or {}).get("leader"):
                    return leader
        return ""

    def create_database(self) -> None:
        self.database = f"dyag_scale_{time.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:4]}"
        admin = Database(POSTGRES_URL)
        try:
            admin.run(f'CREATE DATABASE "{self.database}"')
        finally:
            admin.close()
        from urllib.parse import urlsplit

        self.db_url = urlsplit(POSTGRES_URL)._replace(path=f"/{self.database}").geturl()
        event(f"PostgreSQL database {self.database} created")

    def start_chroma(self) -> str:
        port = free_port()
        script = Path(sys.executable).with_name("chroma")
        argv = [str(script) if script.exists() else "chroma", "run", "--path", str(self.home / "chroma")]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
        self.stack._spawn("chroma", argv, {**os.environ, "ANONYMIZED_TELEMETRY": "False"})
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200, 90, "chroma run")
        event(f"Chroma server up on port {port}")
        return url

    def spawn_service(self, service: str, r: int) -> None:
        processes = self.stack.processes()
        name = self.name(service, r)
        env = self.stack._service_env(service, self.nats.url)
        env.update(DYAG_GRPC_PORT=str(self.ports[(service, r)]), DYAG_DATA_DIR=str(self.data_dir(service, r)))
        self.spawned.setdefault(name, []).append(time.time())
        self.stack._spawn(name, [sys.executable, "-m", _module(service)], env, restart=name in processes)

    def spawn_gateway(self, r: int) -> None:
        name = self.name(GATEWAY, r)
        env = self.stack._gateway_env(self.nats.url)
        env.update(DYAG_PORT=str(self.gateway_ports[r]), DYAG_PIPELINE_DATA_DIR=str(self.data_dir(GATEWAY, r)))
        self.spawned.setdefault(name, []).append(time.time())
        self.stack._spawn(name, [sys.executable, "-m", "dyag_gateway"], env, restart=name in self.stack.processes())

    def replica_names(self, only: list[int] | None = None) -> list[str]:
        rs = range(1, self.replicas + 1) if only is None else only
        return [self.name(s, r) for s in [*self.services, GATEWAY] for r in rs]

    def ready(self, name: str) -> bool:
        service, r = name.rsplit("-", 1)
        if service == GATEWAY:
            with contextlib.suppress(httpx.HTTPError):
                reply = httpx.get(f"http://127.0.0.1:{self.gateway_ports[int(r)]}/readyz", timeout=3)
                return reply.status_code == 200
            return False
        return grpc_serving(f"127.0.0.1:{self.ports[(service, int(r))]}", timeout=2)

    def wait_ready(self, names: list[str] | None = None, timeout: float = 300) -> None:
        names = names or self.replica_names()
        began = time.monotonic()
        pending = list(names)
        while pending:
            for name in list(pending):
                if not self.stack.alive(name):
                    raise RuntimeError(f"{name} exited during start-up; its log ends with:\n{self.tail(name)}")
                if self.ready(name):
                    pending.remove(name)
            if pending and time.monotonic() - began > timeout:
                raise TimeoutError(f"not ready after {timeout:.0f} s: {', '.join(pending)}")
            if pending:
                time.sleep(0.5)
        log(f"ready in {time.monotonic() - began:.1f} s: {len(names)} processes")

    def tail(self, name: str, lines: int = 20) -> str:
        return tail(self.stack.log_path(name), lines)

    # --- kill / restart ---------------------------------------------------------------------------------------------
    def pid(self, name: str) -> int:
        return self.stack.processes()[name]["pid"]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """The process and its group (a service's own children: llama.cpp, a GGUF worker) killed at once."""
        pid = self.pid(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        wait_until(lambda: not _pid_alive(pid), 30, f"{name} (pid {pid}) to stop", poll=0.05)
        return pid

    def restart(self, name: str) -> None:
        service, r = name.rsplit("-", 1)
        if service == GATEWAY:
            self.spawn_gateway(int(r))
        else:
            self.spawn_service(service, int(r))

    def restart_later(self, name: str, delay: float, then=None) -> None:
        def go() -> None:
            if self._cleaned:
                return
            self.restart(name)
            event(f"{name} started again (pid {self.pid(name)})")
            if then:
                then()

        timer = threading.Timer(delay, go)
        timer.daemon = True
        timer.start()
        self.timers.append(timer)

    def consumers(self) -> dict[str, dict]:
        """The work queue's durable consumers (one per service, shared by its replicas): max_ack_pending and how many
        messages they hold unacknowledged now (jobs being run), from any live node's /jsz."""
        for i, proc in enumerate(self.nats.procs):
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(httpx.HTTPError, ValueError):
                url = f"http://127.0.0.1:{self.nats.monitor_ports[i]}/jsz?consumers=true&config=true"
                for account in httpx.get(url, timeout=2).json().get("account_details") or []:
                    for stream in account.get("stream_detail") or []:
                        if stream.get("name") == "DYAG_JOBS":
                            return {
                                c["name"]: {
                                    "max_ack_pending": (c.get("config") or {}).get("max_ack_pending"),
                                    "ack_pending": c.get("num_ack_pending", 0),
                                }
                                for c in stream.get("consumer_detail") or []
                            }
        return {}

    def kill_nats(self, node: int) -> None:
        self.nats.kill(node)

    def restart_nats_later(self, node: int, delay: float) -> None:
        def go() -> None:
            if self._cleaned:
                return
            self.nats.start(node, timeout=60)
            event(f"NATS node n{node + 1} started again (same port and store); meta leader {self.meta_leader()}")

        timer = threading.Timer(delay, go)
        timer.daemon = True
        timer.start()
        self.timers.append(timer)

    def wait_timers(self) -> None:
        for timer in self.timers:
            timer.join()

    # --- memory -----------------------------------------------------------------------------------------------------
    def sample_rss(self) -> None:
        total, by = 0.0, {}
        pids = {name: info["pid"] for name, info in self.stack.processes().items()}
        pids.update({f"nats-n{i + 1}": p.pid for i, p in enumerate(self.nats.procs) if p is not None})
        groups = _process_groups()
        for name, pid in pids.items():
            mib = sum(_rss_mib(p) for p in groups.get(pid, [pid]))
            by[name] = mib
            total += mib
        if total > self.rss_peak["total_mib"]:
            self.rss_peak = {"total_mib": round(total), "at": round(time.monotonic() - T0), "by": by}

    # --- cleanup ----------------------------------------------------------------------------------------------------
    def cleanup(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        for timer in self.timers:
            timer.cancel()
        log("cleaning up: every process started, the database")
        pids = [info["pid"] for info in (self.stack.processes().values() if self.stack else [])]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
            time.sleep(0.2)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if self.nats is not None:
            with contextlib.suppress(Exception):
                self.nats.stop()
        if self.database:
            with contextlib.suppress(Exception):
                admin = Database(POSTGRES_URL)
                admin.run(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
                admin.close()
                log(f"database {self.database} dropped")
        if self.keep:
            log(f"home kept: {self.home}")
        else:
            shutil.rmtree(self.home, ignore_errors=True)


def _module(service: str) -> str:
    from dyag_runtime.settings import SERVICES

    return SERVICES[service][0]


def _process_groups() -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                groups.setdefault(int(fields[2]), []).append(int(entry.name))
    return groups


def _rss_mib(pid: int) -> float:
    with contextlib.suppress(OSError, StopIteration, ValueError):
        line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS"))
        return int(line.split()[1]) / 1024
    return 0.0


# --- the gateway's API, through whichever gateway answers -------------------------------------------------------------


class Api:
    def __init__(self, platform: Platform):
        self.platform = platform
        self.clients = {
            url: httpx.Client(base_url=url, headers={"X-API-Key": platform.key}, timeout=60)
            for url in platform.gateway_urls()
        }

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        last: Exception | None = None
        for _ in range(3):
            for client in self.clients.values():
                try:
                    return client.request(method, path, **kw)
                except httpx.TransportError as exc:  # that gateway is down: the other one
                    last = exc
            time.sleep(0.5)
        raise last or RuntimeError("no gateway")

    def start_pipeline(self, catalog_name: str, options: dict[str, Any], label: str) -> dict:
        body = request_body(None, name=catalog_name, version="", **options)
        body["name"] = label
        reply = self.request("POST", "/pipelines", json=body, headers={"X-Correlation-Id": f"scale-{uuid.uuid4()}"})
        if reply.status_code != 202:
            raise RuntimeError(f"POST /pipelines: {reply.status_code} {reply.text[:500]}")
        return reply.json()

    def pipeline(self, pipeline_id: str) -> dict:
        reply = self.request("GET", f"/pipelines/{pipeline_id}")
        return reply.json() if reply.status_code == 200 else {}


# --- the fault run ----------------------------------------------------------------------------------------------------


def running_replica(p: Platform, service: str, job_id: str) -> int | None:
    """Which replica runs a job: the one holding its work folder (DYAG_DATA_DIR/jobs/<id>; the gateway's pipelines
    under DYAG_PIPELINE_DATA_DIR), the most recently made when both do (resumed on the other)."""
    found = []
    for r in range(1, p.replicas + 1):
        folder = p.data_dir(service, r) / "jobs" / job_id
        if folder.exists():
            found.append((folder.stat().st_mtime, r))
    return max(found)[1] if found else None


def step_of(view: dict, name: str) -> dict:
    return next((s for s in view.get("steps", []) if s["name"] == name), {})


class Faults:
    """Kills one replica of each service while the pipeline runs (the one running its step, caught running), the
    gateway running the pipeline, and one NATS node; each started again RESTART_AFTER_S later."""

    # (what is killed, the step it is caught in, when), in the order the pipeline gets there. When: "job" its job
    # taken by a replica, "progress" its job past PROGRESS of its work (the trainer: past TRAIN_PROGRESS, so that the
    # gateway killed before it has been replaced), "step" the step running (an RPC), "any" at once.
    PLAN = (
        ("dataset-builder", "build", "job"),
        ("rag-service", "index", "job"),
        ("validator", "validate", "step"),
        (GATEWAY, "train", "progress"),
        ("gpu-lora-trainer", "train", "train_progress"),
        ("evaluator", "evaluate_fine_tuned", "job"),
        ("nats", "export", "step"),
        ("model-exporter", "export", "progress"),
        ("openai-trainer", "export", "any"),  # no pipeline step uses it: killed idle
    )
    PROGRESS, TRAIN_PROGRESS = 0.1, 0.45

    def __init__(self, p: Platform, api: Api, pipeline_id: str):
        self.p, self.api, self.pipeline_id = p, api, pipeline_id
        self.kills: list[dict] = []

    def run(self, timeout: float = 1800) -> dict:
        plan = [x for x in self.PLAN if x[0] in (*self.p.services, GATEWAY, "nats")]
        deadline = time.monotonic() + timeout
        view: dict = {}
        last_status = ""
        while time.monotonic() < deadline:
            self.p.sample_rss()
            view = self.api.pipeline(self.pipeline_id) or view
            status = view.get("status", "")
            line = ", ".join(f"{s['name']}:{s['status']}" for s in view.get("steps", []) if s["status"] != "pending")
            if line != last_status:
                log(f"pipeline {status}: {line}")
                last_status = line
            while plan:
                target, step_name, when = plan[0]
                step = step_of(view, step_name)
                replica = self.caught(target, step, when)
                missed = step.get("status") in ("succeeded", "failed", "skipped", "blocked") or status in ENDED
                if replica is None and not missed:
                    break
                plan.pop(0)
                self.kill(target, step_name, step, replica)
            if status in ENDED and not plan:
                return view
            time.sleep(0.25)
        raise TimeoutError(f"pipeline {self.pipeline_id} still {view.get('status')} after {timeout:.0f} s")

    def caught(self, target: str, step: dict, when: str) -> int | None:
        """The replica to kill now (0: a NATS node or an RPC's replica, chosen at the kill), or None: not yet."""
        if step.get("status") != "running":
            return None
        if when in ("any", "step"):
            return 0
        if target == GATEWAY:
            replica = running_replica(self.p, GATEWAY, self.pipeline_id)
        else:
            replica = running_replica(self.p, target, step.get("job_id") or "-") if step.get("job_id") else None
        if replica is None or when == "job":
            return replica
        fraction = float((step.get("progress") or {}).get("fraction") or 0.0)
        return replica if fraction >= (self.TRAIN_PROGRESS if when == "train_progress" else self.PROGRESS) else None

    def kill(self, target: str, step_name: str, step: dict, replica: int | None) -> None:
        caught = replica is not None
        at = f"step {step_name} {step.get('status', '?')}"
        fraction = float((step.get("progress") or {}).get("fraction") or 0.0)
        if caught and fraction:
            at += f" at {fraction * 100:.0f} %"
        if target == "nats":
            node = self.stream_leader_node("DYAG_JOBS")
            event(f"SIGKILL NATS node n{node + 1} (leader of the work queue DYAG_JOBS) during {at}")
            self.p.kill_nats(node)
            self.kills.append({"what": f"NATS n{node + 1}", "during": at, "mid_job": False, "at": time.time()})
            self.p.restart_nats_later(node, RESTART_AFTER_S + 4)
            return
        job_id = (self.pipeline_id if target == GATEWAY else step.get("job_id", "")) if replica else ""
        if target == "openai-trainer":
            replica, why = 1, "idle: no pipeline step uses it"
        elif replica:
            why = f"running {job_id}"
        elif caught:
            replica, why = 1, "while the step's call runs; round robin: either replica may be serving it"
        else:
            replica, why = 1, "idle: its step had ended"
        name = self.p.name(target, replica)
        pid = self.p.kill(name)
        event(f"SIGKILL {name} (pid {pid}, {why}) during {at}")
        self.kills.append({"what": name, "during": at, "mid_job": bool(job_id), "job_id": job_id, "at": time.time()})
        self.p.restart_later(name, RESTART_AFTER_S)

    def stream_leader_node(self, stream: str) -> int:
        for i, proc in enumerate(self.p.nats.procs):
            if proc is None:
                continue
            with contextlib.suppress(httpx.HTTPError, ValueError):
                url = f"http://127.0.0.1:{self.p.nats.monitor_ports[i]}/jsz?streams=true"
                for account in httpx.get(url, timeout=2).json().get("account_details") or []:
                    for s in account.get("stream_detail") or []:
                        if s.get("name") == stream and (leader := (s.get("cluster") or {}).get("leader")):
                            return int(leader.lstrip("n")) - 1
        return 0


# --- the checks -------------------------------------------------------------------------------------------------------


async def _read_nats(url: str) -> dict:
    """Every job record (KV buckets jobs_* and pipelines) and every stream's replication."""
    import nats

    nc = await nats.connect(url.split(","), connect_timeout=5)
    try:
        js = nc.jetstream()
        streams = await js.streams_info()
        out: dict[str, Any] = {"streams": [], "records": {}}
        for info in streams:
            cluster = info.cluster
            out["streams"].append(
                {
                    "name": info.config.name,
                    "num_replicas": info.config.num_replicas or 1,
                    "leader": getattr(cluster, "leader", None),
                    "replicas": [
                        {"name": peer.name, "current": peer.current}
                        for peer in (getattr(cluster, "replicas", None) or [])
                    ],
                }
            )
            name = info.config.name
            if name.startswith("KV_jobs_") or name == "KV_pipelines":
                bucket = name[3:]
                kv = await js.key_value(bucket)
                try:
                    keys = await kv.keys()
                except Exception:  # an empty bucket
                    keys = []
                records = []
                for key in keys:
                    with contextlib.suppress(Exception):
                        records.append(json.loads((await kv.get(key)).value))
                out["records"][bucket] = records
        return out
    finally:
        await nc.close()


def check_jobs(records: dict[str, list[dict]], correlations: set[str] | None = None) -> dict:
    """Every job ended; one job per (correlation id, kind, step label); attempts; pipelines likewise."""
    jobs = [r for bucket in records.values() for r in bucket]
    if correlations is not None:
        jobs = [j for j in jobs if j.get("correlation_id") in correlations]
    groups: dict[tuple, list[str]] = {}
    for job in jobs:
        groups.setdefault((job.get("correlation_id"), job.get("kind"), _label(job)), []).append(job["id"])
    not_ended = [f"{j['id']} {j['status']}" for j in jobs if j["status"] not in ENDED]
    not_succeeded = [f"{j['id']} {j['status']}: {j.get('error', '')[:120]}" for j in jobs if j["status"] != "succeeded"]
    duplicates = {" / ".join(map(str, k)): ids for k, ids in groups.items() if len(ids) > 1}
    attempts = {j["id"]: j.get("attempts", 0) for j in jobs}
    return {
        "jobs": len(jobs),
        "by_bucket": {b: len(v) for b, v in records.items() if v},
        "not_ended": not_ended,
        "not_succeeded": not_succeeded,
        "duplicates": duplicates,
        "attempts": attempts,
        "resumed": {k: v for k, v in attempts.items() if v > 1},
        "ok": not not_ended and not duplicates,
        "records": [  # what each job was, for a duplicate's post-mortem (the JSON output)
            {
                "id": j["id"],
                "kind": j.get("kind"),
                "correlation_id": j.get("correlation_id"),
                "label": _label(j),
                "status": j["status"],
                "attempts": j.get("attempts"),
                "created_at": j.get("created_at"),
                "params": {k: v for k, v in (j.get("params") or {}).items() if k not in ("ingest", "content")},
            }
            for j in jobs
        ],
    }


def _label(job: dict) -> str:
    """What tells apart the jobs of one kind in one correlation: an evaluation's pipeline step, or "catalog.updated"
    for rag-service's re-index of a collection that follows its catalog (FollowCatalogs: not asked by the pipeline)."""
    params = job.get("params") or {}
    labels = params.get("labels") or {}
    if isinstance(labels, dict) and labels.get("step"):
        return labels["step"]
    return "catalog.updated" if "event_changes" in params else ""


# Natural keys of each registry table: columns, or "body.<field>" of its JSON body (dicts compared whole). Two rows
# sharing one are the same thing stored twice (a job run twice, an upload stored twice). A table not listed: the job
# that made the row (body.job_id) when its rows name one; its unique constraints are PostgreSQL's.
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "catalog_versions": ("name", "artifact"),  # one catalog's same content as two versions
    "datasets": ("catalog", "catalog_version", "body.plan", "body.base_dataset_id", "body.focus_entity_ids"),
    "runs": ("body.correlation_id", "body.labels", "body.target", "body.dataset_id"),  # a pipeline step's evaluation
    "models": ("body.job_id",),
    "exports": ("body.job_id",),
}


def check_registries(db_url: str) -> dict:
    """For every table of every service schema: rows, and rows sharing a natural key (NATURAL_KEYS; a body's job_id
    when it has one: one record per job)."""
    db = Database(db_url)
    try:
        schemas = [
            r[0]
            for r in db.all(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN "
                "('public', 'information_schema') AND schema_name NOT LIKE 'pg_%'"
            )
        ]
        tables, keyed, duplicates = {}, {}, {}
        for schema in schemas:
            for (table,) in db.all(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", (schema,)
            ):
                columns = [
                    c
                    for (c,) in db.all(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?"
                        " ORDER BY ordinal_position",
                        (schema, table),
                    )
                ]
                rows = db.all(f'SELECT {", ".join(columns)} FROM "{schema}"."{table}"')
                tables[f"{schema}.{table}"] = len(rows)
                keys = NATURAL_KEYS.get(table) or (("body.job_id",) if "body" in columns else ())
                if not keys:
                    continue
                seen: dict[tuple, int] = {}
                for row in rows:
                    values = dict(zip(columns, row, strict=True))
                    key = tuple(_key_value(values, k) for k in keys)
                    if all(v in (None, "", "[]", "{}") for v in key):
                        continue  # a record made by no job (an upload): no natural key to compare
                    seen[key] = seen.get(key, 0) + 1
                keyed[f"{schema}.{table}"] = f"{sum(seen.values())} rows by ({', '.join(keys)})"
                for key, n in seen.items():
                    if n > 1:
                        duplicates[f"{schema}.{table} {dict(zip(keys, key, strict=True))}"] = n
        return {"schemas": schemas, "tables": tables, "keyed": keyed, "duplicates": duplicates, "ok": not duplicates}
    finally:
        db.close()


def _key_value(values: dict, path: str) -> Any:
    if not path.startswith("body."):
        return values.get(path)
    try:
        body = json.loads(values.get("body") or "{}")
    except ValueError:
        return None
    value = body.get(path[5:]) if isinstance(body, dict) else None
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


def check_replication(streams: list[dict]) -> dict:
    rows = [
        {
            "stream": s["name"],
            "num_replicas": s["num_replicas"],
            "peers": 1 + len(s["replicas"]) if s["leader"] else len(s["replicas"]),
            "leader": s["leader"],
            "followers": [f"{r['name']}{'' if r['current'] else ' (behind)'}" for r in s["replicas"]],
        }
        for s in streams
    ]
    short = [r["stream"] for r in rows if r["num_replicas"] < NATS_REPLICAS or r["peers"] < NATS_REPLICAS]
    return {"streams": rows, "not_r3": short, "ok": bool(rows) and not short}


def check_events(nats_url: str, job_ids: list[str]) -> dict:
    """One terminal job event per job on DYAG_EVENTS (bench_faults' count, for every job of the run)."""
    first = nats_url.split(",")[0]
    ok, notes, found = count_events(SimpleNamespace(nats_url=first), job_ids, None, "")
    return {"ok": ok, "notes": notes, "jobs": len(job_ids)}


# --- throughput -------------------------------------------------------------------------------------------------------


def run_batch(p: Platform, api: Api, replicas: int, batch: int, label: str) -> dict:
    """`batch` pipelines posted at once; wall time from the first POST to the last end (the records' clocks)."""
    names = [f"scale_{label}_p{i + 1}" for i in range(batch)]
    began = time.monotonic()
    busy = (
        wait_until(
            lambda: not any(c["ack_pending"] for c in p.consumers().values()) or None, 600, "the work queue idle"
        )
        and time.monotonic() - began
    )
    if busy and busy > 2:
        log(f"waited {busy:.0f} s for the work queue to be idle (work left by the previous phase)")
    event(f"throughput, {replicas} replica(s): {batch} pipelines posted together ({label}); load {load()}")
    load_at_start = load()
    began = time.time()
    with ThreadPoolExecutor(batch) as pool:
        created = list(pool.map(lambda n: api.start_pipeline(n, BATCH_OPTIONS, f"scale-{label}"), names))
    ids = [c["id"] for c in created]
    views: dict[str, dict] = {}
    consumers: dict[str, dict] = {}
    deadline = time.monotonic() + 3600
    while len(views) < len(ids):
        p.sample_rss()
        for name, c in p.consumers().items():
            row = consumers.setdefault(name, {"max_ack_pending": c["max_ack_pending"], "peak_ack_pending": 0})
            row["peak_ack_pending"] = max(row["peak_ack_pending"], c["ack_pending"])
        for pid in ids:
            if pid not in views and (v := api.pipeline(pid)).get("status") in ENDED:
                views[pid] = v
                log(f"{pid} {v['status']} in {v['elapsed_s']} s")
        if time.monotonic() > deadline:
            raise TimeoutError("throughput batch did not end within an hour")
        time.sleep(1.0)
    ended = max(_epoch(v["updated_at"]) for v in views.values())
    wall = ended - began
    event(f"throughput, {replicas} replica(s): last of {batch} pipelines ended, {wall:.1f} s after the first POST")
    return {
        "replicas": replicas,
        "batch": batch,
        "wall_s": round(wall, 1),
        "per_min": round(batch / wall * 60, 3),
        "statuses": [v["status"] for v in views.values()],
        "load": f"{load_at_start} → {load()}",
        "pipelines": [_pipeline_figures(v) for v in views.values()],
        "correlations": [v["correlation_id"] for v in views.values()],
        "consumers": consumers,
    }


def _epoch(stamp: str | None) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else 0.0


def _pipeline_figures(view: dict) -> dict:
    created = _epoch(view["created_at"])
    steps = [s for s in view["steps"] if s["name"] != "ingest" and s.get("started_at")]
    first = min((_epoch(s["started_at"]) for s in steps), default=created)
    return {
        "id": view["id"],
        "status": view["status"],
        "elapsed_s": view["elapsed_s"],
        "gateway_queue_s": round(first - created, 1),  # waiting for a gateway to take the pipeline
        "steps": [
            {
                "name": s["name"],
                "service": s["service"],
                "seconds": s.get("seconds"),
                "queued_s": s.get("queued_s") or 0.0,
            }
            for s in steps
        ],
    }


def by_service(result: dict) -> dict[str, dict]:
    """Per service: its steps' wall time and the time their jobs waited in its queue, summed over the batch; the
    gateway's queue is the pipelines' wait for a gateway."""
    table: dict[str, dict] = {}
    for pipe in result["pipelines"]:
        gw = table.setdefault(GATEWAY, {"steps": 0, "wall_s": 0.0, "queued_s": 0.0})
        gw["steps"] += 1
        gw["wall_s"] += pipe["elapsed_s"] or 0.0
        gw["queued_s"] += pipe["gateway_queue_s"]
        for s in pipe["steps"]:
            row = table.setdefault(s["service"], {"steps": 0, "wall_s": 0.0, "queued_s": 0.0})
            row["steps"] += 1
            row["wall_s"] += s["seconds"] or 0.0
            row["queued_s"] += s["queued_s"] or 0.0
    return {k: {**v, "wall_s": round(v["wall_s"], 1), "queued_s": round(v["queued_s"], 1)} for k, v in table.items()}


def set_replicas(p: Platform, n: int) -> None:
    """Stop (SIGTERM) or start the replicas above n, and wait until what should run is ready."""
    extra = [name for name in p.replica_names([r for r in range(n + 1, p.replicas + 1)])]
    if n < p.replicas:
        for name in extra:
            if p.stack.alive(name):
                p.kill(name, signal.SIGTERM)
        event(f"stopped (SIGTERM) {', '.join(extra)}: {n} replica(s) of each service")
    else:
        for name in p.replica_names():
            if not p.stack.alive(name):
                p.restart(name)
        p.wait_ready()
        event(f"every replica running: {n} of each service")
    p.wait_ready(p.replica_names(list(range(1, n + 1))))


# --- the report -------------------------------------------------------------------------------------------------------


def markdown(result: dict) -> str:
    peak = result["rss_peak"]
    largest = sorted((peak.get("by") or {}).items(), key=lambda x: -x[1])[:4]
    lines = [
        "# Scale: replicas, a NATS cluster and kills on one machine",
        "",
        "`bench/bench_scale.py` (issue 17): a 3-node JetStream cluster, PostgreSQL, a Chroma server, "
        f"{result['replicas']} replicas of each gRPC service and {result['replicas']} gateways, all on one machine; "
        "a pipeline through a gateway's HTTP API while one replica of each service, the gateway running the "
        "pipeline and one NATS node are killed with SIGKILL and started again; then checks, and the throughput of "
        "a batch of pipelines with 2 replicas and with 1. Linked from [RELIABILITY.md](RELIABILITY.md).",
        "",
        f"Run of {result['date']} on {result['machine']}; load average {result['load_before']} before, "
        f"{result['load_after']} after; {result['total_s']:.0f} s in all. Command: `{result['command']}`.",
        "",
        f"Processes: {result['processes']} (NATS 3, Chroma 1, services {result['service_processes']}, gateways "
        f"{result['replicas']}); peak resident memory {peak.get('total_mib', 0):,} MiB in all"
        + (" (largest: " + ", ".join(f"{k} {v:,.0f} MiB" for k, v in largest) + ")" if largest else "")
        + ".",
        "",
        "Settings: NATS_URL the three nodes, DYAG_NATS_REPLICAS=3, DYAG_DATABASE_URL a fresh database, one artifact "
        'folder, CHROMA_URL, DYAG_SERVICE_ADDRS `{service: "ipv4:127.0.0.1:A,127.0.0.1:B"}`, '
        "DYAG_JOB_ACK_WAIT_S=4, DYAG_JOB_HEARTBEAT_S=0.5, DYAG_RAG_EMBEDDING_CACHE=off; a killed process started "
        f"again {RESTART_AFTER_S:.0f} s after its kill (a NATS node {RESTART_AFTER_S + 4:.0f} s).",
        "",
    ]
    faults = result.get("faults")
    if faults:
        lines += [
            "## Faults",
            "",
            f"Pipeline `{faults['pipeline_id']}` on the sample catalog (`dyag run`'s), options "
            f"`{json.dumps(FAULT_OPTIONS)}`: **{faults['status']}** in {faults['elapsed_s']} s, pipeline attempts "
            f"{faults['attempts']}" + (f"; error: {faults['error']}" if faults.get("error") else "") + ".",
            "",
            "| killed (SIGKILL) | during | its job | job's end | attempts | running again after |",
            "|---|---|---|---|---|---|",
        ]
        for k in faults["kills"]:
            lines.append(
                f"| {k['what']} | {k['during']} | {k.get('job_id') or '– (no job of it running)'} | "
                f"{k.get('status') or '–'} | {k.get('attempts') or '–'} | "
                f"{_seconds(k.get('resumed_after_s')) if k.get('job_id') else '–'} |"
            )
        lines += [
            "",
            "| step | service | status | job | attempts | wall s | queued s |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in faults["steps"]:
            lines.append(
                f"| {s['name']} | {s['service']} | {s['status']} | {s['job_id'] or '–'} | "
                f"{s.get('attempts', '–')} | {s['seconds'] if s['seconds'] is not None else '–'} | "
                f"{s.get('queued_s') or 0} |"
            )
        lines.append("")
    if result["checks"]:
        lines += ["## Checks", "", "| check | result |", "|---|---|"]
        for name, verdict, detail in result["checks"]:
            lines.append(f"| {name} | {'**pass**' if verdict else '**FAIL**'}: {detail} |")
        lines.append("")
    repl = result.get("replication")
    if repl:
        lines += ["Streams and KV buckets at the end:", "", "| stream | num_replicas | leader | followers |"]
        lines.append("|---|---|---|---|")
        for s in repl["streams"]:
            followers = ", ".join(s["followers"]) or "–"
            lines.append(f"| {s['stream']} | {s['num_replicas']} | {s['leader'] or '–'} | {followers} |")
        lines.append("")
    tp = result.get("throughput")
    if tp:
        lines += [
            "## Throughput",
            "",
            f"A batch of {tp['batch']} pipelines posted together (each its own catalog name, so its own RAG "
            f"collection), options `{json.dumps(BATCH_OPTIONS)}`; wall time from the first POST to the last "
            f"pipeline's end; {tp['repeat']} run(s) of each configuration, medians. 1 replica: the second replica of "
            "every service and the second gateway stopped (SIGTERM).",
            "",
            "| replicas of each service | runs (wall s) | wall s (median) | pipelines/min | all succeeded "
            "| load average (1/5/15 min) at each run's start → end |",
            "|---|---|---|---|---|---|",
        ]
        for n in sorted(tp["by_replicas"]):
            row = tp["by_replicas"][n]
            lines.append(
                f"| {n} | {len(row['walls'])} ({', '.join(f'{w:.0f}' for w in row['walls'])}) | "
                f"{row['median_wall_s']:.1f} | {row['median_per_min']:.2f} | {row['all_succeeded']} | "
                f"{'; '.join(row.get('loads') or [])} |"
            )
        lines += [
            "",
            f"**Ratio ({max(tp['by_replicas'])} replicas / 1): {tp['ratio']:.2f}x** pipelines per minute.",
            "",
            "Where the time went, per service (sums over the batch's pipelines, last run of each configuration; the "
            "gateway's row: the pipelines' whole wall time, and their wait for a gateway to take them):",
            "",
            "| service | replicas | steps | steps' wall s | of which queued s |",
            "|---|---|---|---|---|",
        ]
        for n in sorted(tp["by_replicas"]):
            for service, row in sorted(tp["by_replicas"][n]["by_service"].items(), key=lambda x: -x[1]["wall_s"]):
                lines.append(f"| {service} | {n} | {row['steps']} | {row['wall_s']} | {row['queued_s']} |")
        lines += [
            "",
            "The work queue's consumers (DYAG_JOBS, one durable consumer per service, shared by its replicas), sampled "
            "every second during the batch: their max_ack_pending, and the most jobs they had out at once:",
            "",
            "| consumer | max_ack_pending | "
            + " | ".join(f"most out at once, {n} replica(s)" for n in sorted(tp["by_replicas"]))
            + " |",
            "|---|---|" + "---|" * len(tp["by_replicas"]),
        ]
        names = sorted({c for n in tp["by_replicas"] for c in tp["by_replicas"][n]["consumers"]})
        for c in names:
            rows = [tp["by_replicas"][n]["consumers"].get(c, {}) for n in sorted(tp["by_replicas"])]
            limit = next((r["max_ack_pending"] for r in rows if r), "–")
            lines.append(f"| {c} | {limit} | " + " | ".join(str(r.get("peak_ack_pending", "–")) for r in rows) + " |")
        lines += ["", tp["verdict"], ""]
    errors = result.get("logged_errors") or {}
    if errors:
        lines += [
            "Error lines in the processes' logs (by logger, message and exception), all processes together:",
            "",
            "| logged | lines | processes |",
            "|---|---|---|",
        ]
        merged: dict[str, list] = {}
        for name, whats in errors.items():
            for what, n in whats.items():
                merged.setdefault(what, [0, []])
                merged[what][0] += n
                merged[what][1].append(name)
        for what, (n, names) in sorted(merged.items(), key=lambda x: -x[1][0]):
            lines.append(f"| {what.replace('|', '/')} | {n} | {', '.join(sorted(names))} |")
        lines.append("")
    lines += ["## Timeline", "", "| t (s) | event |", "|---|---|", *[f"| {t:.1f} | {w} |" for t, w in TIMELINE], ""]
    if result.get("errors"):
        lines += ["## Errors", "", *[f"- {e}" for e in result["errors"]], ""]
    return "\n".join(lines)


def section(result: dict) -> str:
    """The short "Scale" section of RELIABILITY.md: the key figures and a link to SCALE.md."""
    checks = "; ".join(f"{n}: {'pass' if v else 'FAIL'}" for n, v, _ in result.get("checks", []))
    tp = result.get("throughput")
    figures = ""
    if tp:
        rows = tp["by_replicas"]
        figures = (
            f" Throughput of a batch of {tp['batch']} pipelines: "
            + ", ".join(f"{n} replica(s) {rows[n]['median_per_min']:.2f}/min" for n in sorted(rows))
            + f" ({tp['ratio']:.2f}x); {tp['limiting']} limits."
        )
    return (
        "## Scale\n\n"
        "`bench/bench_scale.py`: a 3-node NATS cluster, PostgreSQL, 2 replicas of each service and 2 gateways on one "
        "machine, a pipeline while one replica of each (and the gateway running it, and a NATS node) is killed with "
        "SIGKILL, then checks and throughput with 1 and 2 replicas. Full results, timeline and tables: "
        "[SCALE.md](SCALE.md).\n\n"
        f"Run of {result['date']} on {result['machine']}: {checks or 'no check ran'}.{figures}\n"
    )


# --- main -------------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--batch", type=int, default=3, help="pipelines started together in the throughput runs")
    parser.add_argument("--repeat", type=int, default=1, help="throughput runs of each configuration (medians)")
    parser.add_argument("--skip-faults", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the home (logs, stores) after the run")
    parser.add_argument("--no-write", action="store_true", help="print; write neither SCALE.md nor RELIABILITY.md")
    parser.add_argument("--json", default=str(ROOT / "bench" / ".cache" / "scale.json"))
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="dyag-bench-scale-"))
    p = Platform(home, args.replicas, args.keep)
    atexit.register(p.cleanup)

    def on_signal(signum, _frame):
        log(f"signal {signum}: stopping")
        p.cleanup()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": load(),
        "command": "python bench/bench_scale.py " + " ".join(sys.argv[1:]),
        "replicas": args.replicas,
        "checks": [],
        "errors": [],
    }
    try:
        log(f"home {home}; preparing the model cache (set-up, not measured)")
        from dyag_llm.local import default_model_path

        os.environ.setdefault("DYAG_MODEL_CACHE", str(Path.home() / ".dyag" / "models"))  # every process shares it
        default_model_path()
        p.start()
        result["processes"] = len(p.stack.processes()) + 3
        result["service_processes"] = len(p.services) * args.replicas
        event(f"{len(p.services)} services x {args.replicas} replicas and {args.replicas} gateways ready")
        api = Api(p)
        if not args.skip_faults:
            fault_run(p, api, result)
        if not args.skip_throughput:
            throughput(p, api, args, result)
        final_checks(p, result)
    except Exception as exc:
        traceback.print_exc()
        result["errors"].append(f"{type(exc).__name__}: {exc}")
    finally:
        p.sample_rss() if p.stack and p.nats else None
        result["rss_peak"] = p.rss_peak
        result["load_after"] = load()
        result["total_s"] = round(time.monotonic() - T0, 1)
        p.cleanup()
    result["timeline"] = TIMELINE
    result.setdefault("processes", 0)
    result.setdefault("service_processes", 0)
    text = markdown(result)
    publish("Scale", result, section(result), args.json, write=not args.no_write)
    if not args.no_write:
        SCALE_MD.write_text(text + "\n")
        log(f"bench/{SCALE_MD.name} written")
    else:
        print(text)
    ok = not result["errors"] and all(verdict for _, verdict, _ in result["checks"])
    return 0 if ok else 1


def fault_run(p: Platform, api: Api, result: dict) -> None:
    created = api.start_pipeline("scale_faults", FAULT_OPTIONS, "scale-faults")
    pipeline_id = created["id"]
    event(f"pipeline {pipeline_id} posted (fault run)")
    faults = Faults(p, api, pipeline_id)
    view = faults.run()
    event(f"pipeline {pipeline_id} {view['status']} in {view['elapsed_s']} s (attempts {view['attempts']})")
    p.wait_timers()
    p.wait_ready(timeout=300)
    event("every killed process running and ready again")
    first_end = view
    for _ in range(20):  # an ended record must stay as it ended: watched a little longer
        time.sleep(1.0)
        later = api.pipeline(pipeline_id)
        if later.get("status") != first_end["status"] or later.get("updated_at") != first_end["updated_at"]:
            view = later
            event(f"pipeline {pipeline_id}'s ended record changed: {first_end['status']} -> {later.get('status')}")
            break
    data = asyncio.run(_read_nats(p.nats.url))
    records = {r["id"]: r for bucket in data["records"].values() for r in bucket}
    steps = [
        {
            "name": s["name"],
            "service": s["service"],
            "status": s["status"],
            "job_id": s.get("job_id", ""),
            "attempts": records.get(s.get("job_id", ""), {}).get("attempts", "–"),
            "seconds": s.get("seconds"),
            "queued_s": s.get("queued_s"),
        }
        for s in view["steps"]
    ]
    for kill in faults.kills:
        job = records.get(kill.get("job_id", ""), {})
        kill["attempts"] = job.get("attempts")
        kill["status"] = job.get("status")
        kill["resumed_after_s"] = resumed_after(job, kill["at"])
    result["faults"] = {
        "pipeline_id": pipeline_id,
        "correlation_id": view["correlation_id"],
        "status": view["status"],
        "first_status": first_end["status"],
        "first_end": {"status": first_end["status"], "updated_at": first_end["updated_at"]},
        "elapsed_s": view["elapsed_s"],
        "attempts": view["attempts"],
        "error": view.get("error", ""),
        "steps": steps,
        "kills": faults.kills,
    }
    mid_job = [k for k in faults.kills if k["mid_job"]]
    changed = first_end["status"] != view["status"] or first_end["updated_at"] != view["updated_at"]
    result["checks"] += [
        (
            "pipeline succeeded",
            first_end["status"] == "succeeded" and not changed,
            f"{first_end['status']} ({first_end.get('error') or 'no error'})"
            + (
                f"; then the ended record changed to {view['status']} ({view.get('error') or 'no error'}, "
                f"updated {view['updated_at']}): a second run wrote over it"
                if changed
                else ""
            ),
        ),
        (
            "killed mid-job: resumed, then succeeded",
            bool(mid_job) and all((k["attempts"] or 0) >= 2 and k["status"] == "succeeded" for k in mid_job),
            "; ".join(
                f"{k['job_id']} ({k['what']} killed): {k['status']}, attempts {k['attempts']}, running again "
                f"{_seconds(k['resumed_after_s'])} after the kill"
                for k in mid_job
            )
            or "no job caught running",
        ),
    ]


def resumed_after(job: dict, killed_at: float) -> float | None:
    """Seconds from a kill to the job's record saying it was resumed (its worker's log line, "resumed (attempt N)")."""
    for entry in job.get("logs") or []:
        if "resumed (attempt" in entry.get("message", ""):
            at = _epoch(entry.get("time"))
            if at >= killed_at - 1:
                return round(at - killed_at, 1)
    return None


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "? s"


def logged_errors(p: Platform) -> dict[str, dict[str, int]]:
    """Error lines each process logged (JSON logs), counted by logger and message: what the faults cost them."""
    counts: dict[str, dict[str, int]] = {}
    for name in p.stack.processes():
        path = p.stack.log_path(name)
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if '"level": "error"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            exception = (record.get("exception") or "").strip().splitlines()
            what = f"{record.get('logger', '')}: {record.get('message', '')}" + (
                f" ({exception[-1][:120]})" if exception else ""
            )
            counts.setdefault(name, {})
            counts[name][what] = counts[name].get(what, 0) + 1
    return counts


# Lines a replica logs about a job it does not run (it saw the request and left the job to its owner).
NOT_RUNNING = ("alive on another worker", "already ended", "taken by another worker", "submitted again")


def concurrent_runs(p: Platform) -> dict[str, list[str]]:
    """Jobs that two processes worked on at the same time, from their logs: for each job id, each process's first
    and last log line about it (what a worker logs while it runs the job); two processes whose spans overlap ran it
    at once. A job resumed after its worker was killed does not overlap: the dead worker's lines stop at the kill. A
    log file holds every run of its process (a restart appends): each run is told apart by its start time."""
    spans: dict[str, dict[str, list[float]]] = {}
    starts = getattr(p, "spawned", {})
    for name in p.stack.processes():
        path = p.stack.log_path(name)
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if '"job_id"' not in line and '"pipeline_id"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            job = record.get("job_id") or record.get("pipeline_id")
            if not job or any(x in record.get("message", "") for x in NOT_RUNNING):
                continue
            at = _epoch(record.get("time"))
            run = sum(1 for t in starts.get(name, []) if t <= at)
            span = spans.setdefault(job, {}).setdefault(f"{name} (run {run})" if run > 1 else name, [at, at])
            span[0], span[1] = min(span[0], at), max(span[1], at)
    overlaps: dict[str, list[str]] = {}
    for job, by in spans.items():
        names = sorted(by)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                start, end = max(by[a][0], by[b][0]), min(by[a][1], by[b][1])
                if start < end:
                    overlaps.setdefault(job, []).append(f"{a} and {b} for {end - start:.1f} s")
    return overlaps


def final_checks(p: Platform, result: dict) -> None:
    """Over everything the run did (the fault pipeline and the throughput batches): job records, events, registries,
    replication."""
    data = asyncio.run(_read_nats(p.nats.url))
    jobs = check_jobs(data["records"])
    events = check_events(p.nats.url, list(jobs["attempts"]))
    registries = check_registries(p.db_url)
    replication = check_replication(data["streams"])
    result["jobs"], result["registries"], result["replication"] = jobs, registries, replication
    result["logged_errors"] = logged_errors(p)
    if faults := result.get("faults"):  # the fault pipeline's record as it ended, and now
        now = next((r for r in data["records"].get("pipelines", []) if r["id"] == faults["pipeline_id"]), {})
        first = faults["first_end"]
        same = (
            now.get("status") == first["status"] and abs(now.get("updated_at", 0) - _epoch(first["updated_at"])) < 0.01
        )
        result["checks"].append(
            (
                "the fault pipeline's ended record unchanged since",
                same,
                f"ended {first['status']} at {first['updated_at']}"
                + ("; unchanged" if same else f"; now {now.get('status')}, written again at {now.get('updated_at')}"),
            )
        )
    overlaps = concurrent_runs(p)
    result["concurrent_runs"] = overlaps
    resumed = ", ".join(f"{j} {n}" for j, n in sorted(jobs["resumed"].items())) or "none"
    result["checks"] += [
        (
            "every job ended; one job per (correlation id, kind, step label)",
            jobs["ok"],
            f"{jobs['jobs']} jobs ({', '.join(f'{b} {n}' for b, n in jobs['by_bucket'].items())}); not ended: "
            f"{', '.join(jobs['not_ended']) or 'none'}; duplicates: {jobs['duplicates'] or 'none'}"
            + (f"; not succeeded: {'; '.join(jobs['not_succeeded'])}" if jobs["not_succeeded"] else ""),
        ),
        ("attempts reported", True, f"attempts > 1: {resumed}; every other job 1"),
        (
            "no job run by two processes at once (their logs)",
            not overlaps,
            "; ".join(f"{job}: {', '.join(w)}" for job, w in overlaps.items()) or "none",
        ),
        (
            "one terminal job event per job (DYAG_EVENTS)",
            events["ok"],
            events["notes"] or f"{events['jobs']} jobs, 1 each",
        ),
        (
            "no registry row duplicated (PostgreSQL)",
            registries["ok"],
            f"{len(registries['tables'])} tables in {len(registries['schemas'])} schemas; keys compared: "
            + "; ".join(f"{t} {k}" for t, k in registries["keyed"].items())
            + f"; duplicates: {registries['duplicates'] or 'none'}",
        ),
        (
            f"streams and KV buckets R{NATS_REPLICAS}",
            replication["ok"],
            f"{len(replication['streams'])} streams; num_replicas below {NATS_REPLICAS} or fewer than "
            f"{NATS_REPLICAS} peers: "
            + (", ".join(replication["not_r3"]) or "none")
            + ("" if replication["ok"] else " (DYAG_NATS_REPLICAS not applied by the runtime?)"),
        ),
    ]
    for name, verdict, detail in result["checks"]:
        log(f"check {name}: {'pass' if verdict else 'FAIL'} — {detail[:400]}")


def throughput(p: Platform, api: Api, args: argparse.Namespace, result: dict) -> None:
    runs: dict[int, list[dict]] = {1: [], args.replicas: []}
    order = [args.replicas, 1]
    for i in range(args.repeat):
        for n in order if i % 2 == 0 else reversed(order):
            set_replicas(p, n)
            runs[n].append(run_batch(p, api, n, args.batch, f"r{n}_{i + 1}_{uuid.uuid4().hex[:4]}"))
    by_replicas = {}
    for n, rs in runs.items():
        walls = [r["wall_s"] for r in rs]
        by_replicas[n] = {
            "walls": walls,
            "median_wall_s": statistics.median(walls),
            "median_per_min": statistics.median(r["per_min"] for r in rs),
            "all_succeeded": all(s == "succeeded" for r in rs for s in r["statuses"]),
            "loads": [r["load"] for r in rs],
            "consumers": rs[-1]["consumers"],
            "by_service": by_service(rs[-1]),
        }
    ratio = by_replicas[args.replicas]["median_per_min"] / by_replicas[1]["median_per_min"]
    result["throughput"] = {
        "batch": args.batch,
        "repeat": args.repeat,
        "runs": runs,
        "by_replicas": by_replicas,
        "ratio": ratio,
        "limiting": limiting_service(by_replicas),
        "verdict": verdict(by_replicas, ratio, args.replicas),
    }
    log(result["throughput"]["verdict"])


def limiting_service(by_replicas: dict) -> str:
    """With 1 replica: the service whose queue held the batch's work longest, else the one with the most wall time."""
    one = by_replicas[1]["by_service"]
    queued = max(one.items(), key=lambda x: x[1]["queued_s"])
    if queued[1]["queued_s"] > 1.0:
        return queued[0]
    return max(((k, v) for k, v in one.items() if k != GATEWAY), key=lambda x: x[1]["wall_s"])[0]


def verdict(by_replicas: dict, ratio: float, n: int) -> str:
    one = by_replicas[1]["by_service"]
    limiting = limiting_service(by_replicas)
    busiest = max(((k, v) for k, v in one.items() if k != GATEWAY), key=lambda x: x[1]["wall_s"])
    capped = sorted(
        name
        for name, c in by_replicas[n]["consumers"].items()
        if c["max_ack_pending"] is not None
        and 0 < c["max_ack_pending"] < n
        and c["peak_ack_pending"] >= c["max_ack_pending"]
    )
    text = (
        f"Limiting service with 1 replica: **{limiting}** ({one[limiting]['queued_s']:.0f} s of queue summed over "
        f"the batch; the service whose steps took the most wall time: {busiest[0]}, {busiest[1]['wall_s']:.0f} s). "
        f"With {n} replicas the batch ran {ratio:.2f}x as fast. "
    )
    if capped:
        text += (
            f"The work queue let no more work out with {n} replicas than with 1: the consumers {', '.join(capped)} "
            f"reached their max_ack_pending, which is one replica's DYAG_JOB_CONCURRENCY but is the consumer's, "
            "shared by every replica (JobWorker.start), so a second replica (or gateway) waits while the first works. "
        )
    cores = os.cpu_count()
    text += (
        f"On {cores} cores the work is CPU-bound (training, generation, embedding): more replicas can take queued jobs "
        "sooner but share the same cores, so each step runs slower beside another; what they can gain here is the "
        "queue time, not compute."
    )
    return text


if __name__ == "__main__":
    sys.exit(main())
