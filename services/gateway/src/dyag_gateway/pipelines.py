"""The whole workflow as one pipeline (the guide's steps 1 to 7): parameters, steps, and the state machine.

Pure: no I/O. `pipeline_runner` drives it against the services; the routes show it. A pipeline is a job of the
gateway (kind "pipeline.run") whose record lives in the JetStream KV bucket "pipelines" (dyag_runtime's JobStore
and JobWorker), with one more key, "steps": each step is a job of the service that owns it (or one RPC), linked to
the pipeline by its correlation id.

    1 ingest        dataset-builder  IngestCatalog (an RPC, done when the pipeline is created)
    2 build         dataset-builder  dataset.build job
    3 validate      validator        Validate (an RPC)
    4 train         gpu-lora-trainer train.lora job (LoRA on the base model)
    5 index         rag-service      rag.index job (beside 2-4: it needs only the catalog)
    6 evaluate_*    evaluator        evaluation.run jobs, one per target (base, fine_tuned, rag)
    7 report        evaluator        Compare (an RPC): the guide's 6.2 table, the 7.2 decision table, reports

A step starts when every step it depends on has succeeded (or was skipped), and at most `max_parallel` heavy steps
(training, indexing, evaluations) run at once. After a failure nothing new starts; what runs ends, and the pipeline
ends failed, naming the step and its job's error; what was done stays in the record.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

PIPELINE_SERVICE = "pipeline"  # pipeline ids are "pipeline-<16 hex>"; their work queue is dyag.jobs.pipeline
PIPELINE_KIND = "pipeline.run"
PIPELINE_BUCKET = "pipelines"

# Step statuses. "blocked": a step it depends on failed or was cancelled, so it never ran.
PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, CANCELLED, BLOCKED = (
    "pending", "running", "succeeded", "failed", "skipped", "cancelled", "blocked")
INTERRUPTED = "interrupted"  # only in views: a step still running in the record of a pipeline that ended
STEP_DONE = (SUCCEEDED, SKIPPED)
STEP_ENDED = (SUCCEEDED, SKIPPED, FAILED, CANCELLED, BLOCKED)

INGEST, BUILD, VALIDATE, TRAIN, INDEX, REPORT = "ingest", "build", "validate", "train", "index", "report"
TARGETS = ("base", "fine_tuned", "rag")  # the default targets; "grounded" (RAG's records alone, milliseconds) on demand
TARGET_LABELS = {"base": "base model", "fine_tuned": "fine-tuned (LoRA)", "rag": "RAG", "grounded": "grounded answers"}
RAG_TARGETS = frozenset({"rag", "grounded"})  # the targets that need the RAG collection
SKIPPABLE = ("validate", "train", "index", "evaluate", "report")


def eval_step(target: str) -> str:
    return f"evaluate_{target}"


@dataclass(frozen=True, slots=True)
class StepSpec:
    name: str
    number: int  # the guide's step
    title: str
    service: str
    kind: str  # the job kind; "" for a step that is one RPC
    depends_on: tuple[str, ...]
    heavy: bool  # counts against max_parallel (CPU- or GPU-bound)
    weight: float  # share of a typical run's time, for the overall fraction
    # Steps that must be under way first (ended, skipped, or running past STARTED_FRACTION): not a data dependency, an
    # order. The training is the longest step and the fine-tuned evaluation waits for it, so it starts before the other
    # evaluations take the heavy slots; and they wait until it has loaded its model and reports training steps (a fresh
    # gpu-lora-trainer process that imports transformers for a training and for a Generate call at the same time fails
    # the training with an ImportError).
    start_after: tuple[str, ...] = ()
    # Among the steps ready at once, the lower starts first: RAG's evaluation (the longest, in another process than
    # the base and fine-tuned models' generation) before the others, so that two evaluations at a time overlap best.
    priority: int = 5


SPECS: dict[str, StepSpec] = {
    s.name: s
    for s in (
        StepSpec(INGEST, 1, "ingest the catalog", "dataset-builder", "", (), False, 0.5),
        StepSpec(BUILD, 2, "build the dataset", "dataset-builder", "dataset.build", (INGEST,), False, 2),
        StepSpec(VALIDATE, 3, "validate the dataset", "validator", "", (BUILD,), False, 1),
        StepSpec(TRAIN, 4, "fine-tune (LoRA)", "gpu-lora-trainer", "train.lora", (VALIDATE,), True, 40),
        StepSpec(INDEX, 5, "index the RAG collection", "rag-service", "rag.index", (INGEST,), True, 6),
        StepSpec(eval_step("base"), 6, "evaluate the base model", "evaluator", "evaluation.run", (BUILD,), True, 12, (TRAIN,)),
        StepSpec(eval_step("fine_tuned"), 6, "evaluate the fine-tuned model", "evaluator", "evaluation.run", (BUILD, TRAIN), True, 12),
        StepSpec(eval_step("rag"), 6, "evaluate RAG", "evaluator", "evaluation.run", (BUILD, INDEX), True, 12, (TRAIN,), 4),
        StepSpec(eval_step("grounded"), 6, "evaluate grounded answers", "evaluator", "evaluation.run", (BUILD, INDEX), False, 1),
        StepSpec(REPORT, 7, "compare and report", "evaluator", "", (), False, 1),  # depends on the evaluations planned
    )
}
ORDER = tuple(SPECS)  # the display order
STARTED_FRACTION = 0.05  # a job past this fraction is doing its real work (the trainer: its first training step)


# --- parameters ------------------------------------------------------------------------------------------------

# Defaults by the trainer's device. CPU: sized so that the sample catalog (45 applications) goes through every step in
# about 10 minutes on a 2-core machine (bench/bench_pipeline.py); CUDA: the guide's sizes. The dataset keeps the guide's
# 1,000 questions on a CPU too (it builds in a second; the training budget is in steps): with fewer, the paraphrase
# split's test set holds only the catalog-wide types (a fact needs two phrasings to send one to test), and the
# evaluation would ask no question about an application's status, domain or actors.
DEVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    # CPU: one question at a time per evaluation (concurrent calls to a CPU model only queue, and the latency measured
    # would be the queue's), RAG with 3 chunks (the prompt's prefill is most of a CPU answer's time).
    # The training runs alone (its two torch threads lose most of their speed when anything else runs on two cores);
    # the evaluations two at a time (a CPU model generates on one thread: RAG's in rag-service beside the base and
    # fine-tuned models' in gpu-lora-trainer), when the evaluator runs two jobs at once (else they queue there).
    # The base target: on a CPU, the training keeps a small model (its 10-minute budget) and the base target is the
    # capable CPU model RAG falls back to, through llama.cpp (one engine for base and RAG); on a GPU, the
    # fine-tuning's own base model, so that the fine-tuned model is compared with what it started from.
    "cpu": {"num_questions": 1000, "max_steps": 16, "max_eval_questions": 30, "max_parallel": 2, "train_alone": True,
            "eval_max_tokens": 96, "eval_concurrency": 1, "rag_n_chunks": 3, "learning_rate": 1e-3,
            "base_llm": "gguf:qwen2.5-0.5b"},
    "cuda": {"num_questions": 1000, "max_steps": 0, "max_eval_questions": 0, "max_parallel": 3, "train_alone": False,
             "eval_max_tokens": 0, "eval_concurrency": None, "rag_n_chunks": 0, "learning_rate": None, "base_llm": ""},
}
TUNED = ("num_questions", "max_steps", "max_eval_questions", "max_parallel", "train_alone", "eval_max_tokens", "eval_concurrency",
         "rag_n_chunks", "base_llm")
BASE_LLM_KINDS = ("gguf", "ollama")  # what the base target may answer with besides the fine-tuning's base model


class PipelineRequest(BaseModel):
    """POST /pipelines. Every parameter has a default; unset ones follow the trainer's device (DEVICE_DEFAULTS)."""

    model_config = {"extra": "forbid"}

    catalog: str = Field("", description="the catalog's name: a stored catalog, or the name to store catalog_content under")
    catalog_version: str = Field("", description="with a stored catalog: that version (empty: the latest)")
    catalog_content: str = Field("", description="the catalog file itself (keyed JSON, JSON list, JSONL or CSV), as text")
    catalog_base64: str = Field("", description="or its bytes, base64-encoded")
    catalog_filename: str = Field("", description="the file's name (helps detect its format; names the catalog by default)")
    num_questions: int | None = Field(None, ge=1, le=100_000, description="dataset size; default: 1000")
    question_types: list[str] = Field(default_factory=lambda: ["all"])
    seed: int = Field(42, description="dataset, training and evaluation sample seed")
    base_model: str = Field("default", min_length=1, description="base model of the fine-tuning and of the base target")
    preset: Literal["auto", "small", "medium", "large", "knowledge"] = Field(
        "auto", description="the guide's Annex A preset (auto: by size), or knowledge: every phrasing of each fact in the "
        "dataset, and epochs sized by exposures per fact")
    epochs: int | None = Field(None, ge=1, le=100, description="default: the preset's")
    max_steps: int | None = Field(None, ge=0, description="training steps; 0: whole epochs; default: 24 on CPU, 0 on GPU")
    training_config: dict[str, Any] = Field(default_factory=dict, description="any other TrainingConfig option (r, learning_rate…)")
    model_id: str = Field("", description="with skip=[train]: an existing fine-tuned model (lora-…) to evaluate")
    rag_collection: str = Field("", description="the RAG collection; default: the catalog's name")
    base_llm: str | None = Field(
        None, description="what the base target answers with: gguf:NAME (llama.cpp in the evaluator) or ollama:NAME; "
        "'' for base_model through gpu-lora-trainer; default: gguf:qwen2.5-0.5b on CPU, base_model on GPU")
    rag_llm: str = Field("", description="the chat model RAG answers with; empty: rag-service's default (gguf:qwen2.5-0.5b)")
    rag_mode: Literal["auto", "grounded", "generative"] = Field(
        "auto", description="how RAG answers: auto (from the records when the question is understood, else the model), "
        "grounded (the records only) or generative (the model always)")
    rag_n_chunks: int | None = Field(None, ge=0, le=50, description="chunks given to RAG's model; 0: the service's (5); default: 3 on CPU")
    targets: list[Literal["base", "fine_tuned", "rag", "grounded"]] = Field(
        default_factory=lambda: list(TARGETS), description="what is evaluated: base, fine_tuned, rag (in rag_mode), grounded")
    max_eval_questions: int | None = Field(None, ge=0, description="test questions per target (a stratified sample); 0: all; "
                                                                    "default: 30 on CPU, all on GPU")
    eval_max_tokens: int | None = Field(None, ge=0, le=4096, description="answer length per question; 0: the evaluator's default")
    eval_concurrency: int | None = Field(None, ge=1, le=256, description="questions in flight per evaluation; default: the evaluator's")
    skip_similarity: bool = Field(False, description="no semantic similarity in the evaluation (no embedding model)")
    skip: list[Literal["validate", "train", "index", "evaluate", "report"]] = Field(default_factory=list)
    max_parallel: int | None = Field(None, ge=1, le=16, description="heavy steps at once (training, indexing, evaluations)")
    train_alone: bool | None = Field(None, description="no other heavy step while the training runs; default: on CPU")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="size the defaults for this device; auto: the trainer's")
    name: str = Field("", max_length=200, description="a label for the pipeline")

    @field_validator("targets", "skip")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _consistent(self) -> PipelineRequest:
        if self.catalog_content and self.catalog_base64:
            raise ValueError("give catalog_content or catalog_base64, not both")
        has_content = bool(self.catalog_content or self.catalog_base64)
        if not has_content and not self.catalog:
            raise ValueError("give a catalog: the name of a stored catalog, or the file in catalog_content")
        if has_content and self.catalog_version:
            raise ValueError("catalog_version names a stored version; it cannot go with catalog_content")
        evaluating = "evaluate" not in self.skip
        if evaluating and not self.targets:
            raise ValueError("targets is empty: name at least one of base, fine_tuned, rag (or skip evaluate)")
        if evaluating and "fine_tuned" in self.targets and "train" in self.skip and not self.model_id:
            raise ValueError("skip=[train] with the fine_tuned target needs model_id (an existing lora-… model), "
                             "or leave fine_tuned out of targets")
        if self.model_id and "train" not in self.skip:
            raise ValueError("model_id evaluates an existing model: it goes with skip=[train]")
        if self.base_llm and self.base_llm.partition(":")[0] not in BASE_LLM_KINDS:
            raise ValueError(f"base_llm must be gguf:NAME or ollama:NAME (or empty for base_model), not {self.base_llm!r}")
        if self.base_llm and not self.base_llm.partition(":")[2].strip():
            raise ValueError(f"base_llm {self.base_llm!r} names no model: gguf:NAME or ollama:NAME")
        if self.model_id and not self.model_id.startswith("lora-"):
            raise ValueError(f"model_id must be a fine-tuned model id (lora-…), not {self.model_id!r}")
        return self

    def has_content(self) -> bool:
        return bool(self.catalog_content or self.catalog_base64)


