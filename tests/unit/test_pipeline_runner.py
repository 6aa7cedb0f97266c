"""The pipeline runner's step logic against fake services and a fake record store: a whole run, a failed step,
a resume after a gateway restart (re-attach, adopt), a cancel. No NATS, no services."""

from __future__ import annotations

import asyncio
import copy
import time
from pathlib import Path

import pytest

from dyag.v1 import (
    catalog_pb2,
    dataset_pb2,
    evaluation_pb2,
    export_pb2,
    jobs_pb2,
    rag_pb2,
    training_pb2,
    validation_pb2,
)
from dyag_gateway import pipeline as P
from dyag_gateway.pipeline import PipelineFailed, PipelineRunner, PipelineSettings, trainer_device
from dyag_runtime.contracts import lora_config_dict
from dyag_runtime.jobs import JobCancelled, JobContext, JobNotFound, new_record, record_to_proto
from dyag_runtime.peers import Peers

CATALOG = {"name": "applications_ia", "version": "v1", "entity_count": 45}


class FakeStore:
    """JobStore's get and mutate, in memory."""

    def __init__(self, record: dict):
        self.records = {record["id"]: record}
        self.writes = 0

    async def get(self, job_id: str) -> dict:
        if job_id not in self.records:
            raise JobNotFound(job_id)
        return copy.deepcopy(self.records[job_id])

    async def mutate(self, job_id: str, change, *, emit: bool = True) -> dict:
        record = self.records[job_id]
        change(record)
        self.writes += 1
        return copy.deepcopy(record)


