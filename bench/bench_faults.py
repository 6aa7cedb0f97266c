"""Faults: kill -9 each process of a real stack in the middle of its work, and see what becomes of the work.

    .venv/bin/python bench/bench_faults.py                      # every case, writes the "Faults" section
    .venv/bin/python bench/bench_faults.py --cases build,rag --no-write

Starts its own supervised stack (a new DYAG_HOME, free ports, its own nats-server, `supervise=True`: the supervisor
starts a killed process again, as `dyag up` does) with short job timings (DYAG_JOB_ACK_WAIT_S 4, heartbeats every
0.5 s, as tests/integration/conftest.py's running_stack) and the fakes the integration tests use (chat servers
speaking Ollama's and OpenAI's protocols, a fine-tuning API, an Ollama registry) on loopback. Each case starts a
piece of work, waits until its job is really running (its progress moved), kills the process doing it with SIGKILL
(NATS: stopped, then started again by the supervisor) and then observes:

- outcome: the job resumed (same job id, attempts > 1) and ended, or ended failed with a readable reason; a pipeline
  completed or named the step that failed;
- events: on the DYAG_EVENTS stream, exactly one terminal job event (job.succeeded / job.failed / job.cancelled) for
  each job, and exactly one domain event (dataset.built, model.trained, rag.indexed…) for the work when it succeeded,
  none when it failed;
- artifacts: every artifact of the job is in the store and its bytes hash to its address; no half-written file
  (`.incoming-*`) left in the store by the killed process;
- recovery: seconds from the kill to the work running again (a new attempt running, the pipeline's record answering
  and moving) or ended.

The disk-full case runs a second, small stack (NATS, dataset-builder, the gateway) whose artifact store is a 4 MiB
tmpfs, when this machine lets us mount one (root in a container may not be allowed to: then the case says so).

Writes the "Faults" section of bench/RELIABILITY.md (the other sections are left as they are) and --json. Every
process the bench started is found by its DYAG_HOME and killed at the end, even on failure.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reliability import load, machine, publish, wait_until  # noqa: E402
from dyag_cli.stack import Stack, StackConfig, _pid_alive, free_port, installed_services  # noqa: E402
from tests.fake_llm import FakeOllama, FakeOpenAI  # noqa: E402
from tests.fakes import openai_server  # noqa: E402
from tests.fakes.ollama_server import FakeOllamaServer  # noqa: E402
from tests.fakes.openai_server import JobScript  # noqa: E402
from tests.integration.conftest import read_events  # noqa: E402

BIG = ROOT / "examples" / "catalogs" / "synthetic-1000.json"
SAMPLE = ROOT / "examples" / "test-mygusi" / "applicationsIA_mini_normalized.json"
TERMINAL = ("succeeded", "failed", "cancelled")
PIPELINE_ENDED = ("succeeded", "failed", "cancelled")
ALL_CASES = ("build", "rag", "evaluate", "hosted", "train", "export", "gateway", "nats", "disk")
BIG_NAME = "faults_1000"
STORE_MIB = 4  # the disk-full case's store: the 1,000-application catalog fits, its 3,000 questions do not
SMALL_NAME = "faults_sample"

SYSTEM = "Tu es un assistant expert en applications du système d'information français."
FACTS = {
    "PILOTE-BOP": "Fonctions support",
    "INSPECTA": "Risques naturels et technologiques",
    "CONTROLE-RT": "Transports",
}
QUESTIONS = (
    "Quel est le domaine de l'application {n} ?",
    "De quel domaine relève {n} ?",
    "Dans quel domaine est l'application {n} ?",
)
TRAINING = {
    "max_seq_len": 256,
    "batch_size": 4,
    "learning_rate": 0.003,
    "r": 8,
    "lora_alpha": 16,
    "target_modules": ["all-linear"],
    "seed": 7,
    "max_steps": 15,
    "eval_steps": 100,
    "checkpoint_steps": 3,
}


def log(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the stack ----------------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, home: Path, config: StackConfig, fine_tuning: openai_server.FakeOpenAI):
        self.home, self.config, self.fine_tuning = home, config, fine_tuning
        self.stack = Stack(config)
        self.http: httpx.Client | None = None

    def up(self) -> None:
        self.stack.up(timeout=300)
        key = (self.home / "api-key").read_text().strip()
        self.http = httpx.Client(base_url=self.config.gateway_url, headers={"X-API-Key": key}, timeout=120)

    @property
    def nats_url(self) -> str:
        self.stack.reload()
        return self.stack.state["nats_url"]

    @property
    def store(self) -> Path:
        return Path(self.config.service_env.get("dataset-builder", {}).get("DYAG_ARTIFACT_STORE", ""))

    def pid(self, name: str) -> int:
        self.stack.reload()
        return self.stack.processes()[name]["pid"]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> tuple[int, float]:
        pid = self.pid(name)
        assert _pid_alive(pid), f"{name} (pid {pid}) is not running"
        os.kill(pid, sig)
        return pid, time.monotonic()

    def restarted(self, name: str, old_pid: int, timeout: float = 60) -> int:
        def new_pid():
            self.stack.reload()
            record = self.stack.processes()[name]
            return record["pid"] if record["pid"] != old_pid and self.stack.alive(name) else None

        return wait_until(new_pid, timeout, f"{name} restarted by the supervisor")

    def get(self, path: str, **kw) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, correlation: str, **kw) -> dict:
        reply = self.http.post(path, headers={"X-Correlation-Id": correlation}, **kw)
        assert reply.status_code in (200, 201, 202), f"POST {path}: {reply.status_code} {reply.text[:500]}"
        return reply.json()

    def job(self, job_id: str) -> dict:
        reply = self.get(f"/jobs/{job_id}")
        return reply.json() if reply.status_code == 200 else {}

    def wait_running(self, job_id: str, moved, timeout: float = 300) -> dict:
        """Until the job runs and `moved(job)` says its progress moved (its real work under way)."""

        def running():
            job = self.job(job_id)
            if job.get("status") in TERMINAL:
                raise RuntimeError(f"job {job_id} ended ({job['status']}: {job['error']}) before it could be killed")
            return job if job.get("status") == "running" and moved(job) else None

        return wait_until(running, timeout, f"job {job_id} running", poll=0.05)

    def follow(self, job_id: str, killed_at: float, timeout: float = 600) -> tuple[dict, float | None, float]:
        """Polls the job after a kill: its end, the seconds to its resumption (a new attempt running), to its end."""
        resumed = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                job = self.job(job_id)
            except httpx.TransportError:
                job = {}
            if "status" not in job:  # the service (or the gateway) is down: its jobs cannot be read yet
                time.sleep(0.2)
                continue
            if resumed is None and (job.get("attempts", 0) >= 2 and job["status"] == "running"):
                resumed = time.monotonic() - killed_at
            if job["status"] in TERMINAL:
                return job, resumed, time.monotonic() - killed_at
            time.sleep(0.2)
        raise TimeoutError(f"job {job_id} still {job['status']} {timeout:.0f} s after the kill (stuck)")


# --- what each case checks ------------------------------------------------------------------------------------------


def incoming(store: Path) -> set[str]:
    """Half-written files of the artifact store (a write goes through `.incoming-*`, then a rename)."""
    return {p.name for p in store.glob(".incoming-*")} if store.is_dir() else set()


def check_artifacts(store: Path, artifacts: list[dict]) -> tuple[bool, str]:
    """Every artifact in the store, its bytes hashing to its address; one digest per name."""
    problems, by_name = [], {}
    for a in artifacts:
        digest = a["digest"]
        path = store / "sha256" / digest[7:9] / digest[9:]
        if not path.is_file():
            problems.append(f"{a['name']} missing ({digest[:19]}…)")
            continue
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if "sha256:" + h.hexdigest() != digest:
            problems.append(f"{a['name']}: bytes do not hash to {digest[:19]}…")
        by_name.setdefault(a["name"], set()).add(digest)
    problems += [f"{name}: {len(d)} versions" for name, d in by_name.items() if len(d) > 1]
    return not problems, "; ".join(problems) or f"{len(artifacts)} readable"


def count_events(b: Bench, job_ids: list[str], domain: str | None, correlation: str) -> tuple[bool, str, dict]:
    """Terminal job events per job (exactly one each), and the domain events of this work (one if it succeeded)."""
    time.sleep(1.5)  # an event follows its record by milliseconds
    terminal: dict[str, list[str]] = {j: [] for j in job_ids}
    for status in TERMINAL:
        for e in read_events(b.nats_url, f"dyag.events.job.{status}", expect=0, timeout=2):
            if e["headers"].get("ce-subject") in terminal:
                terminal[e["headers"]["ce-subject"]].append(status)
    ok, notes = True, []
    for job_id, seen in terminal.items():
        if len(seen) != 1:
            ok = False
            notes.append(f"{job_id}: {len(seen)} terminal events {seen}")
    found = {"terminal": {k: v for k, v in terminal.items()}}
    if domain:
        mine = [
            e
            for e in read_events(b.nats_url, f"dyag.events.{domain}", expect=0, timeout=2)
            if e["headers"].get("ce-correlationid") == correlation
        ]
        found[domain] = len(mine)
        found["domain_ids"] = [e["headers"].get("ce-id") for e in mine]
        found["expect_domain"] = None
    return ok, "; ".join(notes), found


def job_case(
    b: Bench,
    *,
    case: str,
    killed: str,
    start,
    moved,
    domain: str,
    expect_domain_on_success: int = 1,
    timeout: float = 600,
) -> dict:
    """Start the work, wait for its progress to move, kill -9 its service, follow the job to its end, check."""
    correlation = f"faults-{case}-{uuid.uuid4().hex[:8]}"
    before = incoming(b.store)
    job = start(correlation)
    job_id = job["id"]
    log(f"{case}: job {job_id} started; waiting for its progress to move")
    running = b.wait_running(job_id, moved, timeout=timeout)
    at = running["progress"]
    log(f"{case}: killing {killed} at {at.get('fraction', 0):.2f} ({at.get('step', '')})")
    pid, killed_at = b.kill(killed)
    new_pid = b.restarted(killed, pid)
    done, resumed_s, ended_s = b.follow(job_id, killed_at, timeout=timeout)
    log(f"{case}: {done['status']} after {ended_s:.1f} s, attempts {done['attempts']} {done['error'][:200]}")
    events_ok, notes, found = count_events(b, [job_id], domain, correlation)
    want = expect_domain_on_success if done["status"] == "succeeded" else 0
    if found.get(domain) != want:
        events_ok = False
        notes = "; ".join(filter(None, [notes, f"{found.get(domain)} {domain} events (expected {want})"]))
    artifacts_ok, artifact_notes = check_artifacts(b.store, done.get("artifacts", []))
    left = incoming(b.store) - before
    if left:
        artifacts_ok = False
        artifact_notes += f"; {len(left)} half-written file(s) left in the store"
    return {
        "case": case,
        "killed": f"{killed} (kill -9 at {at.get('fraction', 0) * 100:.0f} %, {at.get('step', '')[:60]})",
        "job_id": job_id,
        "status": done["status"],
        "error": done["error"],
        "attempts": done["attempts"],
        "resumed": done["status"] == "succeeded" and done["attempts"] > 1,
        "events_ok": events_ok,
        "events": found,
        "event_notes": notes,
        "artifacts_ok": artifacts_ok,
        "artifact_notes": artifact_notes,
        "recovery_s": resumed_s if resumed_s is not None else ended_s,
        "recovery_what": "to its new attempt running" if resumed_s is not None else "to its end",
        "ended_s": ended_s,
        "pid": [pid, new_pid],
        "result": done.get("result", {}),
    }


# --- the cases ------------------------------------------------------------------------------------------------------


def upload(b: Bench, name: str, path: Path) -> None:
    reply = b.http.post("/catalogs", files={"file": (path.name, path.read_bytes())}, data={"name": name})
    assert reply.status_code in (200, 201), reply.text


def case_build(b: Bench, state: dict) -> dict:
    upload(b, BIG_NAME, BIG)
    row = job_case(
        b,
        case="build",
        killed="dataset-builder",
        start=lambda c: b.post("/datasets", c, json={"catalog": BIG_NAME, "num_questions": 3000}),
        moved=lambda j: j["progress"].get("fraction", 0) >= 0.05,
        domain="dataset.built",
    )
    state["dataset_id"] = row["result"].get("dataset_id", "")
    return row


def case_rag(b: Bench, state: dict) -> dict:
    if "dataset_id" not in state:
        upload(b, BIG_NAME, BIG)
    return job_case(
        b,
        case="rag",
        killed="rag-service",
        start=lambda c: b.post(f"/rag/{BIG_NAME}/index", c, json={}),
        moved=lambda j: j["progress"].get("fraction", 0) >= 0.1,
        domain="rag.indexed",
    )


def case_evaluate(b: Bench, state: dict) -> dict:
    body = {
        "target": f"rag:{BIG_NAME}",
        "llm": "ollama:applications-ia",
        "rag_mode": "generative",
        "max_questions": 50,
        "concurrency": 1,
        "name": "faults",
    }
    if state.get("dataset_id"):
        body["dataset_id"] = state["dataset_id"]
    else:
        raise RuntimeError("no dataset from the build case to take its test questions from")
    return job_case(
        b,
        case="evaluate",
        killed="evaluator",
        start=lambda c: b.post("/evaluations", c, json=body),
        moved=lambda j: j["progress"].get("fraction", 0) >= 0.1,
        domain="evaluation.completed",
    )


def case_hosted(b: Bench, state: dict) -> dict:
    fake = b.fine_tuning
    suffix = "faults"
    fake.script(suffix, JobScript(steps=6, hold_at_step=2))
    lines = []
    for i in range(30):
        lines.append(
            training_line(f"Quel est le statut de APP-F-{i} ?", f"APP-F-{i} est en production depuis {2000 + i}.")
        )
    train = "".join(lines)
    validation = "".join(
        training_line(f"Que fait APP-F-{i} ?", f"APP-F-{i} gère le domaine {i % 5}.") for i in range(5)
    )
    uploads_before = len(fake.calls("POST /v1/files", status=200))
    body = {
        "train": train,
        "validation": validation,
        "name": "faults.jsonl",
        "base_model": "gpt-4o-mini-2024-07-18",
        "suffix": suffix,
    }

    def moved(job: dict) -> bool:
        at_step = any(fake.job_step(j["id"]) >= 2 for j in fake.jobs_with_suffix(suffix))
        if at_step and job["progress"].get("metrics", {}).get("remote_step") == 2:
            fake.release(suffix)  # the remote job goes on while the trainer is down
            return True
        return False

    row = job_case(
        b,
        case="hosted",
        killed="openai-trainer",
        start=lambda c: b.post("/hosted/jobs", c, json=body),
        moved=moved,
        domain="model.registered",
    )
    creates = [c for c in fake.calls("POST /v1/fine_tuning/jobs") if c["info"].get("suffix") == suffix]
    uploads = len(fake.calls("POST /v1/files", status=200)) - uploads_before
    row["remote"] = {"jobs_created": len(creates), "files_uploaded": uploads}
    if len(creates) != 1 or uploads != 2:
        row["events_ok"] = False
        row["event_notes"] += f"; remote: {len(creates)} jobs created, {uploads} files uploaded (expected 1 and 2)"
    return row


def training_line(question: str, answer: str) -> str:
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]
    return json.dumps({"messages": messages}, ensure_ascii=False) + "\n"


def case_train(b: Bench, state: dict) -> dict:
    def answer(name: str) -> str:
        return f"L'application {name} relève du domaine « {FACTS[name]} »."

    train = "".join(training_line(q.format(n=n), answer(n)) for n in FACTS for q in QUESTIONS)
    validation = "".join(training_line(f"Peux-tu me dire le domaine de {n} ?", answer(n)) for n in FACTS)
    body = {"train": train, "validation": validation, "filename": "facts.jsonl", "name": "faults", "config": TRAINING}

    def moved(job: dict) -> bool:  # past its first checkpoint: a resumption has something to resume from
        return job["progress"].get("metrics", {}).get("step", 0) >= 4 or job["progress"].get("fraction", 0) >= 0.3

    row = job_case(
        b,
        case="train",
        killed="gpu-lora-trainer",
        start=lambda c: b.post("/train", c, json=body),
        moved=moved,
        domain="model.trained",
        timeout=900,
    )
    state["model_id"] = row["result"].get("model_id", "")
    if state["model_id"]:
        model = b.get(f"/models/{state['model_id']}").json()
        ok, notes = check_artifacts(b.store, model.get("artifacts", []))
        row["artifacts_ok"] = row["artifacts_ok"] and ok
        if not ok:
            row["artifact_notes"] += f"; the model's: {notes}"
    return row


def case_export(b: Bench, state: dict) -> dict:
    if not state.get("model_id"):
        raise RuntimeError("no model from the training case to export")
    body = {"model_id": state["model_id"], "quantizations": ["q8_0"]}
    row = job_case(
        b,
        case="export",
        killed="model-exporter",
        start=lambda c: b.post("/exports", c, json=body),
        moved=lambda j: j["progress"].get("fraction", 0) >= 0.1,
        domain="export.completed",
        timeout=900,
    )
    export_id = row["result"].get("export_id") or row["result"].get("id", "")
    if export_id:
        export = b.get(f"/exports/{export_id}").json()
        artifacts = [f["artifact"] for f in export.get("files", []) if f.get("artifact")]
        ok, notes = check_artifacts(b.store, artifacts)
        row["artifacts_ok"] = row["artifacts_ok"] and ok
        row["artifact_notes"] += f"; export files: {notes}"
    return row


PIPELINE = {
    "num_questions": 60,
    "skip": ["train"],
    "targets": ["grounded", "rag"],
    "max_eval_questions": 5,
    "eval_max_tokens": 24,
    "skip_similarity": True,
    "rag_llm": "ollama:applications-ia",
}


def pipeline_case(b: Bench, *, case: str, killed: str, sig: int, when: tuple[str, ...]) -> dict:
    """A tiny pipeline; `killed` goes down while the first of the steps `when` runs (a step with a job); the
    supervisor starts it again."""
    correlation = f"faults-{case}-{uuid.uuid4().hex[:8]}"
    body = {
        "catalog": f"{SMALL_NAME}_{case}",
        "catalog_base64": base64.b64encode(SAMPLE.read_bytes()).decode(),
        "catalog_filename": SAMPLE.name,
        **PIPELINE,
    }
    before = incoming(b.store)
    pipeline = b.post("/pipelines", correlation, json=body)
    pid_ = pipeline["id"]
    log(f"{case}: pipeline {pid_}; waiting for step {when} to run")

    def view() -> dict | None:
        reply = b.get(f"/pipelines/{pid_}")
        return reply.json() if reply.status_code == 200 else None

    def step_running():
        p = view()
        if p is None:
            return None
        if p["status"] in PIPELINE_ENDED:
            raise RuntimeError(f"pipeline {pid_} ended ({p['status']}) before a step of {when} ran")
        s = next((s for s in p["steps"] if s["name"] in when and s["status"] == "running" and s["job_id"]), None)
        return (p, s["name"]) if s else None

    running, step = wait_until(step_running, 300, f"a step of {when} running", poll=0.05)
    log(f"{case}: {'killing' if sig == signal.SIGKILL else 'stopping'} {killed} during {step}")
    pid, killed_at = b.kill(killed, sig)
    new_pid = b.restarted(killed, pid)
    recovered = None

    def moving():
        nonlocal recovered
        p = view()
        if p is None:
            return None
        if recovered is None and (p["status"] in PIPELINE_ENDED or p.get("attempts", 0) >= 2 or killed == "nats"):
            recovered = time.monotonic() - killed_at
        return p if p["status"] in PIPELINE_ENDED else None

    final = wait_until(moving, 600, f"pipeline {pid_} ended (stuck?)", poll=0.3)
    ended_s = time.monotonic() - killed_at
    steps = {s["name"]: s for s in final["steps"]}
    log(f"{case}: pipeline {final['status']} after {ended_s:.1f} s, attempts {final.get('attempts')} {final['error']}")
    job_ids = [s["job_id"] for s in final["steps"] if s.get("job_id")]
    events_ok, notes, found = count_events(b, job_ids, None, correlation)
    step_jobs, artifacts_ok, notes_by_step = {}, True, []
    for name, s in steps.items():
        if s.get("job_id"):
            job = b.job(s["job_id"])
            step_jobs[name] = {"id": job["id"], "status": job["status"], "attempts": job["attempts"]}
            ok, step_notes = check_artifacts(b.store, job.get("artifacts", []))  # each job's own artifacts
            artifacts_ok = artifacts_ok and ok
            notes_by_step.append(f"{name}: {step_notes}")
    artifact_notes = "; ".join(notes_by_step)
    left = incoming(b.store) - before
    if left:
        artifacts_ok = False
        artifact_notes += f"; {len(left)} half-written file(s) left in the store"
    jobs_by_step_kind = [j for j in step_jobs.values()]
    attempts = max([j["attempts"] for j in jobs_by_step_kind] or [0])
    return {
        "case": case,
        "killed": f"{killed} ({'kill -9' if sig == signal.SIGKILL else 'SIGTERM, then started again'} during "
        f"step {step}, job {running_job(running, step)})",
        "job_id": pid_,
        "step": step,
        "status": final["status"],
        "error": final["error"],
        "failed_step": final.get("failed_step", ""),
        "attempts": final.get("attempts", 0),
        "max_job_attempts": attempts,
        "steps": {n: s["status"] for n, s in steps.items()},
        "step_jobs": step_jobs,
        "resumed": final.get("attempts", 0) > 1,
        "events_ok": events_ok,
        "events": found,
        "event_notes": notes,
        "artifacts_ok": artifacts_ok,
        "artifact_notes": artifact_notes,
        "recovery_s": recovered if recovered is not None else ended_s,
        "recovery_what": "to the pipeline's record answering again, resumed" if killed == "gateway" else "to NATS back",
        "ended_s": ended_s,
        "pid": [pid, new_pid],
    }


def running_job(p: dict, when: str) -> str:
    return next((s["job_id"] for s in p["steps"] if s["name"] == when), "")


JOB_STEPS = ("build", "validate", "index", "evaluate_grounded", "evaluate_rag")


def case_gateway(b: Bench, state: dict) -> dict:
    return pipeline_case(b, case="gateway", killed="gateway", sig=signal.SIGKILL, when=JOB_STEPS)


def case_nats(b: Bench, state: dict) -> dict:
    row = pipeline_case(b, case="nats", killed="nats", sig=signal.SIGTERM, when=JOB_STEPS)
    # Recovery for NATS: the seconds until the supervisor's new nats-server listened (the pipeline then went on).
    return row


# --- disk full: a second stack whose artifact store is a tiny tmpfs ---------------------------------------------------


def case_disk(b: Bench, state: dict, fakes_env: dict[str, str]) -> dict:
    home = Path(tempfile.mkdtemp(prefix="dyag-bench-faults-disk-"))
    tiny = home / "tiny-store"
    tiny.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={STORE_MIB}m", "tmpfs", str(tiny)],
        capture_output=True,
        text=True,
        check=False,
    )
    row = {"case": "disk", "killed": f"nothing: the artifact store is a {STORE_MIB} MiB tmpfs", "job_id": ""}
    if mount.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        reason = (mount.stderr or mount.stdout).strip()
        return {**row, "status": "not run", "error": f"mount -t tmpfs is not permitted here: {reason}", "skipped": True}
    config = StackConfig(
        home=home,
        gateway_port=free_port(),
        grpc_ports={"dataset-builder": free_port()},
        services=["dataset-builder"],
        start_nats_always=True,
        extra_env={**fakes_env},
        service_env={"dataset-builder": {"DYAG_ARTIFACT_STORE": str(tiny)}},
    )
    small = Bench(home, config, b.fine_tuning)
    try:
        small.up()
        correlation = f"faults-disk-{uuid.uuid4().hex[:8]}"
        reply = small.http.post("/catalogs", files={"file": (BIG.name, BIG.read_bytes())}, data={"name": BIG_NAME})
        catalog_note = f"catalog upload: {reply.status_code}"
        if reply.status_code not in (200, 201):
            raise RuntimeError(f"the catalog does not fit the store: {reply.text[:300]}")
        used = shutil.disk_usage(tiny)
        log(f"disk: {catalog_note}; the store holds {used.used / 2**20:.2f} of {used.total / 2**20:.2f} MiB")
        started = time.monotonic()
        job = small.post(
            "/datasets",
            correlation,
            json={"catalog": BIG_NAME, "num_questions": 3000, "formats": ["openai", "alpaca", "sharegpt"]},
        )
        done = wait_until(lambda: (j := small.job(job["id"])).get("status") in TERMINAL and j, 600, "the build's end")
        ended_s = time.monotonic() - started
        log(f"disk: {done['status']} after {ended_s:.1f} s: {done['error'][:300]}")
        events_ok, notes, found = count_events(small, [job["id"]], "dataset.built", correlation)
        want = 1 if done["status"] == "succeeded" else 0
        if found["dataset.built"] != want:
            events_ok = False
            notes += f"; {found['dataset.built']} dataset.built events (expected {want})"
        artifacts_ok, artifact_notes = check_artifacts(tiny, done.get("artifacts", []))
        half = incoming(tiny)
        listed = small.get("/datasets").json()
        datasets = listed.get("datasets", listed if isinstance(listed, list) else [])
        served = [d for d in datasets if d.get("catalog") == BIG_NAME]
        served_notes = []
        for d in served:  # a dataset served must be whole: every file there, readable, its digest right
            ds = small.get(f"/datasets/{d['id']}").json()
            for f in ds.get("files", []):
                name = f.get("path") or f.get("name")
                split, fmt = (name.split("/", 1) + [""])[:2] if "/" in str(name) else (None, None)
                if split:
                    r = small.get(f"/datasets/{d['id']}/files/{split}/{fmt}")
                    if r.status_code != 200:
                        served_notes.append(f"{name}: {r.status_code}")
        if half:
            artifacts_ok = False
            artifact_notes += f"; {len(half)} half-written file(s) left in the store"
        if served_notes:
            artifacts_ok = False
            artifact_notes += "; served but unreadable: " + ", ".join(served_notes)
        disk_named = bool(re.search(r"no space|disk|ENOSPC|full", done["error"], re.I))
        return {
            **row,
            "job_id": job["id"],
            "status": done["status"],
            "error": done["error"],
            "attempts": done["attempts"],
            "disk_named": disk_named,
            "catalog": catalog_note,
            "datasets_served": len(served),
            "events_ok": events_ok,
            "events": found,
            "event_notes": notes,
            "artifacts_ok": artifacts_ok,
            "artifact_notes": artifact_notes,
            "recovery_s": None,
            "ended_s": ended_s,
        }
    finally:
        if small.http:
            small.http.close()
        with contextlib.suppress(Exception):
            small.stack.down()
        kill_leftovers(home)
        subprocess.run(["umount", "-l", str(tiny)], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


# --- cleanup ------------------------------------------------------------------------------------------------------


def kill_leftovers(home: Path) -> list[int]:
    """Every process whose command line or environment names this bench's DYAG_HOME, killed (not this one)."""
    needle, killed = str(home).encode(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            seen = needle in (entry / "cmdline").read_bytes() or needle in (entry / "environ").read_bytes()
        except OSError:
            continue
        if seen:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    return killed


# --- the run ------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    home = Path(tempfile.mkdtemp(prefix="dyag-bench-faults-"))
    results: list[dict] = []
    load_before = load()
    started = time.monotonic()
    previous_key = os.environ.get("DYAG_OPENAI_API_KEY")
    with FakeOllama(models=("applications-ia",)) as ollama, FakeOpenAI(api_key="sk-dyag-bench") as chat:
        fine_tuning = openai_server.FakeOpenAI(api_key="sk-dyag-bench-ft-" + uuid.uuid4().hex).start()
        registry = FakeOllamaServer().start()
        os.environ["DYAG_OPENAI_API_KEY"] = fine_tuning.api_key  # the environment, as a real key would go
        fakes_env = {
            "DYAG_JOB_ACK_WAIT_S": "4",
            "DYAG_JOB_HEARTBEAT_S": "0.5",
            "DYAG_MAX_UPLOAD_BYTES": "2000000",
            "DYAG_MAX_CATALOG_BYTES": "2000000",
            "DYAG_RATE_LIMIT_PER_MIN": "1000000",
            "OLLAMA_HOST": ollama.host,
            "OPENAI_BASE_URL": chat.base_url,
            "OPENAI_API_KEY": chat.api_key,
            "DYAG_RAG_EMBEDDING_CACHE": str(home / "embeddings.sqlite"),
            **fine_tuning.service_env(),
            "DYAG_EXPORTER_OLLAMA_HOST": registry.host,
        }
        config = StackConfig(
            home=home,
            gateway_port=free_port(),
            grpc_ports={n: free_port() for n in installed_services()},
            start_nats_always=True,
            supervise=True,
            extra_env=fakes_env,
            service_env={n: {"DYAG_ARTIFACT_STORE": str(home / "artifacts")} for n in installed_services()},
        )
        b = Bench(home, config, fine_tuning)
        state: dict = {}
        try:
            log(f"starting the stack in {home}")
            b.up()
            log(f"stack up in {time.monotonic() - started:.0f} s (load {load()})")
            cases = {
                "build": case_build,
                "rag": case_rag,
                "evaluate": case_evaluate,
                "hosted": case_hosted,
                "train": case_train,
                "export": case_export,
                "gateway": case_gateway,
                "nats": case_nats,
                "disk": lambda b_, s: case_disk(b_, s, fakes_env),
            }
            for name in args.cases:
                t0 = time.monotonic()
                log(f"--- case {name}")
                try:
                    row = cases[name](b, state)
                except Exception as exc:  # the case's own failure is a result, said in the table
                    traceback.print_exc()
                    row = {"case": name, "status": "bench error", "error": f"{type(exc).__name__}: {exc}"}
                row["case_s"] = round(time.monotonic() - t0, 1)
                results.append(row)
                log(f"case {name}: {row.get('status')} in {row['case_s']} s")
                with contextlib.suppress(Exception):
                    b.stack.wait_ready(120)
            b.stack.reload()
            restarts = {n: p.get("restarts", 0) for n, p in b.stack.processes().items()}
        finally:
            if b.http:
                b.http.close()
            with contextlib.suppress(Exception):
                b.stack.down()
            left = kill_leftovers(home)
            if left:
                log(f"killed {len(left)} leftover process(es): {left}")
            fine_tuning.stop()
            registry.stop()
            if previous_key is None:
                os.environ.pop("DYAG_OPENAI_API_KEY", None)
            else:
                os.environ["DYAG_OPENAI_API_KEY"] = previous_key
            if not args.keep:
                shutil.rmtree(home, ignore_errors=True)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": load_before,
        "load_after": load(),
        "seconds": round(time.monotonic() - started, 1),
        "restarts": restarts,
        "cases": results,
    }


