"""Runs pipelines: each one is a job of the gateway, its record in the KV bucket "pipelines".

dyag_runtime's JobStore keeps the record (compare-and-set, across restarts) and its JobWorker runs it from the work
queue "dyag.jobs.pipeline": while a gateway runs a pipeline it heart-beats; if that gateway stops, JetStream hands
the pipeline to the next gateway (the same one restarted, or another replica) once DYAG_JOB_ACK_WAIT_S passes, and
`PipelineRunner.run` resumes it from the record: steps that ended stay ended, a step whose job was running is
re-attached to that job (the owning service kept it running), a step that had not got its job id yet adopts the job
it finds by correlation id, or starts again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from pydantic_settings import BaseSettings, SettingsConfigDict

from dyag.v1 import catalog_pb2, dataset_pb2, evaluation_pb2, evaluation_pb2_grpc, jobs_pb2, rag_pb2, training_pb2, validation_pb2
from dyag_core.dataset.generate import MOST_VARIATIONS
from dyag_gateway import pipelines as P
from dyag_gateway.backends import Backends
from dyag_gateway.errors import ApiError, api_error_of
from dyag_runtime.events import EventBus
from dyag_runtime.jobs import TERMINAL, JobCancelled, JobContext, JobNotFound, JobStore, JobWorker, proto_to_dict
from dyag_runtime.peers import split_source

log = logging.getLogger(__name__)


class PipelineSettings(BaseSettings):
    """DYAG_* settings of the pipelines (the job timings are the services' own variables)."""

    model_config = SettingsConfigDict(env_prefix="DYAG_", env_file=".env", extra="ignore")

    job_ack_wait_s: float = 30.0  # a gateway that stops heart-beating for this long loses its pipelines to the next one
    job_heartbeat_s: float = 5.0
    pipeline_max_attempts: int = 10  # gateway restarts a pipeline survives
    # Pipelines one gateway runs at once; the others wait in the queue (status "queued"), oldest first. One: a pipeline
    # keeps a CPU machine busy.
    pipeline_concurrency: int = 1
    pipeline_poll_s: float = 1.0  # how often a running step's job is read
    pipeline_save_s: float = 2.0  # how often a running step's progress is written to the record
    pipeline_unreachable_s: float = 600.0  # a step's service may be unreachable this long before the step fails
    pipeline_device: str = ""  # cpu | cuda: size the defaults for this device instead of asking the trainer
    pipeline_data_dir: Path = Path(os.environ.get("TMPDIR", "/tmp")) / "dyag-gateway"


class StepFailed(Exception):
    def __init__(self, message: str, result: dict[str, Any] | None = None, artifacts: list | None = None):
        super().__init__(message)
        self.message, self.result, self.artifacts = message, result or {}, artifacts


class PipelineFailed(Exception):
    """Ends the pipeline's job failed; `message` (the failed step and its error) becomes the job's error."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def _message_dict(message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _job_artifacts(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(a) for a in job.get("artifacts", [])]


class Pipelines:
    """The gateway's pipelines: create, read, list, cancel; and the worker that runs them."""

    def __init__(self, bus: EventBus, store: JobStore, backends: Backends, settings: PipelineSettings, grpc_timeout: float):
        self.bus, self.store, self.backends, self.settings = bus, store, backends, settings
        self.grpc_timeout = grpc_timeout
        self.runner = PipelineRunner(store, backends, settings)
        self.worker = JobWorker(
            store, {P.PIPELINE_KIND: self.runner.run}, artifacts=None, data_dir=settings.pipeline_data_dir,  # type: ignore[arg-type]
            ack_wait=settings.job_ack_wait_s, heartbeat=settings.job_heartbeat_s,
            max_attempts=settings.pipeline_max_attempts, concurrency=settings.pipeline_concurrency,
        )

    @classmethod
    async def start(cls, nc, backends: Backends, grpc_timeout: float, settings: PipelineSettings | None = None) -> Pipelines:
        settings = settings or PipelineSettings()
        bus = EventBus(nc, nc.jetstream(), "gateway")
        await bus.ensure_streams()
        store = JobStore(await bus.key_value(P.PIPELINE_BUCKET), bus, P.PIPELINE_SERVICE)
        self = cls(bus, store, backends, settings, grpc_timeout)
        await self.worker.start()
        return self

    async def close(self) -> None:
        """Stop running pipelines without ending them: the next gateway resumes them."""
        for task in self.bus._tasks:
            task.cancel()
        await asyncio.gather(*self.bus._tasks, return_exceptions=True)

    # --- reading ------------------------------------------------------------------------------------------------
    async def get(self, pipeline_id: str) -> dict[str, Any]:
        try:
            return await self.store.get(pipeline_id)
        except JobNotFound:
            raise ApiError(404, "pipeline_not_found", f"pipeline {pipeline_id!r} not found (GET /pipelines lists them)") from None

    async def list(self, status: str = "", limit: int = 50) -> list[dict[str, Any]]:
        return await self.store.list(status=status, limit=limit)

    def view(self, record: dict[str, Any]) -> dict[str, Any]:
        return P.view(record, stale_after=max(3 * self.settings.job_heartbeat_s, self.settings.job_ack_wait_s))

    async def cancel(self, pipeline_id: str) -> dict[str, Any]:
        record = await self.get(pipeline_id)
        if record["status"] in TERMINAL:
            raise ApiError(409, "pipeline_ended", f"pipeline {pipeline_id} already ended ({record['status']}): nothing to cancel")
        return await self.store.request_cancel(pipeline_id)

    # --- creating -----------------------------------------------------------------------------------------------
    async def create(self, request: P.PipelineRequest, *, upload_limit: int, correlation_id: str = "") -> dict[str, Any]:
        """Check everything that can be checked now, ingest the catalog (step 1), and queue the pipeline."""
        correlation_id = correlation_id or uuid.uuid4().hex
        needed = {"dataset-builder", "validator"}
        needed |= set() if "train" in request.skip else {"gpu-lora-trainer"}
        evaluating = "evaluate" not in request.skip
        if evaluating:
            needed |= {"evaluator"} | ({"rag-service"} if P.RAG_TARGETS & set(request.targets) else set())
            on_trainer = {"fine_tuned"} | ({"base"} if not request.base_llm else set())  # base_llm unset: the device decides
            needed |= {"gpu-lora-trainer"} if on_trainer & set(request.targets) else set()
        if "index" not in request.skip and (not evaluating or P.RAG_TARGETS & set(request.targets)):
            needed.add("rag-service")
        missing = sorted(n for n in needed if n not in self.backends.channels)
        if missing:
            raise ApiError(503, "service_not_deployed", f"this pipeline needs {', '.join(missing)}, which this deployment does not run "
                                                         "(DYAG_SERVICES); skip the steps that need them")
        if request.model_id:
            await self.backends.trainer().GetModel(training_pb2.GetLoraModelRequest(id=request.model_id), timeout=self.grpc_timeout)
        device, source = await self.runner.device(request.device)
        if "train" not in request.skip:  # a bad training option is refused now, before anything is stored or run
            from dyag_core.training import TrainingConfig, TrainingInputError

            budget = request.model_dump() | {"max_steps": P.DEVICE_DEFAULTS[device]["max_steps"] if request.max_steps is None else request.max_steps}
            try:
                TrainingConfig.from_dict(P.training_config(budget))
            except TrainingInputError as exc:
                raise ApiError(422, exc.code, exc.message) from None
        ingest = await self._ingest(request, upload_limit, correlation_id)
        catalog = ingest["result"]
        params = P.resolve_params(request, device=device, device_source=source, catalog=catalog)
        if "index" in request.skip and P.RAG_TARGETS & set(params["targets"]):  # the collection must exist already
            await self.backends.rag().Stats(rag_pb2.StatsRequest(collection=params["rag_collection"]), timeout=self.grpc_timeout)
        params["ingest"] = ingest
        record = await self.store.submit(P.PIPELINE_KIND, params, correlation_id)
        return record

    async def _ingest(self, request: P.PipelineRequest, limit: int, correlation_id: str) -> dict[str, Any]:
        """Step 1: store the catalog (a new version, or the current one unchanged), or find the stored one."""
        began = time.time()
        if request.has_content():
            if request.catalog_base64:
                try:
                    content = base64.b64decode(request.catalog_base64, validate=True)
                except (binascii.Error, ValueError):
                    raise ApiError(422, "invalid_catalog_base64", "catalog_base64 is not valid base64") from None
            else:
                content = request.catalog_content.encode()
            if len(content) > limit:
                raise ApiError(413, "too_large", f"the catalog has {len(content):,} bytes, over the upload limit of {limit:,} "
                                                 "(DYAG_MAX_UPLOAD_BYTES)")
            if not content.strip():
                raise ApiError(422, "empty_catalog", "the catalog content is empty")
            from dyag_core.catalog.names import default_name

            name = request.catalog or default_name(request.catalog_filename or "catalog")
            try:
                version = await self.backends.catalogs().IngestCatalog(
                    catalog_pb2.IngestCatalogRequest(name=name, content=content, filename=request.catalog_filename,
                                                     correlation_id=correlation_id),
                    timeout=self.grpc_timeout,
                )
            except grpc.aio.AioRpcError as exc:
                raise _api_error(exc, f"catalog {name!r} ({request.catalog_filename or 'catalog_content'}): ") from None
            note = "unchanged: the current version" if version.unchanged else "stored a new version"
        else:
            version = await self.backends.catalogs().GetCatalog(
                catalog_pb2.GetCatalogRequest(name=request.catalog, version=request.catalog_version), timeout=self.grpc_timeout)
            note = "already stored"
        ended = time.time()
        return {
            "status": P.SUCCEEDED, "started_at": began, "ended_at": ended, "seconds": round(ended - began, 2), "note": note,
            "result": {"name": version.name, "version": version.version, "entity_count": version.entity_count,
                       "added": len(version.added), "changed": len(version.changed), "removed": len(version.removed),
                       "unchanged": version.unchanged, "warnings": list(version.warnings)[:10]},
            "artifacts": [_message_dict(version.artifact)] if version.HasField("artifact") else [],
        }

    # --- reports ------------------------------------------------------------------------------------------------
    async def report(self, pipeline_id: str, fmt: str) -> tuple[bytes, str, str]:
        """The comparison report of a pipeline: (content, media type, file name). The Markdown and the JSON are in the
        record; the HTML page (charts, hundreds of kB) is rendered again by the evaluator from the same runs."""
        record = await self.get(pipeline_id)
        report = P.by_name(record.get("steps") or []).get(P.REPORT)
        if not report or report["status"] != P.SUCCEEDED:
            where = report["status"] if report else "not planned"
            raise ApiError(404, "report_not_ready", f"pipeline {pipeline_id} has no comparison report (its report step is {where})")
        r = report["result"]
        if fmt == "md":
            return r.get("markdown", "").encode(), "text/markdown; charset=utf-8", "comparison.md"
        if fmt == "json":
            return json.dumps(r.get("comparison") or {}, ensure_ascii=False, indent=2).encode(), "application/json", "comparison.json"
        reply = await self.backends.evaluator().Compare(
            evaluation_pb2.CompareRequest(run_ids=r.get("run_ids") or [], baseline=int(r.get("baseline") or 0), title=r.get("title", "")),
            timeout=self.grpc_timeout)
        return reply.html.encode(), "text/html; charset=utf-8", "comparison.html"


class PipelineRunner:
    """The handler of "pipeline.run" jobs: starts each step when it can, follows its job, records everything."""

    def __init__(self, store: JobStore, backends: Backends, settings: PipelineSettings):
        self.store, self.backends, self.settings = store, backends, settings

    # --- the device the defaults are sized for -------------------------------------------------------------------
    async def device(self, asked: str) -> tuple[str, str]:
        """(device, why): asked, DYAG_PIPELINE_DEVICE, a GPU beside a local trainer, the trainer's last training, else cpu."""
        if asked in ("cpu", "cuda"):
            return asked, "asked"
        if self.settings.pipeline_device in ("cpu", "cuda"):
            return self.settings.pipeline_device, "DYAG_PIPELINE_DEVICE"
        if "gpu-lora-trainer" not in self.backends.channels:
            return "cpu", "no trainer"
        address = self.backends.addresses.get("gpu-lora-trainer", "")
        if address.split(":")[0] in ("127.0.0.1", "localhost", "::1", "[::1]") and _local_nvidia_gpu():
            return "cuda", "an NVIDIA GPU on the trainer's host"
        try:
            reply = await self.backends.jobs("gpu-lora-trainer").ListJobs(
                jobs_pb2.ListJobsRequest(kind="train.lora", status=jobs_pb2.JOB_STATUS_SUCCEEDED, limit=1), timeout=10)
        except grpc.aio.AioRpcError:
            return "cpu", "the trainer did not answer"
        for job in reply.jobs:
            device = proto_to_dict(job).get("result", {}).get("metrics", {}).get("device")
            if device in ("cpu", "cuda"):
                return device, f"the trainer's last training ({job.id})"
        return "cpu", "no GPU seen"

    # --- the job -------------------------------------------------------------------------------------------------
    async def run(self, ctx: JobContext) -> dict[str, Any]:
        record = await self.store.get(ctx.job_id)
        params = record["params"]
        run = _Run(self, ctx, params, copy.deepcopy(record.get("steps") or P.plan_steps(params, params.get("ingest"))))
        return await run.go()


def _api_error(exc: grpc.aio.AioRpcError, prefix: str) -> ApiError:
    """A service's refusal as the gateway's error, its message saying what it was about."""
    return api_error_of(exc, prefix)


def _local_nvidia_gpu() -> bool:
    try:
        return any(Path("/proc/driver/nvidia/gpus").iterdir())
    except OSError:
        return False


class _Run:
    """One pipeline being run (or resumed) by this gateway."""

    def __init__(self, runner: PipelineRunner, ctx: JobContext, params: dict[str, Any], steps: list[dict[str, Any]]):
        self.runner, self.ctx, self.params, self.steps = runner, ctx, params, steps
        self.store, self.backends, self.settings = runner.store, runner.backends, runner.settings
        self.index = P.by_name(steps)
        self.tasks: dict[asyncio.Task, str] = {}
        self._last_save: dict[str, float] = {}

    # --- the loop ------------------------------------------------------------------------------------------------
    async def go(self) -> dict[str, Any]:
        if self.ctx.resumed:
            running = P.to_resume(self.steps)
            self.ctx.log(f"resumed (attempt {self.ctx.attempt}) after a gateway stopped: "
                         + (f"re-attaching to {', '.join(running)}" if running else "no step was running"), "warning")
        else:
            self.ctx.log(f"pipeline on catalog {self.params['catalog']} version {self.params['catalog_version']} "
                         f"(defaults for {self.params['device']}: {self.params['device_source']})")
        await self.save()
        for name in P.to_resume(self.steps):
            self._launch(name, resume=True)
        try:
            while True:
                if self.ctx.cancelled:
                    await self._cancel()
                for name in P.ready_steps(self.steps, int(self.params.get("max_parallel") or 1), bool(self.params.get("train_alone"))):
                    self._launch(name, resume=False)
                if P.block_unreachable(self.steps, time.time()):
                    await self.save()
                if not self.tasks:
                    break
                done, _ = await asyncio.wait(self.tasks, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    name = self.tasks.pop(task)
                    if not task.cancelled() and (exc := task.exception()) is not None:  # a bug, not a step's failure
                        log.error("pipeline step crashed", exc_info=exc, extra={"pipeline_id": self.ctx.job_id, "step": name})
                        P.end_step(self.index[name], P.FAILED, time.time(), error=f"{type(exc).__name__}: {exc}")
                        await self.save()
        finally:
            for task in self.tasks:  # the gateway is stopping: the steps' jobs go on; the next gateway re-attaches
                task.cancel()
        status = P.outcome(self.steps)
        self.report_progress()
        if status == P.SUCCEEDED:
            return self.result()
        if status == P.CANCELLED:
            raise JobCancelled(self.ctx.job_id)
        raise PipelineFailed(P.failure_message(self.steps))

    def _launch(self, name: str, *, resume: bool) -> None:
        step = self.index[name]
        if not resume:
            P.start_step(step, time.time())
        task = asyncio.create_task(self._run_step(step, resume), name=f"pipeline:{self.ctx.job_id}:{name}")
        self.tasks[task] = name

    async def _cancel(self) -> None:
        self.ctx.log("cancel requested: cancelling the running steps' jobs")
        for task, name in list(self.tasks.items()):
            step = self.index[name]
            if step["job_id"]:
                try:
                    await self.backends.jobs(step["service"]).CancelJob(jobs_pb2.CancelJobRequest(id=step["job_id"]), timeout=30)
                except grpc.aio.AioRpcError as exc:
                    self.ctx.log(f"could not cancel {step['job_id']}: {exc.details()}", "warning")
            task.cancel()
            P.end_step(step, P.CANCELLED, time.time(), error="cancelled with the pipeline")
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        now = time.time()
        for step in self.steps:
            if step["status"] == P.PENDING:
                step.update(status=P.BLOCKED, ended_at=now, note="not run: the pipeline was cancelled")
        await self.save()
        raise JobCancelled(self.ctx.job_id)

    # --- one step ------------------------------------------------------------------------------------------------
    async def _run_step(self, step: dict[str, Any], resume: bool) -> None:
        name = step["name"]
        await self.save()
        try:
            if step["kind"]:  # a job of the owning service
                if not step["job_id"] and resume:
                    step["job_id"] = await self._adopt(step)
                    if step["job_id"]:
                        self.ctx.log(f"step {name}: found its job {step['job_id']} started before the restart")
                if not step["job_id"]:
                    job = await self._submit(step)
                    step["job_id"] = job.id
                    self.ctx.log(f"step {name}: job {job.id} on {step['service']}")
                    await self.save()
                job = await self._watch(step)
                if job["status"] == P.CANCELLED:
                    raise StepFailed(f"its job {job['id']} was cancelled")
                if job["status"] != P.SUCCEEDED:
                    raise StepFailed(job.get("error") or f"its job {job['id']} {job['status']}", artifacts=_job_artifacts(job))
                result, artifacts = await self._collect(step, job)
            else:
                result, artifacts = await self._call(step)
        except StepFailed as failure:
            P.end_step(step, P.FAILED, time.time(), error=failure.message, result=failure.result, artifacts=failure.artifacts)
            self.ctx.log(f"step {name} failed: {failure.message}", "error")
        except grpc.aio.AioRpcError as exc:
            P.end_step(step, P.FAILED, time.time(), error=_rpc_error(step, exc))
            self.ctx.log(f"step {name} failed: {step['error']}", "error")
        else:
            P.end_step(step, P.SUCCEEDED, time.time(), result=result, artifacts=artifacts)
            self.ctx.log(f"step {name} done in {step['seconds']} s")
        await self.save(force=True)

    async def _adopt(self, step: dict[str, Any]) -> str:
        """The job a step started just before the gateway stopped (before its id was recorded), if any."""
        try:
            reply = await self.backends.jobs(step["service"]).ListJobs(jobs_pb2.ListJobsRequest(kind=step["kind"], limit=50), timeout=30)
        except grpc.aio.AioRpcError:
            return ""
        mine = [proto_to_dict(j) for j in reply.jobs if j.correlation_id == self.ctx.correlation_id]
        taken = {s["job_id"] for s in self.steps if s["job_id"]}
        mine = [j for j in mine if j["id"] not in taken]
        if step["kind"] == "evaluation.run":
            mine = [j for j in mine if (j.get("params", {}).get("labels") or {}).get("step") == step["name"]]
        return mine[0]["id"] if len(mine) == 1 else ""

    async def _watch(self, step: dict[str, Any]) -> dict[str, Any]:
        """Follow the step's job until it ends; mirror its progress into the step."""
        stub = self.backends.jobs(step["service"])
        unreachable_since: float | None = None
        while True:
            try:
                job = proto_to_dict(await stub.GetJob(jobs_pb2.GetJobRequest(id=step["job_id"]), timeout=30))
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise StepFailed(f"its job {step['job_id']} is not known to {step['service']} any more") from None
                unreachable_since = unreachable_since or time.monotonic()
                waited = time.monotonic() - unreachable_since
                if waited > self.settings.pipeline_unreachable_s:
                    raise StepFailed(f"{step['service']} did not answer for {waited:.0f} s ({exc.code().name}: {exc.details()})") from None
                await asyncio.sleep(min(5.0, self.settings.pipeline_poll_s * 2))
                continue
            unreachable_since = None
            if job["status"] != "queued" and not step.get("job_started_at"):
                step["job_started_at"] = time.time()
                step["queued_s"] = round(step["job_started_at"] - step["started_at"], 2)
            if job["status"] in TERMINAL:
                return job
            progress = job.get("progress") or {}
            step["progress"] = {"fraction": float(progress.get("fraction") or 0.0), "step": progress.get("step", ""),
                                "eta_seconds": float(progress.get("eta_seconds", -1.0)),
                                "metrics": {k: v for k, v in (progress.get("metrics") or {}).items() if isinstance(v, int | float)}}
            await self.save()
            await asyncio.sleep(self.settings.pipeline_poll_s)

    # --- what each step asks of its service --------------------------------------------------------------------------
    def _timeout(self, factor: float = 1.0) -> float:
        return 60.0 * factor

    def _result_of(self, name: str) -> dict[str, Any]:
        return self.index[name]["result"] if name in self.index else {}

    async def _submit(self, step: dict[str, Any]) -> jobs_pb2.Job:
        p, corr, name = self.params, self.ctx.correlation_id, step["name"]
        if name == P.BUILD:
            return await self.backends.datasets().BuildDataset(dataset_pb2.BuildDatasetRequest(
                catalog=p["catalog"], catalog_version=p["catalog_version"], num_questions=p["num_questions"],
                question_types=p.get("question_types") or ["all"], add_negatives=True, seed=p["seed"], formats=["openai"],
                variations=MOST_VARIATIONS if p.get("preset") == "knowledge" else 0,  # knowledge: every phrasing of a fact
                fit_to_catalog=not p.get("num_questions_given"), correlation_id=corr), timeout=self._timeout())
        if name == P.TRAIN:
            dataset_id = self._result_of(P.BUILD)["dataset_id"]
            return await self.backends.trainer().Train(training_pb2.LoraTrainRequest(
                data=training_pb2.LoraTrainingData(dataset_id=dataset_id), config=_struct(P.training_config(p)),
                name=f"{p['catalog']}-{dataset_id}-lora", correlation_id=corr), timeout=self._timeout())
        if name == P.INDEX:
            return await self.backends.rag().Index(rag_pb2.IndexRequest(
                collection=p["rag_collection"], catalog=p["catalog"], catalog_version=p["catalog_version"], correlation_id=corr),
                timeout=self._timeout())
        if name.startswith("evaluate_"):
            return await self._evaluator().Evaluate(self._evaluate_request(step), timeout=self._timeout(2))
        raise AssertionError(f"step {name} has no job")

    def _evaluator(self) -> evaluation_pb2_grpc.EvaluatorServiceStub:
        return self.backends.evaluator()

    def _evaluate_request(self, step: dict[str, Any]) -> evaluation_pb2.EvaluateRequest:
        p = self.params
        approach = step["name"].removeprefix("evaluate_")
        if approach == "base" and p.get("base_llm"):
            kind, _, model = p["base_llm"].partition(":")
            target = evaluation_pb2.Target(kind=kind, model=model, approach="base")
        elif approach == "base":
            target = evaluation_pb2.Target(kind="base", model=p.get("base_model") or "default", approach="base")
        elif approach == "fine_tuned":
            target = evaluation_pb2.Target(kind="lora", model=self._result_of(P.TRAIN)["model_id"], approach="fine_tuned")
        else:
            mode = "grounded" if approach == "grounded" else p.get("rag_mode") or "auto"
            target = evaluation_pb2.Target(kind="rag", collection=p["rag_collection"], llm=p.get("rag_llm", ""),
                                           approach="grounded" if mode == "grounded" else "rag",
                                           n_chunks=int(p.get("rag_n_chunks") or 0), rag_mode=mode)
        request = evaluation_pb2.EvaluateRequest(
            test_set=evaluation_pb2.TestSet(dataset_id=self._result_of(P.BUILD)["dataset_id"], split="test"),
            target=target, name=P.TARGET_LABELS[approach], max_questions=int(p.get("max_eval_questions") or 0), seed=p["seed"],
            max_tokens=int(p.get("eval_max_tokens") or 0), catalog=p["catalog"], catalog_version=p["catalog_version"],
            skip_similarity=bool(p.get("skip_similarity")), correlation_id=self.ctx.correlation_id,
            labels={"pipeline": self.ctx.job_id, "step": step["name"]},
        )
        if p.get("eval_concurrency"):
            request.concurrency = int(p["eval_concurrency"])
        return request

    async def _collect(self, step: dict[str, Any], job: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """What a finished job leaves for the next steps and for the record."""
        name, result, artifacts = step["name"], job.get("result") or {}, _job_artifacts(job)
        if name == P.BUILD:
            return {k: result[k] for k in ("dataset_id", "split_counts", "type_counts", "warnings", "sizing") if k in result}, artifacts
        if name == P.TRAIN:
            metrics = result.get("metrics") or {}
            keep = ("steps", "epochs", "first_loss", "final_loss", "eval_loss", "tokens_per_second", "train_seconds", "device",
                    "precision", "train_examples", "validation_examples")
            return {"model_id": result.get("model_id", ""), "metrics": {k: metrics[k] for k in keep if k in metrics}}, artifacts
        if name == P.INDEX:  # entity id lists become counts: the record stays small
            return {k: len(v) if isinstance(v, list) else v for k, v in result.items()}, artifacts
        if name.startswith("evaluate_"):
            run = await self._evaluator().GetRun(evaluation_pb2.GetRunRequest(id=job["id"]), timeout=self._timeout())
            summary = _message_dict(run.summary) if run.HasField("summary") else {}
            summary = {k: int(v) if k.endswith("_tokens") else v for k, v in summary.items()}  # int64 comes as a string
            return ({"run_id": run.id or job["id"], "model": run.model, "approach": run.approach, "summary": summary},
                    [_message_dict(a) for a in run.artifacts] or artifacts)
        return dict(result), artifacts

    async def _call(self, step: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A step that is one RPC."""
        name = step["name"]
        if name == P.VALIDATE:
            return await self._validate()
        if name == P.REPORT:
            return await self._compare()
        raise AssertionError(f"step {name} is not an RPC")

    async def _validate(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        dataset = await self.backends.datasets().GetDataset(dataset_pb2.GetDatasetRequest(id=self._result_of(P.BUILD)["dataset_id"]),
                                                            timeout=self._timeout())
        source = split_source(dataset, "train")
        if source is None:
            raise StepFailed(f"dataset {dataset.id} has no train split in the OpenAI chat format")
        reply = await self.backends.validator().Validate(validation_pb2.ValidateRequest(
            dataset=source, catalog=dataset.catalog, catalog_version=dataset.catalog_version, correlation_id=self.ctx.correlation_id,
            split_counts={k: v for k, v in dataset.split_counts.items() if k != "all"}), timeout=self._timeout(5))
        report = json_format.MessageToDict(reply.report)
        checklist = report.get("checklist") or []
        result = {
            "verdict": reply.verdict, "blocking": list(reply.blocking), "examples": int(report.get("examples") or 0),
            "invalid_lines": int(report.get("invalid_lines") or 0),
            "coverage_percent": (report.get("coverage") or {}).get("percent"),
            "checklist": {"passed": sum(1 for c in checklist if c.get("status") == "pass"), "total": len(checklist),
                          "failed": [c.get("label") or c.get("name") for c in checklist if c.get("status") == "fail"][:10]},
        }
        if reply.blocking:
            raise StepFailed(f"the dataset is not usable for training: {'; '.join(reply.blocking)}", result=result)
        return result, []

    async def _compare(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        runs = [self._result_of(P.eval_step(t)).get("run_id") for t in self.params["targets"]]
        title = f"Dyag — {self.params['catalog']} : " + " / ".join(P.TARGET_LABELS[t] for t in self.params["targets"])
        reply = await self._evaluator().Compare(evaluation_pb2.CompareRequest(run_ids=[r for r in runs if r], baseline=0, title=title),
                                                timeout=self._timeout(2))
        result = {"title": title,
            "run_ids": list(reply.run_ids), "names": list(reply.names), "baseline": reply.baseline,
            "recommended": reply.recommended, "recommendation": reply.recommendation, "same_test_set": reply.same_test_set,
            "warnings": list(reply.warnings), "markdown": reply.markdown,
            "comparison": json_format.MessageToDict(reply.comparison) if reply.HasField("comparison") else {},
        }
        return result, [_message_dict(a) for a in reply.artifacts]

    # --- the record ----------------------------------------------------------------------------------------------
    async def save(self, force: bool = False) -> None:
        """Write the steps to the record: at once for a change of status, at most every few seconds for progress."""
        key = "|".join(f"{s['status']}:{s['job_id']}" for s in self.steps)
        now = time.monotonic()
        if not force and self._last_save.get("key") == key and now - self._last_save.get("at", 0.0) < self.settings.pipeline_save_s:
            return
        self._last_save = {"key": key, "at": now}
        steps = copy.deepcopy(self.steps)
        await self.store.mutate(self.ctx.job_id, lambda r: r.__setitem__("steps", steps), emit=False)
        self.report_progress()

    def report_progress(self) -> None:
        running = [s for s in self.steps if s["status"] == P.RUNNING]
        text = "; ".join(f"{s['number']} {s['name']}" + (f": {s['progress']['step']}" if s["progress"].get("step") else "") for s in running)
        try:
            self.ctx.progress(P.overall_fraction(self.steps), text or _last_word(self.steps))
        except JobCancelled:
            pass  # the loop sees ctx.cancelled and cancels the steps

    def result(self) -> dict[str, Any]:
        report = self._result_of(P.REPORT)
        summaries = {t: self._result_of(P.eval_step(t)).get("summary", {}) for t in self.params.get("targets", [])}
        out: dict[str, Any] = {"dataset_id": self._result_of(P.BUILD).get("dataset_id", ""),
                               "model_id": self._result_of(P.TRAIN).get("model_id", ""), "summaries": summaries}
        if self.index.get(P.REPORT, {}).get("status") == P.SUCCEEDED:
            out["report"] = {k: report.get(k) for k in ("recommended", "recommendation", "names", "run_ids", "warnings")}
        return out


def _last_word(steps: list[dict[str, Any]]) -> str:
    status = P.outcome(steps)
    return {P.SUCCEEDED: "done", P.FAILED: "failed", P.CANCELLED: "cancelled"}.get(status or "", "waiting")


def _rpc_error(step: dict[str, Any], exc: grpc.aio.AioRpcError) -> str:
    code = exc.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"{step['service']} is unavailable: {exc.details()}"
    return f"{step['service']} refused it ({code.name}): {exc.details()}"