class FakeServices(Peers):
    """Every service the pipeline calls (dyag_runtime.peers' client over fake stubs). A job ends after `polls` reads;
    `fail` names kinds whose job fails."""

    def __init__(self, polls: int = 2, fail: dict[str, str] | None = None, never_end: tuple[str, ...] = ()):
        super().__init__(
            None,
            timeout_s=1.0,  # type: ignore[arg-type]
            services=("dataset-builder", "validator", "gpu-lora-trainer", "rag-service", "evaluator", "model-exporter"),
        )
        self.polls, self.fail, self.never_end = polls, fail or {}, never_end
        self.records: dict[str, dict] = {}
        self.reads: dict[str, int] = {}
        self.calls: list[str] = []
        self.cancelled: list[str] = []
        self.requests: dict = {}  # the last request of each kind
        self.addresses = {n: "10.0.0.1:1" for n in self.services or ()}

    # the job machinery
    def _job(self, service: str, kind: str, params: dict, correlation_id: str, result: dict) -> jobs_pb2.Job:
        record = new_record(service, kind, params, correlation_id)
        record["pending_result"] = result
        self.records[record["id"]] = record
        self.calls.append(kind)
        return record_to_proto(record)

    def _advance(self, job_id: str) -> dict:
        record = self.records[job_id]
        self.reads[job_id] = self.reads.get(job_id, 0) + 1
        if record["status"] in ("queued", "running"):
            if self.reads[job_id] >= self.polls and record["kind"] not in self.never_end:
                if record["kind"] in self.fail:
                    record.update(status="failed", error=self.fail[record["kind"]])
                else:
                    record.update(status="succeeded", result=record["pending_result"])
            else:
                record["status"] = "running"
                record["progress"].update(fraction=0.5, step="half way")
        return record

    def jobs_stub(self, service: str):
        services = self

        class Stub:
            async def GetJob(self, request, timeout=None):  # noqa: N802 - gRPC names
                return record_to_proto(services._advance(request.id))

            async def CancelJob(self, request, timeout=None):  # noqa: N802
                services.cancelled.append(request.id)
                services.records[request.id]["status"] = "cancelled"
                return record_to_proto(services.records[request.id])

            async def ListJobs(self, request, timeout=None):  # noqa: N802
                found = [
                    record_to_proto(r)
                    for r in services.records.values()
                    if r["service"] == service and r["kind"] == request.kind
                ]
                return jobs_pb2.ListJobsResponse(jobs=found)

        return Stub()

    # Peers' interface
    def jobs(self, service: str):  # noqa: D102
        return self.jobs_stub(service)

    def address(self, service: str) -> str:
        return self.addresses[service]

    def datasets(self):
        services = self

        class Stub:
            async def BuildDataset(self, request, timeout=None):  # noqa: N802
                services.requests["dataset.build"] = request
                return services._job(
                    "dataset-builder",
                    "dataset.build",
                    {"n": request.num_questions},
                    request.correlation_id,
                    {"dataset_id": "ds-1", "split_counts": {"train": 8, "test": 2}},
                )

            async def GetDataset(self, request, timeout=None):  # noqa: N802
                files = [
                    dataset_pb2.DatasetFile(
                        split="train", format="openai", artifact=jobs_pb2.ArtifactRef(name="train.jsonl")
                    )
                ]
                return dataset_pb2.Dataset(
                    id=request.id,
                    catalog="applications_ia",
                    catalog_version="v1",
                    files=files,
                    split_counts={"train": 8, "test": 2, "all": 10},
                )

        return Stub()

    def validator(self):
        services = self

        class Stub:
            async def Validate(self, request, timeout=None):  # noqa: N802
                services.calls.append("validate")
                report = {"examples": 8, "invalid_lines": 0, "checklist": [{"status": "pass", "label": "ok"}]}
                result = validation_pb2.ValidationResult(verdict="prêt")
                result.report.update(report)
                return result

        return Stub()

    def trainer(self):
        services = self

        class Stub:
            async def Train(self, request, timeout=None):  # noqa: N802
                services.requests["train.lora"] = request
                config = lora_config_dict(request.config)
                return services._job(
                    "gpu-lora-trainer",
                    "train.lora",
                    {"config": config},
                    request.correlation_id,
                    {"model_id": "lora-1", "metrics": {"steps": 3, "device": "cpu", "final_loss": 1.0}},
                )

        return Stub()

    def rag(self):
        services = self

        class Stub:
            async def Index(self, request, timeout=None):  # noqa: N802
                return services._job(
                    "rag-service",
                    "rag.index",
                    {},
                    request.correlation_id,
                    {"collection": request.collection, "chunks": 228, "added": ["1", "2"]},
                )

            async def Stats(self, request, timeout=None):  # noqa: N802
                return rag_pb2.CollectionStats(collection=request.collection)

        return Stub()

    def evaluator(self):
        services = self

        class Stub:
            async def Evaluate(self, request, timeout=None):  # noqa: N802
                services.requests[request.labels["step"]] = request
                params = {"target": request.target.kind, "labels": dict(request.labels)}
                return services._job("evaluator", "evaluation.run", params, request.correlation_id, {"accuracy": 0.5})

            async def GetRun(self, request, timeout=None):  # noqa: N802
                kind = services.records[request.id]["params"]["target"]
                return evaluation_pb2.EvaluationRun(
                    id=request.id,
                    approach=kind,
                    model=kind,
                    summary=evaluation_pb2.EvaluationSummary(accuracy=0.5, questions=2, prompt_tokens=10),
                )

            async def Gate(self, request, timeout=None):  # noqa: N802
                services.calls.append("gate")
                services.requests["gate"] = request
                changed = evaluation_pb2.SubsetComparison(
                    questions=4,
                    champion_correct=1,
                    challenger_correct=3,
                    champion_accuracy=0.25,
                    challenger_accuracy=0.75,
                    delta=0.5,
                )
                return evaluation_pb2.GateReport(
                    promote=True, decision="promote", reasons=["mieux sur les modifiées"], changed=changed
                )

            async def Compare(self, request, timeout=None):  # noqa: N802
                services.calls.append("compare")
                services.requests["compare"] = request
                return evaluation_pb2.Comparison(
                    run_ids=list(request.run_ids),
                    recommended="rag",
                    recommendation="RAG wins",
                    artifacts=[jobs_pb2.ArtifactRef(name="comparison.html", digest="sha256:" + "0" * 64)],
                )

        return Stub()

    def exporter(self):
        services = self

        class Stub:
            async def Export(self, request, timeout=None):  # noqa: N802
                services.requests["export.gguf"] = request
                return services._job(
                    "model-exporter",
                    "export.gguf",
                    {"model_id": request.model_id, "quantizations": list(request.quantizations)},
                    request.correlation_id,
                    {"export_id": "exp-1", "status": "succeeded", "bundle_dir": "/srv/exporter/exports/exp-1"},
                )

            async def GetExport(self, request, timeout=None):  # noqa: N802
                job = next(j for j in services.records.values() if j["kind"] == "export.gguf")
                return services.export_record(job)

            async def ListExports(self, request, timeout=None):  # noqa: N802
                exports = [services.export_record(j) for j in services.records.values() if j["kind"] == "export.gguf"]
                return export_pb2.ListExportsResponse(exports=[e for e in exports if e.model_id == request.model_id])

        return Stub()

    def export_record(self, job: dict) -> export_pb2.ModelExport:
        """What model-exporter registers for an export job: its files in the artifact store and each level's gate."""
        failed = job["kind"] in self.fail
        files = [
            export_pb2.ExportFile(
                name=f"model-{level}.gguf",
                kind="gguf",
                quantization=level,
                sha256=str(i) * 64,
                size=145_000_000,
                artifact=jobs_pb2.ArtifactRef(name=f"model-{level}.gguf", digest="sha256:" + str(i) * 64),
            )
            for i, level in enumerate(job["params"]["quantizations"], start=1)
        ]
        parity = [
            export_pb2.ParityResult(
                quantization=level,
                passed=not failed,
                failed=["mean_kld"] if failed else [],
                reason="mean KL divergence 0.4 over q8_0's limit 0.05" if failed else "",
                mean_kld=0.4 if failed else 0.0012,
                top1_agreement=0.7 if failed else 0.99,
                scored_tokens=1024,
            )
            for level in job["params"]["quantizations"]
        ]
        return export_pb2.ModelExport(
            id="exp-1",
            status="failed" if failed else "succeeded",
            model_id=job["params"]["model_id"],
            quantizations=job["params"]["quantizations"],
            files=[*files, export_pb2.ExportFile(name="Modelfile", kind="modelfile", sha256="f" * 64, size=300)],
            parity=parity,
            bundle_dir="/srv/exporter/exports/exp-1",
            job_id=job["id"],
        )

    def catalogs(self):
        class Stub:
            async def GetCatalog(self, request, timeout=None):  # noqa: N802
                return catalog_pb2.CatalogVersion(name=request.name, version="v1", entity_count=45)

        return Stub()