# --- the section --------------------------------------------------------------------------------------------------

KILLED = {
    "build": "dataset-builder mid `dataset.build` (1,000 apps, 3,000 questions)",
    "rag": "rag-service mid index (1,000 apps)",
    "evaluate": "evaluator mid evaluation (RAG target, 50 questions)",
    "hosted": "openai-trainer mid hosted job (fake OpenAI, remote job held at step 2)",
    "train": "gpu-lora-trainer mid training (SmolLM2 on CPU, 15 steps)",
    "export": "model-exporter mid export (merge, GGUF q8_0, parity)",
    "gateway": "gateway mid-pipeline (kill -9 during step {step})",
    "nats": "nats-server mid-pipeline (SIGTERM during step {step}; the supervisor starts it again)",
    "disk": f"nothing: the artifact store is a {STORE_MIB} MiB tmpfs, the catalog (1 MB) fits, the build writes more",
}


def outcome(r: dict) -> str:
    status = r.get("status", "?")
    if r.get("skipped"):
        return f"not run: {r['error']}"
    if status == "bench error":
        return f"**bench error**: {r['error'][:200]}"
    if r["case"] in ("gateway", "nats"):
        if status == "succeeded":
            text = f"pipeline succeeded (pipeline attempts {r['attempts']}), ended {r['ended_s']:.0f} s after"
        else:
            text = f"pipeline {status}, failed step `{r.get('failed_step')}`: {r['error'][:200]}"
        return text
    if r["case"] == "disk":
        named = "names the disk" if r.get("disk_named") else "**does not name the disk**"
        return (
            f"job {status} ({named}): {r['error'][:160]}; datasets served: {r.get('datasets_served')}; "
            f"{r.get('catalog', '')}"
        )
    if status == "succeeded":
        return f"resumed, same job id, succeeded {r['ended_s']:.0f} s after the kill" if r["attempts"] > 1 else status
    return f"{status}: {r['error'][:200]}"


