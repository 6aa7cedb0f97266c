"""Following a "train.openai" job's remote fine-tuning job: retrieve + list_events (+ checkpoints.list), polled
with backoff; each remote event or metric becomes a `training.progress` event and the job's progress; a job
cancelled here is cancelled at the provider."""

from __future__ import annotations

from dyag_core.errors import DyagError
from dyag_core.hosted import ProviderRefusal
from dyag_openai_trainer.jobstate import JobState
from dyag_openai_trainer.provider import pause
from dyag_openai_trainer.step import METRICS, Step, now_rfc3339
from dyag_runtime.jobs import JobContext

REMOTE_ENDED = ("succeeded", "failed", "cancelled")
STATUS_PROGRESS = {  # the job's progress while the remote job is in this status (no step counts yet)
    "validating_files": (0.2, "the provider is validating the files"),
    "queued": (0.25, "queued at the provider"),
    "running": (0.3, "training"),
    "succeeded": (0.86, "trained: testing the model"),
}


def progress_of(status: str, metrics: dict[str, float]) -> tuple[float, str]:
    """The job's progress (fraction, step) for the remote job's status and its last metrics."""
    if status == "running" and metrics.get("total_steps"):
        done = metrics.get("step", 0) / metrics["total_steps"]
        step = f"training: step {int(metrics.get('step', 0))}/{int(metrics['total_steps'])}"
        return 0.3 + 0.55 * min(done, 1.0), step
    return STATUS_PROGRESS.get(status, (0.2, f"remote: {status}"))


class Monitor(Step):
    """Step 5: the remote job followed until it ends (its events, metrics and checkpoints kept in the JobState)."""

    async def follow(self, ctx: JobContext, plan: dict, state: JobState):
        """The remote job once it has succeeded; a ProviderRefusal when it failed or was cancelled there."""
        remote_id = state.remote_job_id
        client = self.provider.client
        interval = self.settings.openai_poll_interval_s
        seen = set(state.seen_events)
        last_status = ""
        polls = 0
        call = self.provider.call
        while True:
            job = await call(
                "fine_tuning.jobs.retrieve",
                client.fine_tuning.jobs.retrieve,
                remote_id,
                on_retry=self.retry_logger(ctx),
                check=ctx.check_cancelled,
            )
            changed = False
            if job.status != last_status:
                changed = True
                last_status = job.status
                self.store.update_plan(plan["key"], remote_status=job.status)
                await self.emit_progress(ctx, remote_id, job.status, message=f"remote status: {job.status}")
                self.log(ctx, f"remote job {remote_id}: {job.status}")
            fresh = await call(
                "fine_tuning.jobs.list_events",
                self.new_events,
                remote_id,
                seen,
                on_retry=self.retry_logger(ctx),
                check=ctx.check_cancelled,
            )
            for event in fresh:
                changed = True
                seen.add(event.id)
                state.seen_events.append(event.id)
                await self.on_remote_event(ctx, remote_id, job.status, event, state)
            polls += 1
            if job.status == "succeeded" or polls % max(self.settings.openai_checkpoints_every_polls, 1) == 0:
                await self.read_checkpoints(ctx, remote_id, state)
            state.save()
            fraction, step = progress_of(job.status, state.metrics)
            metrics = {("remote_step" if k == "step" else k): v for k, v in state.metrics.items() if v is not None}
            ctx.progress(fraction, step, **metrics)
            if job.status in REMOTE_ENDED:
                break
            interval = (
                self.settings.openai_poll_interval_s
                if changed
                else min(interval * self.settings.openai_poll_backoff, self.settings.openai_poll_max_interval_s)
            )
            await pause(interval, ctx.check_cancelled)

        if job.status == "failed":
            error = job.error
            reason = f"{error.code}: {error.message}" if error else "no reason given"
            raise ProviderRefusal(
                self.scrubber.text(
                    f"the remote fine-tuning job {remote_id} failed at the provider ({reason}). What to do next: "
                    "fix what the provider names (check the files with `dyag dataset validate --hosted`), then submit "
                    "again; unchanged files are not uploaded twice"
                ),
                provider_message=reason,
                code="remote_job_failed",
            )
        if job.status == "cancelled":
            raise ProviderRefusal(
                f"the remote fine-tuning job {remote_id} was cancelled at the provider", code="remote_job_cancelled"
            )
        if not job.fine_tuned_model:
            raise ProviderRefusal(
                f"the remote job {remote_id} succeeded but names no fine-tuned model", code="remote_job_incomplete"
            )
        return job

    async def new_events(self, remote_id: str, seen: set[str], max_pages: int = 20) -> list:
        """The events not seen yet, oldest first: pages back (newest first, `after` the last) until a seen one."""
        fresh, after = [], None
        for _ in range(max_pages):
            kwargs = {"limit": 100, **({"after": after} if after else {})}
            page = await self.provider.client.fine_tuning.jobs.list_events(remote_id, **kwargs)
            new = [e for e in page.data if e.id not in seen]
            fresh += new
            if len(new) < len(page.data) or not page.has_more or not page.data:
                break
            after = page.data[-1].id
        return fresh[::-1]  # the pages come newest first

    async def on_remote_event(self, ctx: JobContext, remote_id: str, status: str, event, state: JobState) -> None:
        data = event.data if isinstance(event.data, dict) else {}
        metrics = {k: data.get(k) for k in ("step", "total_steps", *METRICS) if isinstance(data.get(k), (int, float))}
        if metrics:
            state.metrics.update({k: float(v) for k, v in metrics.items()})
        else:
            self.log(ctx, f"provider: {event.message}", {"warn": "warning"}.get(event.level, event.level))
        await self.emit_progress(
            ctx,
            remote_id,
            status,
            message=event.message,
            level=event.level,
            event_id=event.id,
            created_at=now_rfc3339(event.created_at),
            **metrics,
        )

    async def read_checkpoints(self, ctx: JobContext, remote_id: str, state: JobState) -> None:
        client = self.provider.client
        page = await self.provider.call(
            "fine_tuning.jobs.checkpoints.list",
            client.fine_tuning.jobs.checkpoints.list,
            remote_id,
            on_retry=self.retry_logger(ctx),
            check=ctx.check_cancelled,
        )
        known = {c["id"] for c in state.checkpoints}
        for checkpoint in sorted(page.data, key=lambda c: c.step_number):
            if checkpoint.id in known:
                continue
            metrics = checkpoint.metrics.model_dump(exclude_none=True) if checkpoint.metrics else {}
            state.checkpoints.append(
                {
                    "id": checkpoint.id,
                    "step": checkpoint.step_number,
                    "model": checkpoint.fine_tuned_model_checkpoint,
                    "metrics": metrics,
                }
            )
            if "full_valid_loss" in metrics:
                state.metrics["full_valid_loss"] = float(metrics["full_valid_loss"])

    async def cancel_remote(self, ctx: JobContext, plan: dict, remote_id: str) -> None:
        if not remote_id:
            return
        try:
            job = await self.provider.call(
                "fine_tuning.jobs.cancel", self.provider.client.fine_tuning.jobs.cancel, remote_id
            )
            self.store.update_plan(plan["key"], remote_status=job.status or "cancelled")
            self.log(ctx, f"remote job {remote_id} cancelled")
            await self.emit_progress(
                ctx, remote_id, job.status or "cancelled", message="cancelled at the user's request"
            )
        except DyagError as exc:
            self.log(ctx, f"could not cancel remote job {remote_id}: {exc.message}", "error")
