"""What each step of a pipeline does, one class per step, in a registry keyed by step name.

A `JobStep` submits a job to the service that owns it and, once the job has succeeded, collects what the next steps
and the record need from it; a `CallStep` is one RPC. The runner (runner.py) only starts, watches and records them.

    1 ingest        dataset-builder  IngestCatalog (an RPC, done when the pipeline is created)
    2 build         dataset-builder  dataset.build job
    3 validate      validator        Validate (an RPC)
    4 train         gpu-lora-trainer train.lora job (LoRA on the base model)
    4 export        model-exporter   export.gguf job (the trained model as GGUF, its parity gate), when asked; optional
    5 index         rag-service      rag.index job (beside 2-4: it needs only the catalog)
    6 evaluate_*    evaluator        evaluation.run jobs, one per target (base, fine_tuned, rag, grounded, hybrid, gguf)
    7 report        evaluator        Compare (an RPC): the guide's 6.2 table, the 7.2 decision table, reports

Adding a step: one class here, decorated with @register (its StepSpec says where it goes and what it waits for).
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any, ClassVar, Protocol

import grpc
from google.protobuf import json_format

from dyag.v1 import catalog_pb2, dataset_pb2, evaluation_pb2, export_pb2, jobs_pb2, rag_pb2, training_pb2
from dyag_core.catalog.names import default_name
from dyag_core.dataset.generate import MOST_VARIATIONS
from dyag_core.retraining import ModelRef
from dyag_gateway.errors import ApiError, api_error_of
from dyag_gateway.pipeline.model import (
    BUILD,
    CHAMPION,
    EXPORT,
    EXPORT_TARGETS,
    FAILED,
    FINE_TUNED_TARGETS,
    GATE,
    INDEX,
    INGEST,
    RAG_TARGETS,
    REPORT,
    SKIPPED,
    SPECS,
    SUCCEEDED,
    TARGET_LABELS,
    TRAIN,
    VALIDATE,
    Step,
    StepSpec,
    by_name,
    eval_step,
    new_step,
)
from dyag_gateway.pipeline.settings import PipelineRequest, training_config
from dyag_runtime.contracts import job_result, job_result_dict, lora_config_message
from dyag_runtime.peers import Peers

RPC_TIMEOUT_S = 60.0
Outcome = tuple[dict[str, Any], list[dict[str, Any]]]  # (the step's result, its artifacts)


class StepFailed(Exception):
    def __init__(self, message: str, result: dict[str, Any] | None = None, artifacts: list | None = None):
        super().__init__(message)
        self.message, self.result, self.artifacts = message, result or {}, artifacts


class RunContext(Protocol):
    """What a step sees of the pipeline that runs it."""

    params: dict[str, Any]
    peers: Peers
    pipeline_id: str
    correlation_id: str
    decisions: Any  # the retraining facade (records the gate's decisions), where retraining runs

    def result_of(self, name: str) -> dict[str, Any]: ...

    def step(self, name: str) -> Step | None: ...


def message_dict(message) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def job_artifacts(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(a) for a in job.get("artifacts", [])]


class PipelineStep:
    """A kind of step. `specs`: the step names it runs (one, or one per target) and where they go."""

    specs: ClassVar[tuple[StepSpec, ...]]

    def plan(self, params: dict[str, Any]) -> list[Step]:
        """The records of this step in a pipeline with these (resolved) parameters; a skipped one says why."""
        steps = [new_step(spec.name) for spec in self.specs]
        for step in steps:
            if note := self.skip_note(params):
                step.update(status=SKIPPED, note=note)
        return steps

    def skip_note(self, params: dict[str, Any]) -> str:
        return "skipped as asked" if self.specs[0].name in (params.get("skip") or ()) else ""


class JobStep(PipelineStep):
    async def submit(self, run: RunContext, step: Step) -> jobs_pb2.Job:
        raise NotImplementedError

    async def collect(self, run: RunContext, step: Step, job: dict[str, Any]) -> Outcome:
        """What a finished job leaves for the next steps and for the record."""
        return dict(job.get("result") or {}), job_artifacts(job)

    async def failure(self, run: RunContext, step: Step, job: dict[str, Any]) -> StepFailed:
        """Why the step failed, from its job that failed: the job's error (a step may add what its service kept)."""
        return StepFailed(job.get("error") or f"its job {job['id']} {job['status']}", artifacts=job_artifacts(job))


class CallStep(PipelineStep):
    async def call(self, run: RunContext, step: Step) -> Outcome:
        raise NotImplementedError