SETTINGS = PipelineSettings(pipeline_poll_s=0.005, pipeline_save_s=0.0, pipeline_unreachable_s=1.0, pipeline_device="")


def make(
    body: dict | None = None,
    *,
    steps: list | None = None,
    attempt: int = 1,
    services: FakeServices | None = None,
    tmp: Path = Path("/tmp"),
):
    body = {"catalog": "applications_ia", **(body or {})}
    params = P.resolve_params(P.PipelineRequest(**body), device="cpu", device_source="asked", catalog=CATALOG)
    params["ingest"] = {"status": P.SUCCEEDED, "started_at": 1.0, "ended_at": 1.1, "seconds": 0.1, "result": CATALOG}
    record = new_record(P.PIPELINE_SERVICE, P.PIPELINE_KIND, params, "corr-1")
    if steps is not None:
        record["steps"] = steps
    store, services = FakeStore(record), services or FakeServices()
    runner = PipelineRunner(store, services, SETTINGS)
    ctx = JobContext(
        job_id=record["id"],
        kind=P.PIPELINE_KIND,
        params=params,
        correlation_id="corr-1",
        attempt=attempt,
        workdir=tmp,
        artifacts=None,
    )
    return runner, ctx, store, services


def run(runner, ctx):
    return asyncio.run(asyncio.wait_for(runner.run(ctx), timeout=20))


def saved_steps(store, ctx) -> dict[str, dict]:
    return P.by_name(store.records[ctx.job_id]["steps"])


