"""Load: the gateway and the services behind it under many concurrent clients, on a fresh stack.

    .venv/bin/python bench/bench_load.py                         # about 5 minutes
    .venv/bin/python bench/bench_load.py --rag-s 20 --reads-s 15 --auto-s 0 --no-write

Starts its own stack (a new DYAG_HOME, free ports, its own nats-server) with the fakes the integration tests use
(chat servers speaking Ollama's and OpenAI's protocols on loopback), uploads the sample catalog and indexes it for
RAG, then, with one async httpx client (the stack's key, its rate limit raised out of the way):

1. RAG questions: `--rag-concurrency` clients asking `POST /rag/{collection}/query` in mode "grounded" (the answer
   from the records, no model) for `--rag-s` seconds, then mode "auto" for `--auto-s` seconds; the questions are
   varied over the catalog's applications (status, who manages it, domain, sites, contacts...);
2. reads: `--reads-concurrency` clients over the read routes (catalogs, a catalog, its entities, jobs, pipelines,
   evaluations, models) for `--reads-s` seconds;
3. a LoRA training (SmolLM2-135M on the CPU, `--train-steps` steps) while `/healthz` and `/readyz` are asked every
   200 ms: how long the gateway takes to answer while the trainer holds the CPU;
4. the default rate limit: the gateway restarted without DYAG_RATE_LIMIT_PER_MIN, `--reads-concurrency` clients for
   `--limit-s` seconds: how many 429s, each with Retry-After.

Each phase reports requests, throughput, latency percentiles (of the 2xx answers, measured by the client: the time
from sending to the whole body read, the client's own event loop included) and errors by status or exception, and
the CPU of each process of the stack (psutil, the process and its children, sampled every second), of this process
(the client and the fakes) and of the rest of the machine. Writes the "Load" section of bench/RELIABILITY.md (the
other sections are left as they are) and --json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reliability import load, machine, publish  # noqa: E402
from dyag_cli.stack import Stack, StackConfig, free_port, installed_services  # noqa: E402
from tests.fake_llm import FakeOllama, FakeOpenAI  # noqa: E402

SAMPLE = ROOT / "examples" / "test-mygusi" / "applicationsIA_mini_normalized.json"
TERMINAL = ("succeeded", "failed", "cancelled")
CATALOG = "load-sample"
FAKE_MODEL = "ollama:applications-ia"
CLIENT = "bench (client, fakes)"
SAMPLER = "bench's CPU sampler"
OTHERS = "rest of the machine"
# What is asked of each application, as people ask it (grounded answers read the record's field).
QUESTIONS = (
    "Quel est le statut de {n} ?",
    "Qui gère {n} ?",
    "À quel domaine appartient {n} ?",
    "Sur quels sites est déployée l'application {n} ?",
    "Qui contacter pour {n} ?",
    "Quelle est la portée géographique de {n} ?",
    "Quels sont les acteurs de {n} ?",
    "Qu'est-ce que {n} ?",
    "Quelle est la technologie principale de {n} ?",
    "Où est hébergée l'application {n} ?",
)

# Questions that name no application (from bench/bench_rag.py), for mode auto: not always understood, then the model.
UNNAMED = (
    "Où une entreprise de transport routier fait-elle ses démarches administratives en ligne ?",
    "Quelle application calcule les émissions de pollution de l'air par secteur ?",
    "Où suit-on la conformité des stations d'épuration ?",
    "Quel outil suit les contrôles d'accessibilité et de sécurité incendie des bâtiments neufs ?",
    "Où voir la carte des plantes rares et menacées ?",
)


def percentile(values: list[float], p: float) -> float:
    """Nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


