"""The gateway's pipelines, as its routes use them: create (checks, step 1, queue), read, list, cancel, reports; and
the worker that runs them (runner.py) from the work queue."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import grpc

from dyag.v1 import evaluation_pb2, jobs_pb2, rag_pb2, training_pb2
from dyag_core.training import TrainingConfig, TrainingInputError
from dyag_gateway.errors import ApiError
from dyag_gateway.pipeline import model as M
from dyag_gateway.pipeline.runner import PipelineRunner
from dyag_gateway.pipeline.settings import (
    DEVICE_DEFAULTS,
    PipelineRequest,
    PipelineSettings,
    resolve_params,
    training_config,
)
from dyag_gateway.pipeline.steps import STEPS, Ingest
from dyag_gateway.pipeline.views import view
from dyag_runtime.events import EventBus
from dyag_runtime.jobs import TERMINAL, JobNotFound, JobStore, JobWorker, proto_to_dict
from dyag_runtime.peers import Peers
from dyag_runtime.settings import target_hosts


class Pipelines:
    """The gateway's pipelines: create, read, list, cancel; and the worker that runs them."""

    def __init__(self, bus: EventBus, store: JobStore, peers: Peers, settings: PipelineSettings, grpc_timeout: float):
        self.bus, self.store, self.peers, self.settings = bus, store, peers, settings
        self.grpc_timeout = grpc_timeout
        self.runner = PipelineRunner(store, peers, settings)
        self.worker = JobWorker(
            store,
            {M.PIPELINE_KIND: self.runner.run},
            artifacts=None,
            data_dir=settings.pipeline_data_dir,  # type: ignore[arg-type]
            ack_wait=settings.job_ack_wait_s,
            heartbeat=settings.job_heartbeat_s,
            max_attempts=settings.pipeline_max_attempts,
            concurrency=settings.pipeline_concurrency,
        )

    @classmethod
    async def start(
        cls, bus: EventBus, peers: Peers, grpc_timeout: float, settings: PipelineSettings | None = None
    ) -> Pipelines:
        settings = settings or PipelineSettings()
        await bus.ensure_streams()
        store = JobStore(await bus.key_value(M.PIPELINE_BUCKET), bus, M.PIPELINE_SERVICE)
        self = cls(bus, store, peers, settings, grpc_timeout)
        await self.worker.start()
        return self

    async def close(self) -> None:
        """Stop running pipelines without ending them: another gateway (or this one, restarted) resumes them."""
        await self.worker.hand_back()
        await self.bus.stop_consumers()

    # --- reading ------------------------------------------------------------------------------------------------
    async def get(self, pipeline_id: str) -> dict[str, Any]:
        try:
            return await self.store.get(pipeline_id)
        except JobNotFound:
            raise ApiError(
                404, "pipeline_not_found", f"pipeline {pipeline_id!r} not found (GET /pipelines lists them)"
            ) from None

    async def list(self, status: str = "", limit: int = 50) -> list[dict[str, Any]]:
        return await self.store.list(status=status, limit=limit)

    def view(self, record: dict[str, Any]) -> dict[str, Any]:
        return view(record, stale_after=max(3 * self.settings.job_heartbeat_s, self.settings.job_ack_wait_s))

    async def cancel(self, pipeline_id: str) -> dict[str, Any]:
        record = await self.get(pipeline_id)
        if record["status"] in TERMINAL:
            raise ApiError(
                409, "pipeline_ended", f"pipeline {pipeline_id} already ended ({record['status']}): nothing to cancel"
            )
        return await self.store.request_cancel(pipeline_id)

    # --- creating -----------------------------------------------------------------------------------------------
    async def create(
        self,
        request: PipelineRequest,
        *,
        upload_limit: int,
        correlation_id: str = "",
        retraining: dict[str, Any] | None = None,
        idempotency_key: str = "",
    ) -> dict[str, Any]:
        """Check everything that can be checked now, ingest the catalog (step 1), and queue the pipeline.
        `retraining`: a challenger pipeline's context (the champion, the changed applications, the gate's thresholds),
        which adds the champion's evaluation and the gate to its steps. `idempotency_key` (the client's
        Idempotency-Key): a request made again under it answers the pipeline the first one created."""
        correlation_id = correlation_id or uuid.uuid4().hex
        missing = sorted(n for n in needed_services(request) if not self.peers.deployed(n))
        if missing:
            raise ApiError(
                503,
                "service_not_deployed",
                f"this pipeline needs {', '.join(missing)}, which this deployment "
                "does not run (DYAG_SERVICES); skip the steps that need them",
            )
        if request.model_id:
            await self.peers.trainer().GetModel(
                training_pb2.GetLoraModelRequest(id=request.model_id), timeout=self.grpc_timeout
            )
        device, source = await trainer_device(self.peers, self.settings, request.device)
        if "train" not in request.skip:  # a bad training option is refused now, before anything is stored or run
            max_steps = DEVICE_DEFAULTS[device]["max_steps"] if request.max_steps is None else request.max_steps
            try:
                TrainingConfig.from_dict(training_config(request.model_dump() | {"max_steps": max_steps}))
            except TrainingInputError as exc:
                raise ApiError(422, exc.code, exc.message) from None
        ingest_step = STEPS[M.INGEST]
        assert isinstance(ingest_step, Ingest)
        ingest = await ingest_step.ingest(self.peers, request, upload_limit, correlation_id, self.grpc_timeout)
        params = resolve_params(request, device=device, device_source=source, catalog=ingest["result"])
        if "index" in request.skip and M.RAG_TARGETS & set(params["targets"]):  # the collection must exist already
            await self.peers.rag().Stats(
                rag_pb2.StatsRequest(collection=params["rag_collection"]), timeout=self.grpc_timeout
            )
        params["ingest"] = ingest
        if retraining is not None:
            params["retraining"] = retraining
        return await self.store.submit(M.PIPELINE_KIND, params, correlation_id, key=idempotency_key)

    # --- reports ------------------------------------------------------------------------------------------------
    async def report(self, pipeline_id: str, fmt: str) -> tuple[bytes, str, str]:
        """The comparison report of a pipeline: (content, media type, file name). The Markdown and the JSON are in the
        record; the HTML page (charts, hundreds of kB) is rendered again by the evaluator from the same runs."""
        record = await self.get(pipeline_id)
        report = M.by_name(record.get("steps") or []).get(M.REPORT)
        if not report or report["status"] != M.SUCCEEDED:
            where = report["status"] if report else "not planned"
            raise ApiError(
                404, "report_not_ready", f"pipeline {pipeline_id} has no comparison report (its report step is {where})"
            )
        r = report["result"]
        if fmt == "md":
            return r.get("markdown", "").encode(), "text/markdown; charset=utf-8", "comparison.md"
        if fmt == "json":
            content = json.dumps(r.get("comparison") or {}, ensure_ascii=False, indent=2).encode()
            return content, "application/json", "comparison.json"
        reply = await self.peers.evaluator().Compare(
            evaluation_pb2.CompareRequest(
                run_ids=r.get("run_ids") or [],
                baseline=int(r.get("baseline") or 0),
                title=r.get("title", ""),
                notes=r.get("notes") or [],
            ),
            timeout=self.grpc_timeout,
        )
        return reply.html.encode(), "text/html; charset=utf-8", "comparison.html"