def resolve_params(request: PipelineRequest, *, device: str, device_source: str, catalog: dict[str, Any]) -> dict[str, Any]:
    """The parameters as the pipeline runs them: every default filled in for the device. No catalog bytes."""
    defaults = DEVICE_DEFAULTS["cuda" if device == "cuda" else "cpu"]
    params = request.model_dump(exclude={"catalog_content", "catalog_base64", "device"})

    def pick(name: str) -> Any:
        value = getattr(request, name)
        return defaults[name] if value is None else value

    for name in TUNED:
        params[name] = pick(name)
    # A short CPU budget learns at a higher rate than Annex A's (which is meant for whole epochs), unless one is given.
    if defaults["learning_rate"] and request.max_steps is None and "learning_rate" not in request.training_config:
        params["training_config"] = {**request.training_config, "learning_rate": defaults["learning_rate"]}
    params.update(
        catalog=catalog["name"], catalog_version=catalog["version"], catalog_entities=catalog.get("entity_count", 0),
        rag_collection=request.rag_collection or catalog["name"], device=device, device_source=device_source,
        num_questions_given=request.num_questions is not None,  # else a target the build sizes to the catalog
        targets=[] if "evaluate" in request.skip else list(request.targets),
    )
    return params


def training_config(params: dict[str, Any]) -> dict[str, Any]:
    """The TrainingConfig the train step sends."""
    config = dict(params.get("training_config") or {})
    config.setdefault("base_model", params.get("base_model") or "default")
    config.setdefault("preset", params.get("preset") or "auto")
    config.setdefault("seed", params.get("seed", 42))
    if params.get("epochs"):
        config.setdefault("epochs", params["epochs"])
    if params.get("max_steps"):
        config.setdefault("max_steps", params["max_steps"])
    return config