# --------------------------------------------------------------------------------------------- CPU of each process
class CpuSampler:
    """Every second, the CPU time of each process of the stack (with its children), of this one and of the machine,
    sampled by a process of its own (`--sample-cpu`: psutil walks /proc, which would hold the client's GIL); a phase's
    figures are the mean over it (CPU seconds / wall seconds) and the highest one-second sample."""

    def __init__(self, home: Path, interval: float = 1.0):
        self.home = home
        self.interval = interval
        self.path = home / "cpu-samples.jsonl"
        self.proc: subprocess.Popen | None = None

    def start(self) -> CpuSampler:
        argv = [sys.executable, __file__, "--sample-cpu", str(self.home), str(os.getpid()), str(self.interval)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    def samples(self) -> list[tuple[float, dict[str, float]]]:
        with contextlib.suppress(FileNotFoundError):
            return [tuple(json.loads(line)) for line in self.path.read_text().splitlines() if line.endswith("]")]
        return []

    async def phase(self, start: float, end: float) -> dict[str, dict[str, float]]:
        """CPU % (100 = one core) by process over [start, end]: mean and highest one-second sample."""
        await asyncio.sleep(self.interval * 1.5)  # the sample after the end
        inside = [s for s in self.samples() if start - self.interval <= s[0] <= end + self.interval]
        if len(inside) < 2:
            return {}
        first, last = inside[0], inside[-1]
        wall = last[0] - first[0]
        names = [n for n in last[1] if n != "machine"]
        result: dict[str, dict[str, float]] = {}
        for name in names:
            mean = 100 * (last[1].get(name, 0.0) - first[1].get(name, 0.0)) / wall
            peak = max(
                100 * (b[1].get(name, 0.0) - a[1].get(name, 0.0)) / (b[0] - a[0])
                for a, b in zip(inside, inside[1:], strict=False)
                if name in a[1] and name in b[1]
            )
            result[name] = {"mean": round(max(mean, 0.0), 1), "max": round(max(peak, 0.0), 1)}
        busy = 100 * (last[1]["machine"] - first[1]["machine"]) / wall
        ours = sum(v["mean"] for v in result.values())
        result["machine (all processes)"] = {"mean": round(busy, 1), "max": float("nan")}
        result[OTHERS] = {"mean": round(max(busy - ours, 0.0), 1), "max": float("nan")}
        return result


def sample_cpu(home: Path, client_pid: int, interval: float) -> None:
    """The sampler's loop: one JSON line a second, [when, {name: cumulative CPU seconds of its process tree}], the
    stack's pids read from stack.json each time (the gateway is restarted in the last phase); ends with the client."""
    out = (home / "cpu-samples.jsonl").open("a")
    procs: dict[int, psutil.Process] = {}

    def proc(pid: int) -> psutil.Process:
        if pid not in procs:
            procs[pid] = psutil.Process(pid)
        return procs[pid]

    tick, state = time.monotonic(), {}
    while psutil.pid_exists(client_pid):
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            state = json.loads((home / "stack.json").read_text())
        pids = {name: info["pid"] for name, info in state.get("processes", {}).items()}
        pids.update({CLIENT: client_pid, SAMPLER: os.getpid()})
        children: dict[int, list[int]] = {}
        for p in psutil.process_iter(["ppid"]):
            children.setdefault(p.info["ppid"], []).append(p.pid)
        now = time.monotonic()
        figures: dict[str, float] = {}
        for name, pid in pids.items():
            # this process's children are the stack's processes and the sampler: counted on their own
            total, todo = 0.0, [pid]
            own = name in (CLIENT, SAMPLER)
            while todo:
                current = todo.pop()
                with contextlib.suppress(psutil.Error):
                    t = proc(current).cpu_times()
                    total += (
                        t.user + t.system + (t.children_user + t.children_system if current == pid and not own else 0.0)
                    )
                todo += [] if own else children.get(current, [])
            figures[name] = total
        machine_times = psutil.cpu_times()
        figures["machine"] = sum(machine_times) - machine_times.idle - getattr(machine_times, "iowait", 0.0)
        out.write(json.dumps([now, figures]) + "\n")
        out.flush()
        tick += interval
        time.sleep(max(0.0, tick - time.monotonic()))


# --------------------------------------------------------------------------------------------- load phases
@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, 2xx answers
    statuses: Counter = field(default_factory=Counter)
    exceptions: Counter = field(default_factory=Counter)
    by_route: Counter = field(default_factory=Counter)
    route_latencies: dict = field(default_factory=dict)  # route -> seconds of its 2xx answers
    modes: Counter = field(default_factory=Counter)  # RAG answers: grounded | generative
    empty_answers: int = 0
    retry_after: Counter = field(default_factory=Counter)  # 429s: the header's value ("missing" when absent)
    started: float = 0.0
    ended: float = 0.0

    def summary(self) -> dict:
        wall = self.ended - self.started
        n = sum(self.statuses.values()) + sum(self.exceptions.values())
        ms = [x * 1000 for x in self.latencies]
        errors = {str(s): c for s, c in sorted(self.statuses.items()) if not 200 <= s < 300}
        errors.update({e: c for e, c in sorted(self.exceptions.items())})
        return {
            "requests": n,
            "seconds": round(wall, 1),
            "throughput": round(n / wall, 1) if wall else 0.0,
            "ok": len(self.latencies),
            "p50_ms": round(percentile(ms, 50), 1),
            "p95_ms": round(percentile(ms, 95), 1),
            "p99_ms": round(percentile(ms, 99), 1),
            "max_ms": round(max(ms), 1) if ms else float("nan"),
            "mean_ms": round(statistics.fmean(ms), 1) if ms else float("nan"),
            "statuses": {str(s): c for s, c in sorted(self.statuses.items())},
            "errors": errors,
            "error_count": sum(errors.values()),
            "by_route": dict(self.by_route),
            "route_ms": {
                route: {"p50": round(percentile(v, 50) * 1000, 1), "p95": round(percentile(v, 95) * 1000, 1)}
                for route, v in sorted(self.route_latencies.items())
            },
            "modes": dict(self.modes),
            "empty_answers": self.empty_answers,
            "retry_after": dict(self.retry_after),
        }


def route_of(request: tuple) -> str:
    method, path = request[0], request[1]
    path = path.split("?")[0].replace(CATALOG, "{name}")
    return f"{method} {path}"


async def hammer(url: str, key: str, requests: list[tuple], concurrency: int, seconds: float, seed: int) -> Tally:
    """`concurrency` workers, each with a client (one connection) of its own, sending one request after another
    (picked at random from `requests`) until `seconds` have passed; the requests under way then are waited for and
    counted. (One client shared by 200 workers spends several times the CPU per request in its connection pool; the
    clients are made before the clock starts, with one TLS context: each of its own costs tens of ms of CPU.)"""
    tally = Tally()
    rng = random.Random(seed)
    clients = [client_for(url, key, 1, 60.0) for _ in range(concurrency)]  # before the clock starts
    deadline = time.monotonic() + seconds

    async def one_by_one(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            method, path, body = rng.choice(requests)
            route = route_of((method, path))
            t0 = time.perf_counter()
            try:
                reply = await client.request(method, path, json=body)
                content = reply.content
            except Exception as e:  # noqa: BLE001 - every failure is a figure
                tally.exceptions[type(e).__name__] += 1
                continue
            elapsed = time.perf_counter() - t0
            tally.statuses[reply.status_code] += 1
            tally.by_route[route] += 1
            if 200 <= reply.status_code < 300:
                tally.latencies.append(elapsed)
                tally.route_latencies.setdefault(route, []).append(elapsed)
                if path.endswith("/query"):
                    answer = json.loads(content)
                    tally.modes[answer.get("mode") or "?"] += 1
                    tally.empty_answers += not (answer.get("answer") or "").strip()
            elif reply.status_code == 429:
                tally.retry_after[reply.headers.get("retry-after", "missing")] += 1

    tally.started = time.monotonic()
    await asyncio.gather(*(one_by_one(client) for client in clients))
    tally.ended = time.monotonic()
    await asyncio.gather(*(client.aclose() for client in clients))
    return tally


def rag_requests(entities: list[dict], mode: str) -> list[tuple]:
    """Every kind of question about every application; in mode auto, what is not understood goes to the fake
    Ollama (the service's default model is a real one, on this CPU)."""
    model = {"model": FAKE_MODEL} if mode != "grounded" else {}
    named = [q.format(n=e["nom"]) for e in entities for q in QUESTIONS]
    free = list(UNNAMED) * (len(named) // 10 // len(UNNAMED)) if mode == "auto" else []  # about 1 in 11
    return [("POST", f"/rag/{CATALOG}/query", {"question": q, "mode": mode, **model}) for q in named + free]


def read_requests() -> list[tuple]:
    return [
        ("GET", "/catalogs", None),
        ("GET", f"/catalogs/{CATALOG}", None),
        ("GET", f"/catalogs/{CATALOG}/entities?limit=50", None),
        ("GET", "/jobs?limit=50", None),
        ("GET", "/pipelines", None),
        ("GET", "/evaluations", None),
        ("GET", "/models", None),
    ]


_TLS = ssl.create_default_context()  # unused (http on loopback), but httpx makes one per client unless given one


def client_for(url: str, key: str, concurrency: int, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        verify=_TLS,
        headers={"X-API-Key": key},
        timeout=timeout,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )


async def run_phase(
    name: str, url: str, key: str, requests: list[tuple], concurrency: int, seconds: float, sampler: CpuSampler
) -> dict:
    print(f"[bench] {name}: {concurrency} clients for {seconds:.0f} s (load {load()})", flush=True)
    tally = await hammer(url, key, requests, concurrency, seconds, seed=len(name))
    result = {"name": name, "concurrency": concurrency, **tally.summary()}
    result["cpu"] = await sampler.phase(tally.started, tally.ended)
    print(f"[bench] {name}: {_line(result)}", flush=True)
    return result


def _line(r: dict) -> str:
    return (
        f"{r['requests']} requests in {r['seconds']} s = {r['throughput']}/s, p50 {r['p50_ms']} ms, "
        f"p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms, errors {r['errors'] or 0}"
    )


# --------------------------------------------------------------------------------------------- probes
async def probe(url: str, seconds: float | None, until: asyncio.Event | None, status: dict) -> dict:
    """GET /healthz then /readyz every 200 ms (a fresh schedule, not back to back) until `seconds` or `until`."""
    results: dict[str, list[tuple[float, int, str]]] = {"/healthz": [], "/readyz": []}
    start = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        tick = start
        while (seconds is None or time.monotonic() - start < seconds) and not (until and until.is_set()):
            for path in results:
                t0 = time.perf_counter()
                try:
                    code = (await client.get(path)).status_code
                except httpx.HTTPError as e:
                    code = type(e).__name__
                results[path].append((time.perf_counter() - t0, code, status.get("status", "")))
            tick += 0.2
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
    return results


def probe_summary(samples: list[tuple[float, int, str]], when: str | None = None) -> dict:
    picked = [(s, c) for s, c, st in samples if when is None or st == when]
    ms = [s * 1000 for s, _ in picked]
    return {
        "probes": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "max_ms": round(max(ms), 1) if ms else float("nan"),
        "over_100ms": sum(x > 100 for x in ms),
        "not_200": dict(Counter(str(c) for _, c in picked if c != 200)),
    }


def train_file(entities: list[dict], n: int = 48) -> str:
    lines = []
    for e in entities[:n]:
        question = f"Quel est le nom long de {e['nom']} ?"
        answer = f"{e['nom']} : {e.get('nom long') or e['nom']}."
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        lines.append(json.dumps({"messages": messages}, ensure_ascii=False))
    return "\n".join(lines) + "\n"


async def training_phase(
    url: str, key: str, entities: list[dict], steps: int, timeout: float, sampler: CpuSampler
) -> dict:
    config = {
        "max_steps": steps,
        "max_seq_len": 128,
        "batch_size": 4,
        "r": 8,
        "lora_alpha": 16,
        "seed": 7,
        "eval_steps": 1000,
        "checkpoint_steps": 1000,
    }
    status: dict = {"status": "queued"}
    done = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=60.0) as http:
        print(f"[bench] training: {steps} steps, probing /healthz and /readyz (load {load()})", flush=True)
        reply = await http.post(
            "/train", json={"train": train_file(entities), "filename": "load.jsonl", "name": "load", "config": config}
        )
        reply.raise_for_status()
        job_id = reply.json()["id"]
        t_submit = time.monotonic()
        spans: dict[str, float] = {}

        async def watch() -> None:
            """Until the job ends or has run `timeout` s; then it is cancelled (on a busy CPU a training of a few
            steps takes minutes: what is measured is the gateway while the trainer holds the CPU)."""
            hard = time.monotonic() + timeout + 120  # the job waiting in the queue
            while True:
                job = (await http.get(f"/jobs/{job_id}")).json()
                status.update(job)
                now = time.monotonic()
                spans.setdefault(job.get("status", "?"), now)
                if job.get("status") in TERMINAL:
                    break
                if now > min(hard, spans.get("running", hard) + timeout):
                    spans["cancel"] = now
                    status["at_cancel"] = (job.get("progress") or {}).get("step", "")
                    await http.post(f"/jobs/{job_id}/cancel")
                    break
                await asyncio.sleep(1.0)
            done.set()

        samples, _ = await asyncio.gather(probe(url, None, done, status), watch())
        ended = time.monotonic()
        if "cancel" in spans:  # how long the cancel takes to land
            for _ in range(120):
                job = (await http.get(f"/jobs/{job_id}")).json()
                if job.get("status") in TERMINAL:
                    status.update(job)
                    spans["cancelled"] = time.monotonic()
                    break
                await asyncio.sleep(0.5)
        logs = (await http.get(f"/jobs/{job_id}/logs", params={"tail": 40})).json().get("lines", [])
    running_from = spans.get("running", t_submit)
    result = {
        "job": job_id,
        "status": status.get("status"),
        "error": status.get("error", ""),
        "steps": steps,
        "at_cancel": status.get("at_cancel", ""),
        "cancel_s": round(spans["cancelled"] - spans["cancel"], 1) if "cancelled" in spans else None,
        "seconds": round(ended - t_submit, 1),
        "running_s": round(ended - running_from, 1),
        "healthz": probe_summary(samples["/healthz"], "running"),
        "readyz": probe_summary(samples["/readyz"], "running"),
        "progress": status.get("progress", {}),
        "result": {k: v for k, v in (status.get("result") or {}).items() if not isinstance(v, dict | list)},
        "log": [f"{line.get('time', '')} {line.get('message', '')}" for line in logs],
        "cpu": await sampler.phase(running_from, ended),
    }
    print(f"[bench] training: {result['status']} in {result['seconds']} s; healthz {result['healthz']}", flush=True)
    return result


# --------------------------------------------------------------------------------------------- the run
def wait_job(http: httpx.Client, job_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        job = http.get(f"/jobs/{job_id}").json()
        if job.get("status") in TERMINAL:
            return job
        time.sleep(0.5)
    raise RuntimeError(f"job {job_id} still {job.get('status')} after {timeout:.0f} s")


def restart_gateway_with_default_limit(stack: Stack) -> None:
    """The gateway again, without DYAG_RATE_LIMIT_PER_MIN: the default limit (600 a minute per key)."""
    stack.kill("gateway", signal.SIGTERM)
    stack.processes()["gateway"]["env"].pop("DYAG_RATE_LIMIT_PER_MIN", None)
    stack.restart("gateway")
    stack.wait_ready(60)


async def phases(args: argparse.Namespace, stack: Stack, key: str, entities: list[dict]) -> dict:
    url = stack.config.gateway_url
    sampler = CpuSampler(stack.config.home).start()
    out: dict = {"phases": []}
    try:
        idle = await probe(url, args.idle_s, None, {})
        out["idle_probes"] = {"healthz": probe_summary(idle["/healthz"]), "readyz": probe_summary(idle["/readyz"])}
        print(f"[bench] idle probes: {out['idle_probes']}", flush=True)
        for i in range(args.repeat):
            suffix = f" #{i + 1}" if args.repeat > 1 else ""
            rag = rag_requests(entities, "grounded")
            out["phases"].append(
                await run_phase("RAG grounded" + suffix, url, key, rag, args.rag_concurrency, args.rag_s, sampler)
            )
            if args.auto_s:
                auto = rag_requests(entities, "auto")
                out["phases"].append(
                    await run_phase("RAG auto" + suffix, url, key, auto, args.rag_concurrency, args.auto_s, sampler)
                )
            out["phases"].append(
                await run_phase(
                    "reads" + suffix, url, key, read_requests(), args.reads_concurrency, args.reads_s, sampler
                )
            )
        if args.train_steps:
            out["training"] = await training_phase(url, key, entities, args.train_steps, args.train_timeout, sampler)
        if args.limit_s:
            print("[bench] restarting the gateway with the default rate limit", flush=True)
            await asyncio.to_thread(restart_gateway_with_default_limit, stack)
            catalogs = [("GET", "/catalogs", None)]
            out["rate_limit"] = await run_phase(
                "GET /catalogs, default rate limit", url, key, catalogs, args.rag_concurrency, args.limit_s, sampler
            )
    finally:
        sampler.stop()
    return out


def run(args: argparse.Namespace) -> dict:
    home = Path(tempfile.mkdtemp(prefix="dyag-bench-load-"))
    catalog = json.loads(SAMPLE.read_text())
    entities = next(iter(catalog.values()))
    os.environ.pop("DYAG_RATE_LIMIT_PER_MIN", None)  # the restarted gateway's limit: the default
    with FakeOllama(models=("applications-ia",)) as ollama, FakeOpenAI(api_key="sk-dyag-bench") as chat:
        config = StackConfig(
            home=home,
            gateway_port=free_port(),
            grpc_ports={n: free_port() for n in installed_services()},
            start_nats_always=True,
            supervise=False,  # the pids stay those the bench started (a supervisor would restart what it stops)
            extra_env={
                "DYAG_RATE_LIMIT_PER_MIN": "100000000",  # one key sends thousands of requests a minute
                "OLLAMA_HOST": ollama.host,
                "OPENAI_BASE_URL": chat.base_url,
                "OPENAI_API_KEY": chat.api_key,
            },
        )
        stack = Stack(config)
        try:
            t0 = time.monotonic()
            stack.up(timeout=300)
            key = (home / "api-key").read_text().strip()
            with httpx.Client(base_url=config.gateway_url, headers={"X-API-Key": key}, timeout=120) as http:
                upload = {"file": (SAMPLE.name, SAMPLE.read_bytes())}
                reply = http.post("/catalogs", files=upload, data={"name": CATALOG})
                reply.raise_for_status()
                t1 = time.monotonic()
                job = http.post(f"/rag/{CATALOG}/index", json={}).json()
                indexed = wait_job(http, job["id"], 600)
                if indexed["status"] != "succeeded":
                    raise RuntimeError(f"indexing {indexed['status']}: {indexed.get('error')}")
                index_s = time.monotonic() - t1
                print(f"[bench] stack up and catalog indexed in {time.monotonic() - t0:.0f} s", flush=True)
            load_before = load()
            result = asyncio.run(phases(args, stack, key, entities))
            load_after = load()
        finally:
            stack.down()
            shutil.rmtree(home, ignore_errors=True)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": load_before,
        "load_after": load_after,
        "entities": len(entities),
        "questions": len(entities) * len(QUESTIONS),
        "index_s": round(index_s, 1),
        **result,
    }


# --------------------------------------------------------------------------------------------- the section
def _ms(x: float) -> str:
    return "–" if x != x else f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def _errors(r: dict) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in r["errors"].items()) or "0"


def _top(cpu: dict, n: int = 3) -> str:
    ranked = sorted(((k, v) for k, v in cpu.items() if k != "machine (all processes)"), key=lambda kv: -kv[1]["mean"])
    return ", ".join(f"{k} {v['mean']:.0f} %" for k, v in ranked[:n])


def markdown(result: dict) -> str:
    lines = [
        "## Load",
        "",
        "`bench/bench_load.py` on a fresh stack (its own DYAG_HOME and nats-server, each service a process, the fake "
        "Ollama and OpenAI chat servers of the tests on loopback), the sample catalog "
        f"({result['entities']} applications) uploaded and indexed for RAG ({result['index_s']} s). One async httpx "
        "client in the bench's process (on the same cores as the stack) sends the requests with the stack's key, "
        "its rate limit raised but in the last phase; latencies are the client's (sent → body read, its own event "
        "loop included), of the 2xx answers; errors are non-2xx answers and exceptions.",
        "",
        f"Run of {result['date']} on {result['machine']}, load average {result['load_before']} before, "
        f'{result["load_after"]} after (1/5/15 min; other test runs share these 2 cores: "rest of the machine" '
        "below is their CPU during each phase).",
        "",
        "| phase | clients | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    every = [*result["phases"], *([result["rate_limit"]] if "rate_limit" in result else [])]
    for r in every:
        lines.append(
            f"| {r['name']} | {r['concurrency']} | {r['requests']:,} in {r['seconds']:.0f} s | {r['throughput']:.1f} "
            f"| {_ms(r['p50_ms'])} | {_ms(r['p95_ms'])} | {_ms(r['p99_ms'])} | {_ms(r['max_ms'])} | {_errors(r)} |"
        )
    lines += [
        "",
        f"RAG questions: {result['questions']} ({len(QUESTIONS)} kinds × each application; in mode auto also "
        f"{len(UNNAMED)} naming none, about 1 in 11, with `model` the fake Ollama's).",
    ]
    for r in result["phases"]:
        if r["modes"]:
            modes = ", ".join(f"{k} {v:,}" for k, v in sorted(r["modes"].items()))
            lines[-1] += f" {r['name']}: answers {modes}, empty {r['empty_answers']}."
    reads = next((r for r in result["phases"] if r["name"].startswith("reads")), None)
    if reads:
        lines[-1] += " Reads by route (requests, p50/p95 ms): " + ", ".join(
            f"`{k}` {v:,} ({_ms(reads['route_ms'][k]['p50'])}/{_ms(reads['route_ms'][k]['p95'])})"
            for k, v in sorted(reads["by_route"].items())
            if k in reads["route_ms"]
        )
        lines[-1] += "."
    if "training" in result:
        t = result["training"]
        idle = result["idle_probes"]
        if t["at_cancel"]:
            how = (
                f'{t["running_s"]} s running, cancelled by the bench at "{t["at_cancel"]}" (on this CPU, shared, a '
                f"training of {t['steps']} steps takes minutes); the job {t['status']} "
                + (f"{t['cancel_s']} s after the cancel" if t["cancel_s"] is not None else "not within 60 s of it")
            )
        else:
            how = f"job {t['status']} {t['seconds']} s after `POST /train`, {t['running_s']} s running"
        lines += [
            "",
            f"Gateway while a LoRA training runs (SmolLM2-135M on the CPU, max_steps {t['steps']}; {how}): `/healthz` "
            "then `/readyz` every 200 ms, counted while the job was running; idle: the same for "
            f"{idle['healthz']['probes'] * 0.2:.0f} s before any load.",
            "",
            "| probe | probes | p50 ms | p95 ms | max ms | over 100 ms | not 200 |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, p in (
            ("/healthz, idle", idle["healthz"]),
            ("/readyz, idle", idle["readyz"]),
            ("/healthz, training", t["healthz"]),
            ("/readyz, training", t["readyz"]),
        ):
            not_200 = ", ".join(f"{k}: {v}" for k, v in p["not_200"].items()) or "0"
            lines.append(
                f"| {label} | {p['probes']} | {_ms(p['p50_ms'])} | {_ms(p['p95_ms'])} | {_ms(p['max_ms'])} "
                f"| {p['over_100ms']} | {not_200} |"
            )
    if "rate_limit" in result:
        r = result["rate_limit"]
        n429 = r["statuses"].get("429", 0)
        missing = r["retry_after"].get("missing", 0)
        values = sorted(int(v) for v in r["retry_after"] if v != "missing")
        span = f"{values[0]}–{values[-1]} s" if values else "–"
        lines += [
            "",
            f"Default rate limit (the gateway restarted without DYAG_RATE_LIMIT_PER_MIN: 600 a minute per key, bursts "
            f"of 600), {r['concurrency']} clients asking `GET /catalogs`: {r['requests']:,} requests in "
            f"{r['seconds']:.0f} s, {r['statuses'].get('200', 0):,} answered 200, {n429:,} answered 429, "
            f"{n429 - missing:,} of them with Retry-After ({span}).",
        ]
    lines += [
        "",
        "CPU by process (% of one core; mean over the phase, highest one-second sample in brackets; each process with "
        "its children):",
        "",
    ]
    cpu_phases = [(r["name"], r["cpu"]) for r in result["phases"]]
    if "training" in result:
        cpu_phases.append(("training", result["training"]["cpu"]))
    if "rate_limit" in result:
        cpu_phases.append((result["rate_limit"]["name"], result["rate_limit"]["cpu"]))
    names = [n for n in next((c for _, c in cpu_phases if c), {})]
    lines += ["| process | " + " | ".join(p for p, _ in cpu_phases) + " |", "|---|" + "---|" * len(cpu_phases)]
    for name in names:
        cells = []
        for _, cpu in cpu_phases:
            v = cpu.get(name)
            cells.append("–" if not v else f"{v['mean']:.0f}" + ("" if v["max"] != v["max"] else f" ({v['max']:.0f})"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "At the top of each phase: " + "; ".join(f"{p}: {_top(c)}" for p, c in cpu_phases if c) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:2] == ["--sample-cpu"]:  # the CPU sampler's own process (CpuSampler.start)
        sample_cpu(Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rag-concurrency", type=int, default=50)
    parser.add_argument("--rag-s", type=float, default=60, help="seconds of grounded RAG questions")
    parser.add_argument("--auto-s", type=float, default=20, help="seconds of RAG questions in mode auto (0: none)")
    parser.add_argument("--reads-concurrency", type=int, default=200)
    parser.add_argument("--reads-s", type=float, default=45)
    parser.add_argument("--repeat", type=int, default=1, help="run the RAG and read phases this many times")
    parser.add_argument("--idle-s", type=float, default=5, help="seconds of /healthz probes before any load")
    parser.add_argument("--train-steps", type=int, default=20, help="LoRA steps of the training phase (0: none)")
    parser.add_argument(
        "--train-timeout", type=float, default=100, help="seconds of the training probed; then it is cancelled"
    )
    parser.add_argument("--limit-s", type=float, default=10, help="seconds under the default rate limit (0: none)")
    parser.add_argument("--json", default=str(ROOT / "bench" / ".cache" / "load.json"), help="the figures as JSON")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave RELIABILITY.md as it is")
    args = parser.parse_args()
    result = run(args)
    publish("Load", result, markdown(result), args.json, write=not args.no_write)


if __name__ == "__main__":
    main()