def test_a_whole_run(tmp_path):
    runner, ctx, store, services = make(tmp=tmp_path)
    result = run(runner, ctx)
    steps = saved_steps(store, ctx)
    assert all(s["status"] == P.SUCCEEDED for s in steps.values()), {
        n: (s["status"], s["error"]) for n, s in steps.items()
    }
    assert steps["build"]["job_id"].startswith("dataset-builder-") and steps["train"]["job_id"].startswith(
        "gpu-lora-trainer-"
    )
    assert steps["train"]["result"]["model_id"] == "lora-1"
    assert steps["index"]["result"]["added"] == 2  # id lists are kept as counts
    assert steps["evaluate_rag"]["result"]["summary"]["prompt_tokens"] == 10
    assert steps["report"]["artifacts"][0]["name"] == "comparison.html"
    assert result["report"]["recommended"] == "rag" and set(result["summaries"]) == {"base", "fine_tuned", "rag"}
    # Every step's job carries the pipeline's correlation id; the training started before the evaluations.
    assert all(j["correlation_id"] == "corr-1" for j in services.records.values())
    assert services.calls.index("train.lora") < services.calls.index("evaluation.run")
    assert services.calls[-1] == "compare"
    train = next(j for j in services.records.values() if j["kind"] == "train.lora")
    assert train["params"]["config"]["max_steps"] == P.DEVICE_DEFAULTS["cpu"]["max_steps"]
    assert all(s["seconds"] is not None for s in steps.values())
    assert steps["train"]["job_started_at"] and steps["train"]["queued_s"] >= 0  # when its job left the trainer's queue
    # On a CPU the base target is the CPU model through llama.cpp in the evaluator; the fine-tuned one, the LoRA model
    targets = sorted(j["params"]["target"] for j in services.records.values() if j["kind"] == "evaluation.run")
    assert targets == ["gguf", "lora", "rag"]


def test_the_base_target_can_be_the_fine_tuning_s_own_base_model(tmp_path):
    runner, ctx, store, services = make({"base_llm": ""}, tmp=tmp_path)
    run(runner, ctx)
    targets = sorted(j["params"]["target"] for j in services.records.values() if j["kind"] == "evaluation.run")
    assert targets == ["base", "lora", "rag"]


def test_a_failed_step_fails_the_pipeline_and_keeps_what_is_done(tmp_path):
    services = FakeServices(fail={"train.lora": "examples_too_long: example 12 has 900 tokens (max_seq_len 256)"})
    runner, ctx, store, _ = make(tmp=tmp_path, services=services)
    with pytest.raises(PipelineFailed) as caught:
        run(runner, ctx)
    assert "step 4 train (fine-tune (LoRA), job gpu-lora-trainer-" in caught.value.message
    assert "examples_too_long: example 12" in caught.value.message
    steps = saved_steps(store, ctx)
    assert steps["train"]["status"] == P.FAILED and steps["train"]["error"].startswith("examples_too_long")
    assert steps["build"]["status"] == steps["validate"]["status"] == P.SUCCEEDED
    assert steps["evaluate_fine_tuned"]["status"] == steps["report"]["status"] == P.BLOCKED
    assert "evaluation.run" not in services.calls or steps["evaluate_base"]["status"] == P.SUCCEEDED


def test_an_unusable_dataset_stops_before_training(tmp_path):
    services = FakeServices()

    class Refusing:
        async def Validate(self, request, timeout=None):  # noqa: N802
            return validation_pb2.ValidationResult(verdict="à corriger", blocking=["3 ligne(s) invalide(s)"])

    services.validator = lambda: Refusing()
    runner, ctx, store, _ = make({"skip": ["evaluate"]}, tmp=tmp_path, services=services)
    with pytest.raises(PipelineFailed) as caught:
        run(runner, ctx)
    assert "step 3 validate" in caught.value.message and "3 ligne(s) invalide(s)" in caught.value.message
    assert "train.lora" not in services.calls