STEPS: dict[str, PipelineStep] = {}  # step name -> what runs it
_KINDS: list[PipelineStep] = []  # in display order


def register(cls: type[PipelineStep]) -> type[PipelineStep]:
    step = cls()
    _KINDS.append(step)
    for spec in cls.specs:
        SPECS[spec.name] = spec
        STEPS[spec.name] = step
    return cls


def plan_steps(params: dict[str, Any], ingest: dict[str, Any] | None = None) -> list[Step]:
    """Every step of a pipeline with these (resolved) parameters, in order; skipped ones say so."""
    steps = [step for kind in _KINDS for step in kind.plan(params)]
    if ingest:
        by_name(steps)[INGEST].update({"status": SUCCEEDED, **ingest})  # type: ignore[typeddict-item]
    return steps


# --- 1 ingest --------------------------------------------------------------------------------------------------------
@register
class Ingest(CallStep):
    """Stores the catalog (a new version, or the current one unchanged), or finds the stored one. It runs when the
    pipeline is created, so that a catalog that cannot be read is refused before anything is queued."""

    specs = (StepSpec(INGEST, 1, "ingest the catalog", "dataset-builder", "", (), False, 0.5),)

    def skip_note(self, params: dict[str, Any]) -> str:
        return ""

    async def ingest(
        self, peers: Peers, request: PipelineRequest, limit: int, correlation_id: str, timeout: float
    ) -> dict[str, Any]:
        began = time.time()
        if request.has_content():
            content = _catalog_bytes(request, limit)
            name = request.catalog or default_name(request.catalog_filename or "catalog")
            try:
                version = await peers.catalogs().IngestCatalog(
                    catalog_pb2.IngestCatalogRequest(
                        name=name, content=content, filename=request.catalog_filename, correlation_id=correlation_id
                    ),
                    timeout=timeout,
                )
            except grpc.aio.AioRpcError as exc:
                raise api_error_of(
                    exc, f"catalog {name!r} ({request.catalog_filename or 'catalog_content'}): "
                ) from None
            note = "unchanged: the current version" if version.unchanged else "stored a new version"
        else:
            version = await peers.catalogs().GetCatalog(
                catalog_pb2.GetCatalogRequest(name=request.catalog, version=request.catalog_version), timeout=timeout
            )
            note = "already stored"
        ended = time.time()
        return {
            "status": SUCCEEDED,
            "started_at": began,
            "ended_at": ended,
            "seconds": round(ended - began, 2),
            "note": note,
            "result": {
                "name": version.name,
                "version": version.version,
                "entity_count": version.entity_count,
                "added": len(version.added),
                "changed": len(version.changed),
                "removed": len(version.removed),
                "unchanged": version.unchanged,
                "warnings": list(version.warnings)[:10],
            },
            "artifacts": [message_dict(version.artifact)] if version.HasField("artifact") else [],
        }