def needed_services(request: PipelineRequest) -> set[str]:
    """The services a pipeline with this request calls."""
    needed = {"dataset-builder", "validator"}
    needed |= set() if "train" in request.skip else {"gpu-lora-trainer"}
    targets = set(request.evaluated())
    evaluating = "evaluate" not in request.skip
    if evaluating:
        needed |= {"evaluator"} | ({"rag-service"} if M.RAG_TARGETS & targets else set())
        on_trainer = set(M.FINE_TUNED_TARGETS) | (
            {"base"} if not request.base_llm else set()
        )  # base_llm unset: the device decides
        needed |= {"gpu-lora-trainer"} if on_trainer & targets else set()
    if "index" not in request.skip and (not evaluating or M.RAG_TARGETS & targets):
        needed.add("rag-service")
    if request.export:  # model-exporter reads the model's adapter from gpu-lora-trainer's registry
        needed |= {"model-exporter", "gpu-lora-trainer"}
    return needed


async def trainer_device(peers: Peers, settings: PipelineSettings, asked: str) -> tuple[str, str]:
    """(device, why) the defaults are sized for: asked, DYAG_PIPELINE_DEVICE, a GPU beside a local trainer, the
    trainer's last training, else cpu."""
    if asked in ("cpu", "cuda"):
        return asked, "asked"
    if settings.pipeline_device in ("cpu", "cuda"):
        return settings.pipeline_device, "DYAG_PIPELINE_DEVICE"
    if not peers.deployed("gpu-lora-trainer"):
        return "cpu", "no trainer"
    hosts = target_hosts(peers.address("gpu-lora-trainer"))
    if hosts and set(hosts) <= {"127.0.0.1", "localhost", "::1", "[::1]"} and _local_nvidia_gpu():
        return "cuda", "an NVIDIA GPU on the trainer's host"
    try:
        reply = await peers.jobs("gpu-lora-trainer").ListJobs(
            jobs_pb2.ListJobsRequest(kind="train.lora", status=jobs_pb2.JOB_STATUS_SUCCEEDED, limit=1), timeout=10
        )
    except grpc.aio.AioRpcError:
        return "cpu", "the trainer did not answer"
    for job in reply.jobs:
        device = proto_to_dict(job).get("result", {}).get("metrics", {}).get("device")
        if device in ("cpu", "cuda"):
            return device, f"the trainer's last training ({job.id})"
    return "cpu", "no GPU seen"


def _local_nvidia_gpu() -> bool:
    try:
        return any(Path("/proc/driver/nvidia/gpus").iterdir())
    except OSError:
        return False