def _half_done_steps(train_job: str = "") -> tuple[list[dict], FakeServices]:
    """The record as a gateway left it when it stopped: build and validate done, the training running."""
    services = FakeServices(polls=3)
    steps = P.plan_steps(make()[1].params, {"status": P.SUCCEEDED})
    index = P.by_name(steps)
    for name, result in (("build", {"dataset_id": "ds-1"}), ("validate", {"verdict": "prêt"})):
        P.start_step(index[name], time.time() - 60)
        P.end_step(index[name], P.SUCCEEDED, time.time() - 50, result=result)
    P.start_step(index["train"], time.time() - 40)
    index["train"]["job_id"] = train_job
    return steps, services


def test_resume_re_attaches_to_the_running_job(tmp_path):
    steps, services = _half_done_steps()
    running = services.trainer()
    job = asyncio.run(
        running.Train(training_pb2.LoraTrainRequest(correlation_id="corr-1"))
    )  # the job the service kept running
    P.by_name(steps)["train"]["job_id"] = job.id
    calls_before = services.calls.count("train.lora")
    runner, ctx, store, _ = make(steps=steps, attempt=2, services=services, tmp=tmp_path)
    run(runner, ctx)
    after = saved_steps(store, ctx)
    assert services.calls.count("train.lora") == calls_before == 1  # not started again
    assert after["train"]["job_id"] == job.id and after["train"]["status"] == P.SUCCEEDED
    assert services.calls.count("dataset.build") == 0 and "validate" not in services.calls  # done steps stay done
    assert after["report"]["status"] == P.SUCCEEDED


def test_resume_adopts_a_job_started_before_its_id_was_recorded(tmp_path):
    steps, services = _half_done_steps(train_job="")
    orphan = asyncio.run(services.trainer().Train(training_pb2.LoraTrainRequest(correlation_id="corr-1")))
    asyncio.run(services.trainer().Train(training_pb2.LoraTrainRequest(correlation_id="another-pipeline")))
    runner, ctx, store, _ = make({"skip": ["evaluate"]}, steps=steps, attempt=2, services=services, tmp=tmp_path)
    run(runner, ctx)
    assert saved_steps(store, ctx)["train"]["job_id"] == orphan.id
    assert services.calls.count("train.lora") == 2  # the two above: none started by the resume


def test_cancel_cancels_the_running_jobs(tmp_path):
    services = FakeServices(never_end=("train.lora", "evaluation.run"))
    runner, ctx, store, _ = make(tmp=tmp_path, services=services)

    async def scenario():
        task = asyncio.create_task(runner.run(ctx))
        while not [j for j in services.records.values() if j["kind"] == "train.lora"]:
            await asyncio.sleep(0.01)
        ctx._cancel.set()
        with pytest.raises(JobCancelled):
            await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
    steps = saved_steps(store, ctx)
    assert steps["train"]["status"] == P.CANCELLED and steps["train"]["job_id"] in services.cancelled
    assert steps["build"]["status"] == P.SUCCEEDED
    assert steps["report"]["status"] == P.BLOCKED


def test_device_defaults(tmp_path, monkeypatch):
    runner, _, _, services = make(tmp=tmp_path)
    assert asyncio.run(trainer_device(services, SETTINGS, "cuda")) == ("cuda", "asked")
    assert asyncio.run(trainer_device(services, PipelineSettings(pipeline_device="cuda"), "auto")) == (
        "cuda",
        "DYAG_PIPELINE_DEVICE",
    )
    assert (
        asyncio.run(trainer_device(services, SETTINGS, "auto"))[0] == "cpu"
    )  # the trainer is remote and has trained nothing yet
    job = services._job("gpu-lora-trainer", "train.lora", {}, "c", {})
    services.records[job.id].update(status="succeeded", result={"model_id": "m", "metrics": {"device": "cuda"}})

    class Listing:
        async def ListJobs(self, request, timeout=None):  # noqa: N802
            return jobs_pb2.ListJobsResponse(jobs=[record_to_proto(services.records[job.id])])

    services.jobs = lambda service, _listing=Listing(): _listing  # type: ignore[assignment,method-assign]
    assert asyncio.run(trainer_device(services, SETTINGS, "auto")) == (
        "cuda",
        f"the trainer's last training ({job.id})",
    )