def markdown(result: dict) -> str:
    rows = []
    for r in result["cases"]:
        events = "—" if r.get("events_ok") is None else ("yes" if r["events_ok"] else f"**no**: {r['event_notes']}")
        artifacts = (
            "—" if r.get("artifacts_ok") is None else ("yes" if r["artifacts_ok"] else f"**no**: {r['artifact_notes']}")
        )
        attempts = r.get("attempts", "—")
        if r["case"] in ("gateway", "nats") and "max_job_attempts" in r:
            attempts = f"{r['attempts']} (steps' jobs: at most {r['max_job_attempts']})"
        killed = KILLED.get(r["case"], r["case"]).replace("{step}", r.get("step", "?"))
        recovery = "—" if r.get("recovery_s") is None else f"{r['recovery_s']:.1f}"
        rows.append(f"| {r['case']} | {killed} | {outcome(r)} | {attempts} | {events} | {artifacts} | {recovery} |")
    lines = [
        "## Faults",
        "",
        "`bench/bench_faults.py` starts a supervised stack of its own (its own DYAG_HOME and nats-server, "
        "`supervise=True`, DYAG_JOB_ACK_WAIT_S 4, heartbeats 0.5 s, the integration tests' fakes for OpenAI and "
        "Ollama), starts each piece of work, waits until its job's progress has moved, then kills the process doing "
        "it with `kill -9` (NATS: SIGTERM) and lets the supervisor start it again. Events: exactly one terminal job "
        "event per job on DYAG_EVENTS, and one domain event (dataset.built, rag.indexed, evaluation.completed, "
        "model.registered, model.trained, export.completed) for work that succeeded, none for work that failed. "
        "Artifacts: each of the job's artifacts in the store, its bytes hashing to its address, one digest per name, "
        "no half-written `.incoming-*` file left. Recovery: seconds from the kill to the job running again on a new "
        "attempt (pipelines: to the restarted gateway's record of it resumed; NATS: to the pipeline's record "
        "answering again).",
        "",
        f"Run of {result['date']} on {result['machine']}, load {result['load_before']} before, "
        f"{result['load_after']} after; {result['seconds']:.0f} s in all.",
        "",
        "| case | what was killed | outcome | attempts | events ok | artifacts ok | recovery s |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Found by the disk-full case and fixed at its cause: the local artifact store writes through an `.incoming-*` "
        "temp file and a rename, but left the temp file behind when the write failed, so a full disk kept the "
        "half-written bytes (in a first try on a 2 MiB store, a 1 MB catalog upload failed with ENOSPC and a 98 KB "
        "one failed after it). `LocalArtifactStore` now removes the temp file on any failure and raises "
        "`ArtifactStoreFull` (an OSError, ENOSPC) naming the store (`tests/unit/test_artifacts.py`). A process killed "
        "with -9 in the middle of a write can still leave an `.incoming-*` file, since nothing of it runs to remove "
        "it; the runs in the table left none. A request that meets the full store (a catalog upload) was answered "
        "`unknown` with Python's exception text; the services now turn `ArtifactStoreFull` into the domain error "
        "`storage_full`, which the gateway answers 507 Insufficient Storage naming the store "
        "(`dyag_runtime.server.domain_error`, the same unit test file).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(ALL_CASES), help=f"a subset of {','.join(ALL_CASES)}")
    parser.add_argument("--json", default=str(ROOT / "bench" / ".cache" / "faults.json"), help="the results as JSON")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave RELIABILITY.md as it is")
    parser.add_argument("--keep", action="store_true", help="keep the stack's DYAG_HOME (logs) after the run")
    args = parser.parse_args()
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(args.cases) - set(ALL_CASES)
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    result = run(args)
    publish("Faults", result, markdown(result), args.json, write=not args.no_write)
    bad = [r for r in result["cases"] if not r.get("skipped") and (r.get("status") == "bench error")]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