# --- steps -----------------------------------------------------------------------------------------------------

def new_step(name: str, depends_on: tuple[str, ...] | None = None) -> dict[str, Any]:
    spec = SPECS[name]
    return {
        "name": name,
        "number": spec.number,
        "title": spec.title,
        "service": spec.service,
        "kind": spec.kind,
        "depends_on": list(spec.depends_on if depends_on is None else depends_on),
        "status": PENDING,
        "job_id": "",
        "started_at": None,
        "job_started_at": None,  # when its job left its service's queue
        "ended_at": None,
        "seconds": None,
        "queued_s": None,  # how long its job waited in its service's queue
        "progress": {"fraction": 0.0, "step": "", "eta_seconds": -1.0, "metrics": {}},
        "result": {},
        "artifacts": [],
        "error": "",
        "note": "",
    }


def plan_steps(params: dict[str, Any], ingest: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every step of a pipeline with these (resolved) parameters, in order; skipped ones say so."""
    skip = set(params.get("skip") or ())
    targets = list(params.get("targets") or ())
    steps: list[dict[str, Any]] = []
    ingest_step = new_step(INGEST)
    if ingest:
        ingest_step.update({"status": SUCCEEDED, **ingest})
    steps.append(ingest_step)
    steps.append(new_step(BUILD))
    for name in (VALIDATE, TRAIN, INDEX):
        step = new_step(name)
        if name in skip:
            step.update(status=SKIPPED, note="skipped as asked")
        elif name == INDEX and not RAG_TARGETS & set(targets):
            step.update(status=SKIPPED, note="no RAG target to evaluate")
        steps.append(step)
    if params.get("model_id"):
        train = by_name(steps)[TRAIN]
        train["result"] = {"model_id": params["model_id"]}
        train["note"] = f"skipped as asked: evaluating {params['model_id']}"
    for target in targets:
        steps.append(new_step(eval_step(target)))
    report = new_step(REPORT, tuple(eval_step(t) for t in targets))
    if "report" in skip or not targets:
        report.update(status=SKIPPED, note="skipped as asked" if "report" in skip else "nothing evaluated")
    steps.append(report)
    return steps


def by_name(steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in steps}


def _deps_done(step: dict[str, Any], index: dict[str, dict[str, Any]]) -> bool:
    return all(index[d]["status"] in STEP_DONE for d in step["depends_on"] if d in index)


def _deps_broken(step: dict[str, Any], index: dict[str, dict[str, Any]]) -> bool:
    return any(index[d]["status"] in (FAILED, CANCELLED, BLOCKED) for d in step["depends_on"] if d in index)


def _under_way(step: dict[str, Any]) -> bool:
    if step["status"] in STEP_ENDED:
        return True
    return step["status"] == RUNNING and float(step["progress"].get("fraction") or 0.0) > STARTED_FRACTION


def any_failed(steps: list[dict[str, Any]]) -> bool:
    return any(s["status"] in (FAILED, CANCELLED) for s in steps)


def ready_steps(steps: list[dict[str, Any]], max_parallel: int, train_alone: bool = False) -> list[str]:
    """Steps to start now: pending, dependencies done, within the heavy-step limit (and, with `train_alone`, no other
    heavy step beside the training); none after a failure."""
    if any_failed(steps):
        return []
    index = by_name(steps)
    heavy_running = sum(1 for s in steps if s["status"] == RUNNING and SPECS[s["name"]].heavy)
    if train_alone and index.get(TRAIN, {}).get("status") == RUNNING:
        max_parallel = heavy_running  # nothing heavy starts beside it
    ready = []
    for step in sorted(steps, key=lambda s: SPECS[s["name"]].priority):  # stable: else the record's order
        name = step["name"]
        if step["status"] != PENDING or not _deps_done(step, index):
            continue
        if not all(_under_way(index[a]) for a in SPECS[name].start_after if a in index):
            continue
        if SPECS[name].heavy:
            if heavy_running >= max_parallel or (train_alone and name == TRAIN and heavy_running):
                continue
            heavy_running += 1
            if train_alone and name == TRAIN:
                max_parallel = heavy_running
        ready.append(name)
    return ready


def block_unreachable(steps: list[dict[str, Any]], now: float) -> list[str]:
    """Pending steps that can no longer run (a step they need failed, or nothing runs after a failure): blocked."""
    index = by_name(steps)
    changed = []
    failed = any_failed(steps)
    running = any(s["status"] == RUNNING for s in steps)
    for step in steps:
        if step["status"] != PENDING:
            continue
        if _deps_broken(step, index) or (failed and not running):
            step.update(status=BLOCKED, ended_at=now, note=_blocked_note(step, index))
            changed.append(step["name"])
    return changed


def _blocked_note(step: dict[str, Any], index: dict[str, dict[str, Any]]) -> str:
    broken = [d for d in step["depends_on"] if index.get(d, {}).get("status") in (FAILED, CANCELLED, BLOCKED)]
    if broken:
        return "not run: " + ", ".join(f"{d} {index[d]['status']}" for d in broken)
    return "not run: the pipeline stopped after a failure"


def outcome(steps: list[dict[str, Any]]) -> str | None:
    """The pipeline's end status once nothing runs or can run; None while it goes on."""
    if any(s["status"] == RUNNING for s in steps):
        return None
    if any(s["status"] == FAILED for s in steps):
        return FAILED
    if any(s["status"] == CANCELLED for s in steps):
        return CANCELLED
    if any(s["status"] == PENDING for s in steps):
        return None
    return SUCCEEDED if all(s["status"] in STEP_DONE for s in steps) else FAILED


def failure_message(steps: list[dict[str, Any]]) -> str:
    """'step 4 (fine-tune (LoRA), job gpu-lora-trainer-…) failed: <the job's error>' for each failed step."""
    parts = []
    for s in steps:
        if s["status"] == FAILED:
            job = f", job {s['job_id']}" if s["job_id"] else ""
            parts.append(f"step {s['number']} {s['name']} ({s['title']}{job}) failed: {s['error'] or 'no reason given'}")
    return "; ".join(parts) or "the pipeline failed"


def failed_step(steps: list[dict[str, Any]]) -> str:
    return next((s["name"] for s in steps if s["status"] == FAILED), "")


def overall_fraction(steps: list[dict[str, Any]]) -> float:
    total = done = 0.0
    for s in steps:
        if s["status"] == SKIPPED:
            continue
        weight = SPECS[s["name"]].weight
        total += weight
        if s["status"] in STEP_ENDED:
            done += weight
        elif s["status"] == RUNNING:
            done += weight * float(s["progress"].get("fraction") or 0.0)
    return round(done / total, 4) if total else 1.0


def start_step(step: dict[str, Any], now: float) -> None:
    step.update(status=RUNNING, started_at=step["started_at"] or now, ended_at=None, error="")


def end_step(step: dict[str, Any], status: str, now: float, *, error: str = "", result: dict[str, Any] | None = None,
             artifacts: list[dict[str, Any]] | None = None) -> None:
    step.update(status=status, ended_at=now, error=error)
    if step["started_at"]:
        step["seconds"] = round(now - step["started_at"], 2)
    if result:
        step["result"] = {**step["result"], **result}
    if artifacts is not None:
        step["artifacts"] = artifacts
    if status == SUCCEEDED:
        step["progress"] = {**step["progress"], "fraction": 1.0, "eta_seconds": 0.0}


def to_resume(steps: list[dict[str, Any]]) -> list[str]:
    """After a gateway restart: the steps that were running (re-attached to their job, or started again)."""
    return [s["name"] for s in steps if s["status"] == RUNNING]


# --- what the API shows ------------------------------------------------------------------------------------------

def rfc3339(epoch: float | None) -> str | None:
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def report_links(pipeline_id: str) -> dict[str, str]:
    return {fmt: f"/pipelines/{pipeline_id}/report.{fmt}" for fmt in ("html", "md", "json")}


def view(record: dict[str, Any], *, now: float | None = None, stale_after: float = 60.0) -> dict[str, Any]:
    """A pipeline as GET /pipelines/{id} shows it: each step (status, job, timings, artifacts) and the report."""
    now = now or time.time()
    params = dict(record.get("params") or {})
    steps = copy.deepcopy(record.get("steps") or plan_steps(params, params.get("ingest")))
    for s in steps:
        s["elapsed_s"] = round((s["ended_at"] or now) - s["started_at"], 1) if s["started_at"] else None
        for key in ("started_at", "job_started_at", "ended_at"):
            s[key] = rfc3339(s.get(key))
    status = record["status"]
    ended = status in (SUCCEEDED, FAILED, CANCELLED)
    if ended:  # a pipeline ended by its worker giving up (or cancelled before it started) leaves steps as they were
        for s in steps:
            if s["status"] == RUNNING:
                s.update(status=INTERRUPTED, note=s["note"] or f"the pipeline ended ({status}) while this step ran; "
                                                                f"its job {s['job_id'] or '(none)'} may have gone on")
            elif s["status"] == PENDING:
                s.update(status=BLOCKED, note=s["note"] or f"not run: the pipeline ended ({status})")
    result = record.get("result") or {}
    report = result.get("report") or record.get("report")
    if report:
        report = {**report, "links": report_links(record["id"])}
    return {
        "id": record["id"],
        "name": params.get("name", ""),
        "status": status,
        "catalog": params.get("catalog"),
        "catalog_version": params.get("catalog_version"),
        "correlation_id": record.get("correlation_id", ""),
        "created_at": rfc3339(record.get("created_at")),
        "updated_at": rfc3339(record.get("updated_at")),
        "elapsed_s": round((record["updated_at"] if ended else now) - record["created_at"], 1),
        "attempts": record.get("attempts", 0),
        "cancel_requested": record.get("cancel_requested", False),
        # A running pipeline whose gateway stopped heart-beating: another gateway (or this one, restarted) resumes it.
        "stalled": status == RUNNING and now - float(record.get("heartbeat_at") or now) > stale_after,
        "error": record.get("error", ""),
        "failed_step": failed_step(steps),
        "progress": record.get("progress", {}),
        "params": {k: v for k, v in params.items() if k != "ingest"},  # step 1 shows it
        "steps": steps,
        "report": report,
        "logs": record.get("logs", [])[-20:],
    }


def summary_view(record: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """One line of GET /pipelines."""
    full = view(record, now=now)
    return {k: full[k] for k in ("id", "name", "status", "catalog", "catalog_version", "created_at", "updated_at", "elapsed_s",
                                 "error", "failed_step", "progress")} | {
        "steps": {s["name"]: s["status"] for s in full["steps"]},
    }