class FakeDecisions:
    """The retraining facade, as the gate step and the champion's evaluation see it."""

    def __init__(self):
        self.proposed, self.decided, self.stale = [], [], []

    async def propose(self, catalog, target, pipeline_id):
        self.proposed.append(target)

    async def decide(self, catalog, *, promote, target, reason, evidence, report=None):
        self.decided.append((promote, target, reason, evidence))
        return {"action": "promoted" if promote else "rejected", "seq": len(self.decided)}

    async def report_stale(self, catalog, version, champion, questions, wrong, run_id, correlation_id):
        self.stale.append((champion.label, questions, wrong))


CHAMPION = {
    "kind": "lora",
    "id": "lora-0",
    "catalog_version": "v0",
    "details": {"dataset_id": "ds-0", "base_model": "default"},
}


def retraining(tmp: Path, champion: dict | None = CHAMPION):
    runner, ctx, store, services = make({"targets": ["fine_tuned"]}, tmp=tmp)
    context = {
        "champion": champion,
        "changed": ["1004", "1017"],
        "removed": [],
        "from_version": "v0",
        "thresholds": {"min_absolute": 0.1},
        "replay_fraction": 0.5,
        "reason": "catalog changed",
    }
    store.records[ctx.job_id]["params"]["retraining"] = ctx.params["retraining"] = context
    runner.decisions = FakeDecisions()
    return runner, ctx, store, services


def test_a_retraining_asks_the_champion_first_then_gates_the_challenger(tmp_path):
    runner, ctx, store, services = retraining(tmp_path)
    run(runner, ctx)
    steps = saved_steps(store, ctx)
    assert list(steps) == [
        "ingest",
        "build",
        "validate",
        "train",
        "index",
        "evaluate_champion",
        "evaluate_fine_tuned",
        "gate",
        "report",
    ]
    assert all(s["status"] in (P.SUCCEEDED, P.SKIPPED) for s in steps.values()), steps
    evaluations = [j for j in services.records.values() if j["kind"] == "evaluation.run"]
    assert [j["params"]["target"] for j in evaluations] == ["lora", "lora"]  # the champion's, before the training's
    assert services.calls.index("evaluation.run") < services.calls.index("train.lora")
    build = services.requests["dataset.build"]  # rebuilt from the champion's dataset, focused on the changes
    assert build.base_dataset_id == "ds-0" and list(build.focus_entity_ids) == ["1004", "1017"]
    assert build.replay_fraction == 0.5
    assert services.requests["train.lora"].init_model_id == "lora-0"  # from the champion's adapter
    gate = services.requests["gate"]
    assert list(gate.changed_entity_ids) == ["1004", "1017"] and gate.thresholds.min_absolute == 0.1
    promote, target, reason, evidence = runner.decisions.decided[0]
    assert promote and target.label == "lora:lora-1" and reason == "mieux sur les modifiées"
    assert evidence["pipeline_id"] == ctx.job_id and len(evidence["evaluation_run_ids"]) == 2
    assert runner.decisions.stale == [("lora:lora-0", 4, 3)]  # the Gate stub: 4 changed questions, 1 right
    assert steps["gate"]["result"]["decision"] == "promoted"


def test_a_first_champion_needs_only_the_minimum_accuracy(tmp_path):
    runner, ctx, store, services = retraining(tmp_path, champion=None)
    run(runner, ctx)
    steps = saved_steps(store, ctx)
    assert "evaluate_champion" not in steps and "gate" not in services.calls
    build = services.requests["dataset.build"]
    assert build.base_dataset_id == "" and list(build.focus_entity_ids) == []  # the whole catalog
    assert services.requests["train.lora"].init_model_id == ""
    promote, target, reason, _ = runner.decisions.decided[0]
    assert promote and "premier champion" in reason and target.details["dataset_id"] == "ds-1"