def _catalog_bytes(request: PipelineRequest, limit: int) -> bytes:
    if request.catalog_base64:
        try:
            content = base64.b64decode(request.catalog_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(422, "invalid_catalog_base64", "catalog_base64 is not valid base64") from None
    else:
        content = request.catalog_content.encode()
    if len(content) > limit:
        raise ApiError(
            413,
            "too_large",
            f"the catalog has {len(content):,} bytes, over the upload limit of {limit:,} (DYAG_MAX_UPLOAD_BYTES)",
        )
    if not content.strip():
        raise ApiError(422, "empty_catalog", "the catalog content is empty")
    return content


# --- 2 build ---------------------------------------------------------------------------------------------------------
@register
class Build(JobStep):
    specs = (StepSpec(BUILD, 2, "build the dataset", "dataset-builder", "dataset.build", (INGEST,), False, 2),)

    def skip_note(self, params: dict[str, Any]) -> str:
        return ""

    async def submit(self, run: RunContext, step: Step) -> jobs_pb2.Job:
        p = run.params
        return await run.peers.datasets().BuildDataset(
            dataset_pb2.BuildDatasetRequest(
                catalog=p["catalog"],
                catalog_version=p["catalog_version"],
                num_questions=p["num_questions"],
                question_types=p.get("question_types") or ["all"],
                add_negatives=True,
                seed=p["seed"],
                formats=["openai"],
                variations=MOST_VARIATIONS
                if p.get("preset") == "knowledge"
                else 0,  # knowledge: every phrasing of a fact
                fit_to_catalog=not p.get("num_questions_given"),
                correlation_id=run.correlation_id,
                **self.retraining_fields(p),
            ),
            timeout=RPC_TIMEOUT_S,
        )

    @staticmethod
    def retraining_fields(params: dict[str, Any]) -> dict[str, Any]:
        """A challenger's dataset: rebuilt from the champion's (only the changed applications' examples made anew),
        its train split the changed applications' examples plus a replay sample of the others."""
        retraining = params.get("retraining")
        if not retraining:
            return {}
        fields: dict[str, Any] = {}
        champion = champion_of(params)
        if champion is not None and champion.details.get("dataset_id"):
            fields["base_dataset_id"] = str(champion.details["dataset_id"])
        if retraining.get("changed") and champion is not None:  # a first champion learns the whole catalog
            fields["focus_entity_ids"] = list(retraining["changed"])
            fields["replay_fraction"] = float(retraining.get("replay_fraction") or 0.0)
        return fields

    async def collect(self, run: RunContext, step: Step, job: dict[str, Any]) -> Outcome:
        return job_result_dict(job_result(job, dataset_pb2.DatasetBuildResult)), job_artifacts(job)


# --- 3 validate ------------------------------------------------------------------------------------------------------
@register
class Validate(CallStep):
    specs = (StepSpec(VALIDATE, 3, "validate the dataset", "validator", "", (BUILD,), False, 1),)

    async def call(self, run: RunContext, step: Step) -> Outcome:
        dataset = await run.peers.dataset(run.result_of(BUILD)["dataset_id"])
        reply = await run.peers.validate_split(
            dataset, "train", timeout_s=5 * RPC_TIMEOUT_S, correlation_id=run.correlation_id
        )
        report = json_format.MessageToDict(reply.report)
        checklist = report.get("checklist") or []
        result = {
            "verdict": reply.verdict,
            "blocking": list(reply.blocking),
            "examples": int(report.get("examples") or 0),
            "invalid_lines": int(report.get("invalid_lines") or 0),
            "coverage_percent": (report.get("coverage") or {}).get("percent"),
            "checklist": {
                "passed": sum(1 for c in checklist if c.get("status") == "pass"),
                "total": len(checklist),
                "failed": [c.get("label") or c.get("name") for c in checklist if c.get("status") == "fail"][:10],
            },
        }
        if reply.blocking:
            raise StepFailed(f"the dataset is not usable for training: {'; '.join(reply.blocking)}", result=result)
        return result, []


# --- 4 train ---------------------------------------------------------------------------------------------------------
@register
class Train(JobStep):
    specs = (StepSpec(TRAIN, 4, "fine-tune (LoRA)", "gpu-lora-trainer", "train.lora", (VALIDATE,), True, 40),)
    METRICS_KEPT = (
        "steps",
        "epochs",
        "first_loss",
        "final_loss",
        "eval_loss",
        "tokens_per_second",
        "train_seconds",
        "device",
        "precision",
        "train_examples",
        "validation_examples",
    )

    def plan(self, params: dict[str, Any]) -> list[Step]:
        steps = super().plan(params)
        if params.get("model_id"):  # an existing fine-tuned model is evaluated instead
            steps[0]["result"] = {"model_id": params["model_id"]}
            steps[0]["note"] = f"skipped as asked: evaluating {params['model_id']}"
        return steps

    async def submit(self, run: RunContext, step: Step) -> jobs_pb2.Job:
        p, dataset_id = run.params, run.result_of(BUILD)["dataset_id"]
        return await run.peers.trainer().Train(
            training_pb2.LoraTrainRequest(
                data=training_pb2.LoraTrainingData(dataset_id=dataset_id),
                config=lora_config_message(training_config(p)),
                name=f"{p['catalog']}-{dataset_id}-lora",
                correlation_id=run.correlation_id,
                init_model_id=self.start_from(p),
            ),
            timeout=RPC_TIMEOUT_S,
        )

    @staticmethod
    def start_from(params: dict[str, Any]) -> str:
        """A challenger starts from the champion's adapter when the champion is a LoRA model on the same base."""
        champion = champion_of(params)
        if champion is None or champion.kind not in ("lora", "hybrid"):
            return ""
        same_base = str(champion.details.get("base_model") or "default") == (params.get("base_model") or "default")
        return str(champion.details.get("model_id") or champion.id) if same_base else ""

    async def collect(self, run: RunContext, step: Step, job: dict[str, Any]) -> Outcome:
        result = job.get("result") or {}
        metrics = result.get("metrics") or {}
        kept = {k: metrics[k] for k in self.METRICS_KEPT if k in metrics}
        return {"model_id": result.get("model_id", ""), "metrics": kept}, job_artifacts(job)


# --- 4b export (when asked) ------------------------------------------------------------------------------------------
@register
class Export(JobStep):
    """The fine-tuned model (trained here, or given with skip=[train]) exported by model-exporter at the levels asked
    (`export`): merged, converted to GGUF, quantized, checked by its parity gate. Optional: an export whose gate fails
    fails this step with the exporter's reason, the gguf target is then not evaluated, and the rest goes on. Its
    result names the GGUF of the first level, which the gguf target evaluates (from the artifact store, by digest)."""

    specs = (
        StepSpec(
            EXPORT,
            4,
            "export the model (GGUF)",
            "model-exporter",
            "export.gguf",
            (TRAIN,),
            True,
            8,
            priority=3,  # before the evaluations that wait with it: the gguf target waits for it
            optional=True,
        ),
    )
    PARITY_KEPT = (
        "quantization",
        "passed",
        "failed",
        "reason",
        "scored_tokens",
        "mean_kld",
        "p99_kld",
        "top1_agreement",
        "perplexity_ratio",
        "chat_template",
        "seconds",
    )

    def plan(self, params: dict[str, Any]) -> list[Step]:
        return super().plan(params) if params.get("export") else []

    async def submit(self, run: RunContext, step: Step) -> jobs_pb2.Job:
        p, model_id = run.params, run.result_of(TRAIN).get("model_id", "")
        if not model_id:
            raise StepFailed("no fine-tuned model to export: the training left no model id")
        return await run.peers.exporter().Export(
            export_pb2.ExportRequest(
                model_id=model_id,
                quantizations=p["export"],
                name=f"{p['catalog']}-{model_id}",
                correlation_id=run.correlation_id,
            ),
            timeout=RPC_TIMEOUT_S,
        )

    async def collect(self, run: RunContext, step: Step, job: dict[str, Any]) -> Outcome:
        export_id = (job.get("result") or {}).get("export_id", "")
        export = await run.peers.exporter().GetExport(export_pb2.GetExportRequest(id=export_id), timeout=RPC_TIMEOUT_S)
        result = self.summary(export, run.params["export"])
        if not result.get("gguf"):
            raise StepFailed(f"export {export_id} has no {run.params['export'][0]} GGUF to evaluate", result=result)
        return result, job_artifacts(job)

    async def failure(self, run: RunContext, step: Step, job: dict[str, Any]) -> StepFailed:
        """The exporter's reason (the parity gate names the measure that failed), with the export it registered as
        failed: its files and each level's figures."""
        failed = await super().failure(run, step, job)
        try:
            listed = await run.peers.exporter().ListExports(
                export_pb2.ListExportsRequest(model_id=run.result_of(TRAIN).get("model_id", ""), limit=20),
                timeout=RPC_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError:
            return failed  # the reason is the job's; the registry can be read later
        export = next((e for e in listed.exports if e.job_id == job["id"]), None)
        if export is not None:
            failed.result = self.summary(export, run.params["export"])
        return failed

    def summary(self, export: export_pb2.ModelExport, levels: list[str]) -> dict[str, Any]:
        """What the record keeps of an export: its id, files (by digest), each level's parity verdict and figures,
        and the GGUF the gguf target evaluates (the first level asked)."""
        files = [
            {
                "name": f.name,
                "kind": f.kind,
                "quantization": f.quantization,
                "size": int(f.size),
                "digest": f.artifact.digest or f"sha256:{f.sha256}",
            }
            for f in export.files
        ]
        first = levels[0] if levels else ""
        gguf = next((f for f in files if f["kind"] == "gguf" and f["quantization"] == first), None)
        parity = [{k: v for k, v in message_dict(r).items() if k in self.PARITY_KEPT} for r in export.parity]
        return {
            "export_id": export.id,
            "status": export.status,
            "error": export.error,
            "quantizations": list(export.quantizations),
            "files": files,
            "parity": parity,
            "gguf": gguf or {},
            "bundle_dir": export.bundle_dir,  # on model-exporter's host; the gguf target reads the artifact store
        }


# --- 5 index ---------------------------------------------------------------------------------------------------------
@register
class Index(JobStep):
    specs = (StepSpec(INDEX, 5, "index the RAG collection", "rag-service", "rag.index", (INGEST,), True, 6),)

    def skip_note(self, params: dict[str, Any]) -> str:
        if note := super().skip_note(params):
            return note
        champion = champion_of(params)
        if RAG_TARGETS & set(params.get("targets") or ()) or (
            champion and champion.kind in ("rag", "grounded", "hybrid")
        ):
            return ""  # a RAG target, or a retraining's RAG champion, is evaluated on the collection at this version
        return "no RAG target to evaluate"

    async def submit(self, run: RunContext, step: Step) -> jobs_pb2.Job:
        p = run.params
        return await run.peers.rag().Index(
            rag_pb2.IndexRequest(
                collection=p["rag_collection"],
                catalog=p["catalog"],
                catalog_version=p["catalog_version"],
                correlation_id=run.correlation_id,
            ),
            timeout=RPC_TIMEOUT_S,
        )

    async def collect(self, run: RunContext, step: Step, job: dict[str, Any]) -> Outcome:
        result = job.get("result") or {}  # entity id lists become counts: the record stays small
        return {k: len(v) if isinstance(v, list) else v for k, v in result.items()}, job_artifacts(job)


# --- 6 evaluate ------------------------------------------------------------------------------------------------------
@register
class Evaluate(JobStep):
    """One evaluation.run job per target, on the dataset's test split.

    The training is the longest step and the fine-tuned evaluation waits for it, so it starts before the other
    evaluations take the heavy slots (start_after); and they wait until it has loaded its model and reports training
    steps (a fresh gpu-lora-trainer process that imports transformers for a training and for a Generate call at the
    same time fails the training with an ImportError). RAG's evaluation (the longest, in another process than the base
    and fine-tuned models' generation) starts first among those ready (priority), so that two at a time overlap best.
    """

    specs = (
        StepSpec(
            eval_step("base"), 6, "evaluate the base model", "evaluator", "evaluation.run", (BUILD,), True, 12, (TRAIN,)
        ),
        StepSpec(
            eval_step("fine_tuned"),
            6,
            "evaluate the fine-tuned model",
            "evaluator",
            "evaluation.run",
            (BUILD, TRAIN),
            True,
            12,
        ),
        StepSpec(
            eval_step("rag"), 6, "evaluate RAG", "evaluator", "evaluation.run", (BUILD, INDEX), True, 12, (TRAIN,), 4
        ),
        StepSpec(
            eval_step("hybrid"),
            6,
            "evaluate the hybrid (RAG's retrieval, the fine-tuned model answers)",
            "evaluator",
            "evaluation.run",
            (BUILD, TRAIN, INDEX),
            True,
            12,
        ),
        # A retraining's champion, asked before the challengers are trained: how stale it is now.
        StepSpec(
            eval_step(CHAMPION), 6, "evaluate the champion", "evaluator", "evaluation.run", (BUILD,), True, 12, (), 3
        ),
        StepSpec(
            eval_step("grounded"),
            6,
            "evaluate grounded answers",
            "evaluator",
            "evaluation.run",
            (BUILD, INDEX),
            False,
            1,
        ),
        # The export's GGUF through llama.cpp in the evaluator: optional like the export it needs.
        StepSpec(
            eval_step("gguf"),
            6,
            "evaluate the exported GGUF (llama.cpp)",
            "evaluator",
            "evaluation.run",
            (BUILD, EXPORT),
            True,
            8,
            optional=True,
        ),
    )

    def plan(self, params: dict[str, Any]) -> list[Step]:
        steps = [new_step(eval_step(target)) for target in params.get("targets") or ()]  # in the order asked
        champion = champion_of(params)
        if champion is not None:  # a retraining: the champion on the same test set, first (its staleness, at once)
            needs = (BUILD, INDEX) if champion.kind in ("rag", "grounded", "hybrid") else (BUILD,)
            steps.insert(0, new_step(eval_step(CHAMPION), needs))
        return steps

    async def submit(self, run: RunContext, step: Step) -> jobs_pb2.Job:
        return await run.peers.evaluator().Evaluate(self.request(run, step), timeout=2 * RPC_TIMEOUT_S)

    @staticmethod
    def target(params: dict[str, Any], approach: str, model_id: str) -> evaluation_pb2.Target:
        if approach == "base" and params.get("base_llm"):
            kind, _, model = params["base_llm"].partition(":")
            return evaluation_pb2.Target(kind=kind, model=model, approach="base")
        if approach == "base":
            return evaluation_pb2.Target(kind="base", model=params.get("base_model") or "default", approach="base")
        if approach == "fine_tuned":
            return evaluation_pb2.Target(kind="lora", model=model_id, approach="fine_tuned")
        if approach == "hybrid":
            return evaluation_pb2.Target(
                kind="hybrid", model=model_id, collection=params["rag_collection"], approach="hybrid"
            )
        mode = "grounded" if approach == "grounded" else params.get("rag_mode") or "auto"
        return evaluation_pb2.Target(
            kind="rag",
            collection=params["rag_collection"],
            llm=params.get("rag_llm", ""),
            approach="grounded" if mode == "grounded" else "rag",
            n_chunks=int(params.get("rag_n_chunks") or 0),
            rag_mode=mode,
        )

    @staticmethod
    def export_target(export: dict[str, Any]) -> evaluation_pb2.Target:
        """The gguf target: the export's GGUF of the first level asked, which the evaluator fetches from the artifact
        store by digest (it shares no folder with model-exporter); the fine-tuning approach, served by llama.cpp."""
        gguf = export.get("gguf") or {}
        if not gguf.get("digest"):
            raise StepFailed("the export left no GGUF to evaluate")
        return evaluation_pb2.Target(
            kind="gguf",
            model=f"{export.get('export_id', 'export')}/{gguf['name']}",
            artifact_digest=gguf["digest"],
            approach="fine_tuned",
        )

    @staticmethod
    def champion_target(champion: ModelRef) -> evaluation_pb2.Target:
        """The champion as the evaluator asks it (a retraining's champion of any kind the evaluator serves)."""
        details = champion.details
        if champion.kind == "lora":
            return evaluation_pb2.Target(kind="lora", model=champion.id, approach="fine_tuned")
        if champion.kind in ("rag", "grounded"):
            mode = "grounded" if champion.kind == "grounded" else str(details.get("rag_mode") or "auto")
            return evaluation_pb2.Target(
                kind="rag",
                collection=champion.id,
                llm=str(details.get("llm") or ""),
                approach="grounded" if mode == "grounded" else "rag",
                rag_mode=mode,
            )
        if champion.kind == "hybrid":
            return evaluation_pb2.Target(
                kind="hybrid",
                model=str(details.get("model_id") or ""),
                collection=str(details.get("collection") or champion.id),
                approach="hybrid",
            )
        if champion.kind == "gguf":
            return evaluation_pb2.Target(kind="gguf", model=champion.id, approach="base")
        raise StepFailed(
            f"the champion {champion.label} cannot be evaluated by a pipeline yet "
            "(lora, rag, grounded, hybrid and gguf champions can)"
        )

    def request(self, run: RunContext, step: Step) -> evaluation_pb2.EvaluateRequest:
        p = run.params
        approach = step["name"].removeprefix("evaluate_")
        if approach == CHAMPION:
            champion = champion_of(p)
            assert champion is not None
            target = self.champion_target(champion)
        elif approach in EXPORT_TARGETS:
            target = self.export_target(run.result_of(EXPORT))
        else:
            model_id = run.result_of(TRAIN).get("model_id", "") if approach in FINE_TUNED_TARGETS else ""
            target = self.target(p, approach, model_id)
        request = evaluation_pb2.EvaluateRequest(
            test_set=evaluation_pb2.TestSet(dataset_id=run.result_of(BUILD)["dataset_id"], split="test"),
            target=target,
            name=TARGET_LABELS[approach],
            max_questions=int(p.get("max_eval_questions") or 0),
            seed=p["seed"],
            max_tokens=int(p.get("eval_max_tokens") or 0),
            catalog=p["catalog"],
            catalog_version=p["catalog_version"],
            skip_similarity=bool(p.get("skip_similarity")),
            correlation_id=run.correlation_id,
            labels={"pipeline": run.pipeline_id, "step": step["name"]},
        )
        if p.get("eval_concurrency"):
            request.concurrency = int(p["eval_concurrency"])
        if p.get("retraining"):  # every question about a changed application, for the champion and each challenger
            request.focus_entity_ids.extend(p["retraining"].get("changed") or ())
        return request

    async def collect(self, run: RunContext, step: Step, job: dict[str, Any]) -> Outcome:
        run_record = await run.peers.evaluator().GetRun(
            evaluation_pb2.GetRunRequest(id=job["id"]), timeout=RPC_TIMEOUT_S
        )
        summary = message_dict(run_record.summary) if run_record.HasField("summary") else {}
        summary = {k: int(v) if k.endswith("_tokens") else v for k, v in summary.items()}  # int64 comes as a string
        result = {
            "run_id": run_record.id or job["id"],
            "model": run_record.model,
            "approach": run_record.approach,
            "summary": summary,
        }
        if step["name"] == eval_step(CHAMPION) and run.decisions is not None:
            result["stale"] = await self.report_stale(run, result["run_id"])
        return result, [message_dict(a) for a in run_record.artifacts] or job_artifacts(job)

    @staticmethod
    async def report_stale(run: RunContext, run_id: str) -> dict[str, int]:
        """model.stale: how many questions about the changed applications the champion now gets wrong."""
        retraining, champion = run.params["retraining"], champion_of(run.params)
        assert champion is not None
        gate = await run.peers.evaluator().Gate(
            evaluation_pb2.GateRequest(
                champion_run_id=run_id, challenger_run_id=run_id, changed_entity_ids=retraining.get("changed") or ()
            ),
            timeout=RPC_TIMEOUT_S,
        )
        questions, wrong = gate.changed.questions, gate.changed.questions - gate.changed.champion_correct
        await run.decisions.report_stale(
            run.params["catalog"], run.params["catalog_version"], champion, questions, wrong, run_id, run.correlation_id
        )
        return {"questions": questions, "wrong": wrong}


# --- 6b gate (retraining only) ---------------------------------------------------------------------------------
@register
class PromotionGate(CallStep):
    """The best challenger against the champion on the same questions (the evaluator's Gate): promoted, or kept as a
    rejected candidate with the gate's reasons. A first champion needs only the policy's minimum accuracy."""

    specs = (StepSpec(GATE, 7, "promotion gate", "evaluator", "", (), False, 1),)  # waits for the evaluations

    def plan(self, params: dict[str, Any]) -> list[Step]:
        if not params.get("retraining"):
            return []
        evaluated = [eval_step(t) for t in params.get("targets") or ()]
        if champion_of(params) is not None:
            evaluated.append(eval_step(CHAMPION))
        return [new_step(GATE, tuple(evaluated))]

    async def call(self, run: RunContext, step: Step) -> Outcome:
        if run.decisions is None:
            raise StepFailed("this gateway runs no retraining: the gate has nowhere to record its decision")
        p, retraining = run.params, run.params["retraining"]
        champion = champion_of(p)
        candidates = [(t, run.result_of(eval_step(t))) for t in p.get("targets") or ()]
        candidates = [(t, r) for t, r in candidates if r.get("run_id")]
        if not candidates:
            raise StepFailed("no challenger was evaluated")
        approach, best = max(candidates, key=lambda c: float((c[1].get("summary") or {}).get("accuracy") or 0.0))
        challenger = self.challenger_ref(run, approach)
        thresholds = retraining.get("thresholds") or {}
        evidence = {
            "pipeline_id": run.pipeline_id,
            "evaluation_run_ids": [r["run_id"] for _, r in candidates],
            "candidates": {t: (r.get("summary") or {}).get("accuracy") for t, r in candidates},
        }
        if challenger.same_system(champion):
            return {
                "decision": "kept",
                "reasons": [f"the best candidate is the champion itself ({champion.label})"],
                "challenger": challenger.label,
            }, []
        await run.decisions.propose(p["catalog"], challenger, run.pipeline_id)
        if champion is None:
            accuracy = float((best.get("summary") or {}).get("accuracy") or 0.0)
            floor = float(thresholds.get("min_accuracy") or 0.0)
            promote = accuracy >= floor
            reasons = [
                f"premier champion : {challenger.label} répond juste à {accuracy:.0%} des questions "
                f"({'au moins' if promote else 'moins que'} le minimum de {floor:.0%})"
            ]
            report: dict[str, Any] = {}
        else:
            champion_run = run.result_of(eval_step(CHAMPION)).get("run_id", "")
            evidence["evaluation_run_ids"].append(champion_run)
            reply = await run.peers.evaluator().Gate(
                evaluation_pb2.GateRequest(
                    champion_run_id=champion_run,
                    challenger_run_id=best["run_id"],
                    changed_entity_ids=retraining.get("changed") or (),
                    thresholds=evaluation_pb2.GateThresholds(**{k: float(v) for k, v in thresholds.items()}),
                ),
                timeout=2 * RPC_TIMEOUT_S,
            )
            report = message_dict(reply)
            promote, reasons = reply.promote, list(reply.reasons) or [reply.summary]
        entry = await run.decisions.decide(
            p["catalog"], promote=promote, target=challenger, reason=" ".join(reasons), evidence=evidence, report=report
        )
        result = {
            "decision": entry["action"],
            "challenger": challenger.label,
            "reasons": reasons,
            "log_seq": entry["seq"],
            "champion": champion.label if champion else None,
        }
        for part in ("changed", "unchanged", "overall"):
            if report.get(part):
                result[part] = report[part]
        return result, []

    @staticmethod
    def challenger_ref(run: RunContext, approach: str) -> ModelRef:
        p = run.params
        version, dataset_id = p["catalog_version"], run.result_of(BUILD).get("dataset_id", "")
        if approach == "fine_tuned":
            return ModelRef(
                "lora",
                run.result_of(TRAIN)["model_id"],
                version,
                {"dataset_id": dataset_id, "base_model": p.get("base_model") or "default"},
            )
        if approach == "hybrid":  # RAG's retrieval as the trained model's context
            model_id = run.result_of(TRAIN)["model_id"]
            details = {"dataset_id": dataset_id, "base_model": p.get("base_model") or "default"}
            return ModelRef(
                "hybrid", model_id, version, details | {"model_id": model_id, "collection": p["rag_collection"]}
            )
        if approach == "grounded":
            return ModelRef("grounded", p["rag_collection"], version, {"dataset_id": dataset_id})
        return ModelRef(
            "rag",
            p["rag_collection"],
            version,
            {"dataset_id": dataset_id, "llm": p.get("rag_llm", ""), "rag_mode": p.get("rag_mode") or "auto"},
        )


def champion_of(params: dict[str, Any]) -> ModelRef | None:
    """A retraining pipeline's champion (None: none yet, or not a retraining)."""
    champion = (params.get("retraining") or {}).get("champion")
    return ModelRef.from_dict(champion) if champion else None


# --- 7 report --------------------------------------------------------------------------------------------------------
@register
class Report(CallStep):
    # Waits for the evaluations planned; compares those that succeeded when the others are optional ones that failed
    # or could not run (the exported GGUF's), and says why each is missing.
    specs = (StepSpec(REPORT, 7, "compare and report", "evaluator", "", (), False, 1, partial=True),)

    @staticmethod
    def compared(params: dict[str, Any]) -> list[str]:
        """The targets the report compares: a retraining's champion first (the baseline), then the challengers."""
        targets = list(params.get("targets") or ())
        return [CHAMPION, *targets] if targets and champion_of(params) is not None else targets

    def plan(self, params: dict[str, Any]) -> list[Step]:
        targets = self.compared(params)
        step = new_step(REPORT, tuple(eval_step(t) for t in targets))
        asked = "report" in (params.get("skip") or ())
        if asked or not targets:
            step.update(status=SKIPPED, note="skipped as asked" if asked else "nothing evaluated")
        return [step]

    @staticmethod
    def missing_note(run: RunContext, target: str) -> str:
        """Why a target is not in the comparison (French, like the report): its evaluation, or the step it needed,
        failed or could not run."""
        evaluation = run.step(eval_step(target))
        if evaluation is None:
            return ""
        why = evaluation["error"] or evaluation["note"] or evaluation["status"]
        for name in evaluation["depends_on"]:
            needed = run.step(name)
            if needed is not None and needed["status"] == FAILED:
                why = f"l'étape {name} a échoué : {needed['error'] or 'sans raison donnée'}"
                break
        return f"La cible « {TARGET_LABELS[target]} » n'est pas dans la comparaison : {why}"

    async def call(self, run: RunContext, step: Step) -> Outcome:
        asked = self.compared(run.params)
        targets = [t for t in asked if run.result_of(eval_step(t)).get("run_id")]
        notes = [note for t in asked if t not in targets and (note := self.missing_note(run, t))]
        if notes and not targets:
            raise StepFailed("nothing to compare: " + " ; ".join(notes))
        runs = [run.result_of(eval_step(t))["run_id"] for t in targets]
        title = f"Dyag — {run.params['catalog']} : " + " / ".join(TARGET_LABELS[t] for t in targets)
        reply = await run.peers.evaluator().Compare(
            evaluation_pb2.CompareRequest(run_ids=runs, baseline=0, title=title, notes=notes),
            timeout=2 * RPC_TIMEOUT_S,
        )
        result = {
            "title": title,
            "notes": notes,
            "run_ids": list(reply.run_ids),
            "names": list(reply.names),
            "baseline": reply.baseline,
            "recommended": reply.recommended,
            "recommendation": reply.recommendation,
            "same_test_set": reply.same_test_set,
            "warnings": list(reply.warnings),
            "markdown": reply.markdown,
            "comparison": json_format.MessageToDict(reply.comparison) if reply.HasField("comparison") else {},
        }
        return result, [message_dict(a) for a in reply.artifacts]
