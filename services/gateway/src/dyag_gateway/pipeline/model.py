"""The pipeline's state machine: step statuses, each step's record (`Step`), and which steps start, block or end it.

Pure: no I/O. A pipeline's steps are `Step` records kept in its job record (JSON in the KV bucket "pipelines"); what
each step does lives in `steps.py`, whose classes register their `StepSpec` here (SPECS), so that the functions below
know each step's dependencies, weight and order.

A step starts when every step it depends on has succeeded (or was skipped), and at most `max_parallel` heavy steps
(training, indexing, evaluations) run at once. After a failure nothing new starts; what runs ends, and the pipeline
ends failed, naming the step and its job's error; what was done stays in the record. An optional step (the export,
the exported GGUF's evaluation) is the exception: when it fails, the steps that need it are blocked and the others go
on (the report compares what was evaluated and says why a target is missing); the pipeline still ends failed, naming
it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

PIPELINE_SERVICE = "pipeline"  # pipeline ids are "pipeline-<16 hex>"; their work queue is dyag.jobs.pipeline
PIPELINE_KIND = "pipeline.run"
PIPELINE_BUCKET = "pipelines"

# Step statuses. "blocked": a step it depends on failed or was cancelled, so it never ran.
PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, CANCELLED, BLOCKED = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "skipped",
    "cancelled",
    "blocked",
)
INTERRUPTED = "interrupted"  # only in views: a step still running in the record of a pipeline that ended
STEP_DONE = (SUCCEEDED, SKIPPED)
STEP_ENDED = (SUCCEEDED, SKIPPED, FAILED, CANCELLED, BLOCKED)

INGEST, BUILD, VALIDATE, TRAIN, INDEX, GATE, REPORT = "ingest", "build", "validate", "train", "index", "gate", "report"
EXPORT = "export"  # the trained model as GGUF files (model-exporter), when the pipeline's `export` names levels
CHAMPION = "champion"  # a retraining's evaluation target besides the challengers: the current champion
TARGETS = ("base", "fine_tuned", "rag")  # the default targets; "grounded" (RAG's records alone, milliseconds) on demand
TARGET_LABELS = {
    "base": "base model",
    "fine_tuned": "fine-tuned (LoRA)",
    "rag": "RAG",
    "grounded": "grounded answers",
    "hybrid": "hybrid (RAG + LoRA)",
    "gguf": "exported GGUF (llama.cpp)",
    CHAMPION: "champion",
}
RAG_TARGETS = frozenset({"rag", "grounded", "hybrid"})  # the targets that need the RAG collection
FINE_TUNED_TARGETS = frozenset({"fine_tuned", "hybrid"})  # the targets that need the trained (or given) model
EXPORT_TARGETS = frozenset({"gguf"})  # the targets that need the pipeline's export (its first level's GGUF)
SKIPPABLE = ("validate", "train", "index", "evaluate", "report")
STARTED_FRACTION = 0.05  # a job past this fraction is doing its real work (the trainer: its first training step)


def eval_step(target: str) -> str:
    return f"evaluate_{target}"


@dataclass(frozen=True, slots=True)
class StepSpec:
    """What the state machine knows of a step: its place, its owner, what it waits for."""

    name: str
    number: int  # the guide's step
    title: str
    service: str
    kind: str  # the job kind; "" for a step that is one RPC
    depends_on: tuple[str, ...]
    heavy: bool  # counts against max_parallel (CPU- or GPU-bound)
    weight: float  # share of a typical run's time, for the overall fraction
    # Steps that must be under way first (ended, skipped, or running past STARTED_FRACTION): not a data dependency, an
    # order (see steps.Evaluate).
    start_after: tuple[str, ...] = ()
    # Among the steps ready at once, the lower starts first.
    priority: int = 5
    # A failure of an optional step does not stop the pipeline: the steps that need it are blocked, the others go on.
    optional: bool = False
    # Runs once its dependencies have ended, without those that are optional and failed or could not run (the report:
    # it compares what was evaluated).
    partial: bool = False


SPECS: dict[str, StepSpec] = {}  # filled by steps.register, in display order


class Progress(TypedDict):
    fraction: float
    step: str
    eta_seconds: float
    metrics: dict[str, float]


class Step(TypedDict):
    """One step of a pipeline as its record keeps it (JSON)."""

    name: str
    number: int
    title: str
    service: str
    kind: str
    depends_on: list[str]
    status: str
    job_id: str
    started_at: float | None
    job_started_at: float | None  # when its job left its service's queue
    ended_at: float | None
    seconds: float | None
    queued_s: float | None  # how long its job waited in its service's queue
    progress: Progress
    result: dict[str, Any]
    artifacts: list[dict[str, Any]]
    error: str
    note: str


def new_step(name: str, depends_on: tuple[str, ...] | None = None) -> Step:
    spec = SPECS[name]
    return Step(
        name=name,
        number=spec.number,
        title=spec.title,
        service=spec.service,
        kind=spec.kind,
        depends_on=list(spec.depends_on if depends_on is None else depends_on),
        status=PENDING,
        job_id="",
        started_at=None,
        job_started_at=None,
        ended_at=None,
        seconds=None,
        queued_s=None,
        progress=Progress(fraction=0.0, step="", eta_seconds=-1.0, metrics={}),
        result={},
        artifacts=[],
        error="",
        note="",
    )


def by_name(steps: list[Step]) -> dict[str, Step]:
    return {s["name"]: s for s in steps}


def dropped(step: Step) -> bool:
    """An optional step that failed or could not run: the pipeline goes on without it."""
    return SPECS[step["name"]].optional and step["status"] in (FAILED, BLOCKED)


def _done_for(step: Step, dep: Step) -> bool:
    return dep["status"] in STEP_DONE or (SPECS[step["name"]].partial and dropped(dep))


def _deps_done(step: Step, index: dict[str, Step]) -> bool:
    return all(_done_for(step, index[d]) for d in step["depends_on"] if d in index)


def _broken_deps(step: Step, index: dict[str, Step]) -> list[str]:
    return [
        d
        for d in step["depends_on"]
        if d in index and index[d]["status"] in (FAILED, CANCELLED, BLOCKED) and not _done_for(step, index[d])
    ]


def _under_way(step: Step) -> bool:
    if step["status"] in STEP_ENDED:
        return True
    return step["status"] == RUNNING and float(step["progress"].get("fraction") or 0.0) > STARTED_FRACTION


def any_failed(steps: list[Step]) -> bool:
    """A step failed or was cancelled, other than an optional one: nothing new starts."""
    return any(s["status"] in (FAILED, CANCELLED) and not dropped(s) for s in steps)


def ready_steps(steps: list[Step], max_parallel: int, train_alone: bool = False) -> list[str]:
    """Steps to start now: pending, dependencies done, within the heavy-step limit (and, with `train_alone`, no other
    heavy step beside the training); none after a failure."""
    if any_failed(steps):
        return []
    index = by_name(steps)
    heavy_running = sum(1 for s in steps if s["status"] == RUNNING and SPECS[s["name"]].heavy)
    if train_alone and TRAIN in index and index[TRAIN]["status"] == RUNNING:
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


def block_unreachable(steps: list[Step], now: float) -> list[str]:
    """Pending steps that can no longer run (a step they need failed, or nothing runs after a failure): blocked."""
    index = by_name(steps)
    changed = []
    failed = any_failed(steps)
    running = any(s["status"] == RUNNING for s in steps)
    for step in steps:
        if step["status"] != PENDING:
            continue
        if _broken_deps(step, index) or (failed and not running):
            step.update(status=BLOCKED, ended_at=now, note=_blocked_note(step, index))
            changed.append(step["name"])
    return changed


def _blocked_note(step: Step, index: dict[str, Step]) -> str:
    broken = _broken_deps(step, index)
    if broken:
        return "not run: " + ", ".join(f"{d} {index[d]['status']}" for d in broken)
    return "not run: the pipeline stopped after a failure"


def block_pending(steps: list[Step], now: float, note: str) -> None:
    """Every pending step blocked, with `note` (the pipeline was cancelled or ended)."""
    for step in steps:
        if step["status"] == PENDING:
            step.update(status=BLOCKED, ended_at=now, note=note)


def outcome(steps: list[Step]) -> str | None:
    """The pipeline's end status once nothing runs or can run; None while it goes on."""
    if any(s["status"] == RUNNING for s in steps):
        return None
    if any(s["status"] == FAILED and not dropped(s) for s in steps):
        return FAILED
    if any(s["status"] == CANCELLED for s in steps):
        return CANCELLED
    if any(s["status"] == PENDING for s in steps):
        return None  # an optional step failed: the others go on
    return SUCCEEDED if all(s["status"] in STEP_DONE for s in steps) else FAILED