def test_a_champion_on_another_base_model_is_not_continued(tmp_path):
    other = {**CHAMPION, "details": {"dataset_id": "ds-0", "base_model": "qwen2.5-0.5b"}}
    runner, ctx, _, services = retraining(tmp_path, champion=other)
    run(runner, ctx)
    assert services.requests["train.lora"].init_model_id == ""


def test_a_hybrid_competes_the_trained_model_answering_with_rag_s_retrieval(tmp_path):
    hybrid = {
        "kind": "hybrid",
        "id": "lora-0",
        "catalog_version": "v0",
        "details": {"dataset_id": "ds-0", "base_model": "default", "model_id": "lora-0", "collection": "apps"},
    }
    runner, ctx, store, services = retraining(tmp_path, champion=hybrid)
    for params in (ctx.params, store.records[ctx.job_id]["params"]):
        params["targets"] = ["hybrid"]
    run(runner, ctx)
    steps = saved_steps(store, ctx)
    assert [n for n in steps if n.startswith("evaluate_")] == ["evaluate_champion", "evaluate_hybrid"]
    assert steps["index"]["status"] == P.SUCCEEDED  # the hybrid needs the RAG collection
    evaluations = [j for j in services.records.values() if j["kind"] == "evaluation.run"]
    assert [j["params"]["target"] for j in evaluations] == ["hybrid", "hybrid"]
    assert services.requests["train.lora"].init_model_id == "lora-0"  # from the champion's adapter
    promote, target, _, _ = runner.decisions.decided[0]
    assert promote and target.kind == "hybrid" and target.id == target.details["model_id"] == "lora-1"
    assert target.details["collection"] == ctx.params["rag_collection"]


def test_the_hybrid_target_needs_a_model_like_the_fine_tuned_one():
    with pytest.raises(ValueError, match="hybrid target needs model_id"):
        P.PipelineRequest(catalog="a", targets=["hybrid"], skip=["train"])
    request = P.PipelineRequest(catalog="a", targets=["hybrid"], skip=["train"], model_id="lora-1")
    assert P.RAG_TARGETS & set(request.targets) and P.FINE_TUNED_TARGETS & set(request.targets)


# --- the export (dyag run --export q8_0) ------------------------------------------------------------------------------


def test_an_export_after_the_training_is_compared_as_the_gguf_target(tmp_path):
    runner, ctx, store, services = make({"export": ["q8_0", "f16"]}, tmp=tmp_path)
    result = run(runner, ctx)
    steps = saved_steps(store, ctx)
    assert all(s["status"] == P.SUCCEEDED for s in steps.values()), {
        n: (s["status"], s["error"]) for n, s in steps.items()
    }
    asked = services.requests["export.gguf"]  # the trained model, the levels asked, the pipeline's correlation id
    assert asked.model_id == "lora-1" and list(asked.quantizations) == ["q8_0", "f16"]
    assert asked.correlation_id == "corr-1" and not asked.ollama_name
    assert services.calls.index("train.lora") < services.calls.index("export.gguf")
    export = steps["export"]
    assert export["job_id"].startswith("model-exporter-") and export["result"]["export_id"] == "exp-1"
    assert [(p["quantization"], p["passed"]) for p in export["result"]["parity"]] == [("q8_0", True), ("f16", True)]
    assert export["result"]["parity"][0]["mean_kld"] == pytest.approx(0.0012)
    assert {f["name"] for f in export["result"]["files"]} == {"model-q8_0.gguf", "model-f16.gguf", "Modelfile"}
    # The gguf target: the first level's GGUF, which the evaluator fetches from the artifact store by its digest.
    assert export["result"]["gguf"] == {
        "name": "model-q8_0.gguf",
        "kind": "gguf",
        "quantization": "q8_0",
        "size": 145_000_000,
        "digest": "sha256:" + "1" * 64,
    }
    target = services.requests["evaluate_gguf"].target
    assert (target.kind, target.model, target.artifact_digest, target.approach) == (
        "gguf",
        "exp-1/model-q8_0.gguf",
        "sha256:" + "1" * 64,
        "fine_tuned",
    )
    assert services.requests["evaluate_gguf"].name == P.TARGET_LABELS["gguf"]
    compared = services.requests["compare"]
    assert len(compared.run_ids) == 4 and list(compared.notes) == []
    assert compared.run_ids[-1] == steps["evaluate_gguf"]["result"]["run_id"]
    assert set(result["summaries"]) == {"base", "fine_tuned", "rag", "gguf"} and result["export_id"] == "exp-1"


