"""Runs pipelines: the handler of "pipeline.run" jobs, whose records live in the KV bucket "pipelines".

dyag_runtime's JobStore keeps the record (compare-and-set, across restarts) and its JobWorker runs it from the work
queue "dyag.jobs.pipeline": while a gateway runs a pipeline it heart-beats; if that gateway stops, JetStream hands
the pipeline to the next gateway (the same one restarted, or another replica) once DYAG_JOB_ACK_WAIT_S passes, and
`PipelineRunner.run` resumes it from the record: steps that ended stay ended, a step whose job was running is
re-attached to that job (the owning service kept it running), a step that had not got its job id yet adopts the job
it finds by correlation id, or starts again.

The runner only starts, watches, cancels and records steps; what each step asks of its service is in steps.py.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any

import grpc

from dyag.v1 import jobs_pb2
from dyag_core.errors import DyagError
from dyag_gateway.pipeline import model as M
from dyag_gateway.pipeline.settings import PipelineSettings
from dyag_gateway.pipeline.steps import STEPS, CallStep, JobStep, StepFailed, plan_steps
from dyag_gateway.pipeline.views import REPORT_KEYS
from dyag_runtime.events import TRANSIENT
from dyag_runtime.idempotency import submitting
from dyag_runtime.jobs import TERMINAL, JobCancelled, JobContext, JobLost, JobStore, owned_by, proto_to_dict
from dyag_runtime.peers import Peers

log = logging.getLogger(__name__)


class PipelineFailed(Exception):
    """Ends the pipeline's job failed; `message` (the failed step and its error) becomes the job's error."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class PipelineRunner:
    """The handler of "pipeline.run" jobs: starts each step when it can, follows its job, records everything."""

    def __init__(self, store: JobStore, peers: Peers, settings: PipelineSettings):
        self.store, self.peers, self.settings = store, peers, settings
        self.decisions: Any = None  # the retraining facade, where retraining runs: the gate step records through it

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        record = await self.store.get(ctx.job_id)
        params = record["params"]
        steps = copy.deepcopy(record.get("steps") or plan_steps(params, params.get("ingest")))
        return await _Run(self, ctx, params, steps).go()