def failure_message(steps: list[Step]) -> str:
    """'step 4 (fine-tune (LoRA), job gpu-lora-trainer-…) failed: <the job's error>' for each failed step."""
    parts = []
    for s in steps:
        if s["status"] == FAILED:
            job = f", job {s['job_id']}" if s["job_id"] else ""
            parts.append(
                f"step {s['number']} {s['name']} ({s['title']}{job}) failed: {s['error'] or 'no reason given'}"
            )
    return "; ".join(parts) or "the pipeline failed"


def failed_step(steps: list[Step]) -> str:
    return next((s["name"] for s in steps if s["status"] == FAILED), "")


def last_word(steps: list[Step]) -> str:
    """What the pipeline's progress line says when no step runs."""
    status = outcome(steps)
    return {SUCCEEDED: "done", FAILED: "failed", CANCELLED: "cancelled"}.get(status or "", "waiting")


def overall_fraction(steps: list[Step]) -> float:
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


def start_step(step: Step, now: float) -> None:
    step.update(status=RUNNING, started_at=step["started_at"] or now, ended_at=None, error="")


def end_step(
    step: Step,
    status: str,
    now: float,
    *,
    error: str = "",
    result: dict[str, Any] | None = None,
    artifacts: list[dict[str, Any]] | None = None,
) -> None:
    step.update(status=status, ended_at=now, error=error)
    if step["started_at"]:
        step["seconds"] = round(now - step["started_at"], 2)
    if result:
        step["result"] = {**step["result"], **result}
    if artifacts is not None:
        step["artifacts"] = artifacts
    if status == SUCCEEDED:
        step["progress"] = {**step["progress"], "fraction": 1.0, "eta_seconds": 0.0}


def to_resume(steps: list[Step]) -> list[str]:
    """After a gateway restart: the steps that were running (re-attached to their job, or started again)."""
    return [s["name"] for s in steps if s["status"] == RUNNING]