def test_a_failed_parity_gate_fails_the_export_and_the_rest_goes_on_without_the_gguf(tmp_path):
    reason = (
        "parity gate failed for q8_0: mean KL divergence 0.4 over q8_0's limit 0.05 (export exp-1 is in the "
        "registry, marked failed)"
    )
    services = FakeServices(fail={"export.gguf": reason})
    runner, ctx, store, _ = make({"export": ["q8_0"]}, tmp=tmp_path, services=services)
    with pytest.raises(PipelineFailed) as caught:
        run(runner, ctx)
    assert caught.value.message.startswith("step 4 export (export the model (GGUF), job model-exporter-")
    assert reason in caught.value.message and "mean KL divergence" in caught.value.message  # the failed measure
    steps = saved_steps(store, ctx)
    export = steps["export"]
    assert export["status"] == P.FAILED and export["error"] == reason
    # What the exporter registered stays in the step: the export, its files, each level's verdict.
    assert export["result"]["export_id"] == "exp-1" and export["result"]["status"] == "failed"
    assert export["result"]["parity"][0]["passed"] is False and export["result"]["parity"][0]["failed"] == ["mean_kld"]
    # The gguf target is not evaluated; the others are, and the report compares them, saying why the GGUF is missing.
    assert steps["evaluate_gguf"]["status"] == P.BLOCKED and "export failed" in steps["evaluate_gguf"]["note"]
    assert "evaluate_gguf" not in services.requests
    assert all(steps[f"evaluate_{t}"]["status"] == P.SUCCEEDED for t in ("base", "fine_tuned", "rag"))
    assert steps["report"]["status"] == P.SUCCEEDED
    compared = services.requests["compare"]
    assert len(compared.run_ids) == 3
    [note] = compared.notes
    assert note.startswith("La cible « exported GGUF (llama.cpp) » n'est pas dans la comparaison : l'étape export")
    assert reason in note and steps["report"]["result"]["notes"] == [note]
    assert "exported GGUF" not in steps["report"]["result"]["title"]
    assert P.view(store.records[ctx.job_id] | {"status": "failed"})["report"]["recommended"] == "rag"


def test_an_export_resumes_on_its_job_after_a_gateway_restart(tmp_path):
    services = FakeServices(polls=3)
    runner, ctx, store, _ = make({"export": ["q8_0"], "targets": ["gguf"], "skip": ["index"]}, services=services)
    steps = P.plan_steps(ctx.params, ctx.params["ingest"])
    index = P.by_name(steps)
    for name, result in (("build", {"dataset_id": "ds-1"}), ("validate", {}), ("train", {"model_id": "lora-1"})):
        P.start_step(index[name], time.time() - 60)
        P.end_step(index[name], P.SUCCEEDED, time.time() - 50, result=result)
    job = asyncio.run(
        services.exporter().Export(
            export_pb2.ExportRequest(model_id="lora-1", quantizations=["q8_0"], correlation_id="corr-1")
        )
    )
    P.start_step(index["export"], time.time() - 40)
    index["export"]["job_id"] = job.id  # the exporter kept running it while the gateway restarted
    runner, ctx, store, _ = make(
        {"export": ["q8_0"], "targets": ["gguf"], "skip": ["index"]},
        steps=steps,
        attempt=2,
        services=services,
        tmp=tmp_path,
    )
    run(runner, ctx)
    after = saved_steps(store, ctx)
    assert services.calls.count("export.gguf") == 1 and after["export"]["job_id"] == job.id
    assert after["export"]["status"] == after["evaluate_gguf"]["status"] == P.SUCCEEDED