class _Run:
    """One pipeline being run (or resumed) by this gateway: the RunContext its steps see."""

    def __init__(self, runner: PipelineRunner, ctx: JobContext, params: dict[str, Any], steps: list[M.Step]):
        self.ctx, self.params, self.steps = ctx, params, steps
        self.store, self.peers, self.settings = runner.store, runner.peers, runner.settings
        self.decisions = runner.decisions
        self.pipeline_id, self.correlation_id = ctx.job_id, ctx.correlation_id
        self.index = M.by_name(steps)
        self.tasks: dict[asyncio.Task, str] = {}
        self._last_save: dict[str, Any] = {}

    def result_of(self, name: str) -> dict[str, Any]:
        return self.index[name]["result"] if name in self.index else {}

    def step(self, name: str) -> M.Step | None:
        return self.index.get(name)

    # --- the loop ------------------------------------------------------------------------------------------------
    async def go(self) -> dict[str, Any]:
        if self.ctx.resumed:
            running = M.to_resume(self.steps)
            self.ctx.log(
                f"resumed (attempt {self.ctx.attempt}) after a gateway stopped: "
                + (f"re-attaching to {', '.join(running)}" if running else "no step was running"),
                "warning",
            )
        else:
            self.ctx.log(
                f"pipeline on catalog {self.params['catalog']} version {self.params['catalog_version']} "
                f"(defaults for {self.params['device']}: {self.params['device_source']})"
            )
        await self.save()
        for name in M.to_resume(self.steps):
            self._launch(name, resume=True)
        max_parallel, train_alone = int(self.params.get("max_parallel") or 1), bool(self.params.get("train_alone"))
        try:
            while True:
                if self.ctx.lost:  # its steps' jobs go on: the gateway that resumed the pipeline follows them
                    raise JobLost(self.ctx.job_id)
                if self.ctx.cancelled:
                    await self._cancel()
                for name in M.ready_steps(self.steps, max_parallel, train_alone):
                    self._launch(name, resume=False)
                if M.block_unreachable(self.steps, time.time()):
                    await self.save()
                if not self.tasks:
                    break
                done, _ = await asyncio.wait(self.tasks, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    await self._reap(task)
        finally:
            for task in self.tasks:  # the gateway is stopping: the steps' jobs go on; the next gateway re-attaches
                task.cancel()
        status = M.outcome(self.steps)
        self.report_progress()
        if status == M.SUCCEEDED:
            return self.result()
        if status == M.CANCELLED:
            raise JobCancelled(self.ctx.job_id)
        raise PipelineFailed(M.failure_message(self.steps))

    def _launch(self, name: str, *, resume: bool) -> None:
        step = self.index[name]
        if not resume:
            M.start_step(step, time.time())
        task = asyncio.create_task(self._run_step(step, resume), name=f"pipeline:{self.ctx.job_id}:{name}")
        self.tasks[task] = name

    async def _reap(self, task: asyncio.Task) -> None:
        name = self.tasks.pop(task)
        if not task.cancelled() and (exc := task.exception()) is not None:  # a bug, not a step's failure
            log.error("pipeline step crashed", exc_info=exc, extra={"pipeline_id": self.ctx.job_id, "step": name})
            M.end_step(self.index[name], M.FAILED, time.time(), error=f"{type(exc).__name__}: {exc}")
            await self.save()

    async def _cancel(self) -> None:
        self.ctx.log("cancel requested: cancelling the running steps' jobs")
        for task, name in list(self.tasks.items()):
            step = self.index[name]
            if step["job_id"]:
                try:
                    await self.peers.jobs(step["service"]).CancelJob(
                        jobs_pb2.CancelJobRequest(id=step["job_id"]), timeout=30
                    )
                except grpc.aio.AioRpcError as exc:
                    self.ctx.log(f"could not cancel {step['job_id']}: {exc.details()}", "warning")
            task.cancel()
            M.end_step(step, M.CANCELLED, time.time(), error="cancelled with the pipeline")
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        M.block_pending(self.steps, time.time(), "not run: the pipeline was cancelled")
        await self.save()
        raise JobCancelled(self.ctx.job_id)

    # --- one step ------------------------------------------------------------------------------------------------
    async def _run_step(self, step: M.Step, resume: bool) -> None:
        name = step["name"]
        kind = STEPS[name]
        await self.save()
        try:
            if isinstance(kind, JobStep):  # a job of the owning service
                job = await self._job_of(kind, step, resume)
                result, artifacts = await kind.collect(self, step, job)
            else:
                assert isinstance(kind, CallStep), name
                result, artifacts = await kind.call(self, step)
        except StepFailed as failure:
            M.end_step(
                step, M.FAILED, time.time(), error=failure.message, result=failure.result, artifacts=failure.artifacts
            )
            self.ctx.log(f"step {name} failed: {failure.message}", "error")
        except grpc.aio.AioRpcError as exc:
            M.end_step(step, M.FAILED, time.time(), error=_rpc_error(step, exc))
            self.ctx.log(f"step {name} failed: {step['error']}", "error")
        except DyagError as exc:  # a peer's refusal through dyag_runtime.peers
            M.end_step(step, M.FAILED, time.time(), error=f"{exc.code}: {exc.message}")
            self.ctx.log(f"step {name} failed: {step['error']}", "error")
        else:
            M.end_step(step, M.SUCCEEDED, time.time(), result=result, artifacts=artifacts)
            self.ctx.log(f"step {name} done in {step['seconds']} s")
        await self.save(force=True)

    async def _job_of(self, kind: JobStep, step: M.Step, resume: bool) -> dict[str, Any]:
        """The step's job, submitted (or found again after a restart) and followed until it succeeded."""
        name = step["name"]
        if not step["job_id"] and resume:
            step["job_id"] = await self._adopt(step)
            if step["job_id"]:
                self.ctx.log(f"step {name}: found its job {step['job_id']} started before the restart")
        if not step["job_id"]:
            job = await self._submit(kind, step)
            step["job_id"] = job.id
            self.ctx.log(f"step {name}: job {job.id} on {step['service']}")
            await self.save()
        ended = await self._watch(step)
        if ended["status"] == M.CANCELLED:
            raise StepFailed(f"its job {ended['id']} was cancelled")
        if ended["status"] != M.SUCCEEDED:
            raise await kind.failure(self, step, ended)
        return ended

    async def _submit(self, kind: JobStep, step: M.Step) -> jobs_pb2.Job:
        """The step's job, submitted under a key of this pipeline and step: submitted again (a replica gone mid-call,
        this gateway restarted), the service answers with the same job, never a second one."""
        unreachable_since: float | None = None
        while True:
            try:
                with submitting(f"{self.ctx.job_id}/{step['name']}"):
                    return await kind.submit(self, step)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > self.settings.pipeline_unreachable_s:
                    raise
                self.ctx.log(f"step {step['name']}: {step['service']} unreachable ({exc.code().name}); trying again")
                await asyncio.sleep(min(5.0, self.settings.pipeline_poll_s * 2))

    async def _adopt(self, step: M.Step) -> str:
        """The job a step started just before the gateway stopped (before its id was recorded), if any."""
        try:
            reply = await self.peers.jobs(step["service"]).ListJobs(
                jobs_pb2.ListJobsRequest(kind=step["kind"], limit=50), timeout=30
            )
        except grpc.aio.AioRpcError:
            return ""
        mine = [proto_to_dict(j) for j in reply.jobs if j.correlation_id == self.ctx.correlation_id]
        taken = {s["job_id"] for s in self.steps if s["job_id"]}
        mine = [j for j in mine if j["id"] not in taken]
        if step["kind"] == "evaluation.run":
            mine = [j for j in mine if (j.get("params", {}).get("labels") or {}).get("step") == step["name"]]
        return mine[0]["id"] if len(mine) == 1 else ""

    async def _watch(self, step: M.Step) -> dict[str, Any]:
        """Follow the step's job until it ends; mirror its progress into the step."""
        stub = self.peers.jobs(step["service"])
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
                    raise StepFailed(
                        f"{step['service']} did not answer for {waited:.0f} s ({exc.code().name}: {exc.details()})"
                    ) from None
                await asyncio.sleep(min(5.0, self.settings.pipeline_poll_s * 2))
                continue
            unreachable_since = None
            if job["status"] != "queued" and not step.get("job_started_at"):
                step["job_started_at"] = time.time()
                step["queued_s"] = round(step["job_started_at"] - step["started_at"], 2)
            if job["status"] in TERMINAL:
                return job
            progress = job.get("progress") or {}
            step["progress"] = M.Progress(
                fraction=float(progress.get("fraction") or 0.0),
                step=progress.get("step", ""),
                eta_seconds=float(progress.get("eta_seconds", -1.0)),
                metrics={k: v for k, v in (progress.get("metrics") or {}).items() if isinstance(v, int | float)},
            )
            await self.save()
            await asyncio.sleep(self.settings.pipeline_poll_s)

    # --- the record ----------------------------------------------------------------------------------------------
    async def save(self, force: bool = False) -> None:
        """Write the steps to the record: at once for a change of status, at most every few seconds for progress."""
        key = "|".join(f"{s['status']}:{s['job_id']}" for s in self.steps)
        now = time.monotonic()
        recent = now - self._last_save.get("at", 0.0) < self.settings.pipeline_save_s
        if not force and self._last_save.get("key") == key and recent:
            return
        self._last_save = {"key": key, "at": now}
        steps = copy.deepcopy(self.steps)
        try:
            await self.store.mutate(
                self.ctx.job_id, owned_by(self.ctx.owner, lambda r: r.__setitem__("steps", steps)), emit=False
            )
        except JobLost:  # another gateway resumed this pipeline: it alone writes it now; this run stops
            self.ctx.lose()
            return
        except TRANSIENT as exc:  # NATS failing over for longer than its retries: the next save carries the steps
            self._last_save = {}
            log.warning("could not save the pipeline", extra={"pipeline_id": self.ctx.job_id, "error": repr(exc)})
            return
        self.report_progress()

    def report_progress(self) -> None:
        running = [s for s in self.steps if s["status"] == M.RUNNING]
        text = "; ".join(
            f"{s['number']} {s['name']}" + (f": {s['progress']['step']}" if s["progress"].get("step") else "")
            for s in running
        )
        try:
            self.ctx.progress(M.overall_fraction(self.steps), text or M.last_word(self.steps))
        except JobCancelled:
            pass  # the loop sees ctx.cancelled and cancels the steps

    def result(self) -> dict[str, Any]:
        report = self.result_of(M.REPORT)
        summaries = {t: self.result_of(M.eval_step(t)).get("summary", {}) for t in self.params.get("targets", [])}
        out: dict[str, Any] = {
            "dataset_id": self.result_of(M.BUILD).get("dataset_id", ""),
            "model_id": self.result_of(M.TRAIN).get("model_id", ""),
            "summaries": summaries,
        }
        if M.EXPORT in self.index:
            out["export_id"] = self.result_of(M.EXPORT).get("export_id", "")
        if self.index.get(M.REPORT, {}).get("status") == M.SUCCEEDED:
            out["report"] = {k: report.get(k) for k in REPORT_KEYS}
        return out


def _rpc_error(step: M.Step, exc: grpc.aio.AioRpcError) -> str:
    code = exc.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"{step['service']} is unavailable: {exc.details()}"
    return f"{step['service']} refused it ({code.name}): {exc.details()}"
