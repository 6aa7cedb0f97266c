"""The "train.openai" job: gates, upload, remote fine-tuning job, monitoring, registry, smoke test.

Steps, and what makes each safe to repeat:

1. dataset: a dataset built by dataset-builder (its train and validation splits) or content sent with
   the request (kept as artifacts);
2. gates, before anything leaves the platform: the validator's format errors, personal data (blocks
   unless redacted or explicitly allowed), the cost estimate against the budget; each overridable (gates.py);
3. upload with files.create(purpose="fine-tune"): one remote file per content and provider (SQLite) (upload.py);
4. fine_tuning.jobs.create: one remote job per plan key (content hashes + base model + hyperparameters
   + provider), so a re-submission or a restarted service follows the job already paid for (upload.py);
5. monitoring: retrieve + list_events (+ checkpoints.list), polled with backoff; each remote event or
   metric becomes a `training.progress` event and the job's progress (monitor.py);
6. success: the model enters the registry with its lineage, answers the guide's step-4.5 questions, and
   is announced (`model.registered`) as the target "openai:<id>" (register.py).

The job's work folder keeps the prepared plan and the events already seen (jobstate.py): a job resumed after a
restart skips the gates and goes on following the same remote job.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from dyag_core.errors import DyagError
from dyag_core.hosted import Scrubber
from dyag_openai_trainer.gates import Gates
from dyag_openai_trainer.jobstate import JobState
from dyag_openai_trainer.monitor import Monitor, progress_of
from dyag_openai_trainer.provider import Provider
from dyag_openai_trainer.register import Registrar
from dyag_openai_trainer.settings import OpenAITrainerSettings
from dyag_openai_trainer.step import Step
from dyag_openai_trainer.store import HostedStore
from dyag_openai_trainer.upload import Uploader
from dyag_runtime.jobs import JobCancelled, JobContext
from dyag_runtime.peers import Peers
from dyag_runtime.server import Runtime

log = logging.getLogger(__name__)

TRAIN = "train.openai"


class HostedTrainer(Step):
    """The job handler, `handle` (async: the remote calls are I/O, and many jobs can be followed at once)."""

    fraction = staticmethod(progress_of)  # the job's progress for a remote status and its metrics

    def __init__(
        self, rt: Runtime, settings: OpenAITrainerSettings, store: HostedStore, provider: Provider, scrubber: Scrubber
    ):
        super().__init__(rt, settings, store, provider, scrubber, Peers(settings))
        parts = (rt, settings, store, provider, scrubber, self.peers)
        self.gates, self.uploader = Gates(*parts), Uploader(*parts)
        self.monitor, self.registrar = Monitor(*parts), Registrar(*parts)
        self._locks: dict[str, asyncio.Lock] = {}

    async def handle(self, ctx: JobContext) -> dict[str, Any]:
        try:
            return await self._run(ctx)
        except (JobCancelled, asyncio.CancelledError):
            raise
        except DyagError as exc:
            exc.message = self.scrubber.text(exc.message)
            self.log(ctx, exc.message, "error")
            raise
        except Exception as exc:  # never let an unexpected error carry a secret into the job record
            log.exception("hosted training failed", extra={"job_id": ctx.job_id})
            raise DyagError("hosted_error", self.scrubber.text(f"{type(exc).__name__}: {exc}")) from None

    async def _run(self, ctx: JobContext) -> dict[str, Any]:
        state = JobState.load(ctx.workdir)
        if state.plan is None:
            state.plan = await self.gates.prepare(ctx)
            state.save()
        else:
            self.log(ctx, f"resumed: the gates were passed before the restart; following plan {state.plan['key']}")
        plan = state.plan

        async with self._locks.setdefault(plan["key"], asyncio.Lock()):
            known = self.store.plan(plan["key"])
            if known and known.get("model_id"):
                return self.registrar.reuse_model(ctx, plan, known)
            ctx.progress(0.12, "uploading the dataset")
            state.files = await self.uploader.upload_files(ctx, plan)
            state.save()
            if not state.remote_job_id or self._ended_badly(state.remote_job_id, plan["key"]):
                remote = await self.uploader.ensure_remote_job(ctx, plan, state.files)
                state.remote_job_id, state.reused_remote_job = remote
                state.seen_events, state.metrics = [], {}
                state.save()
            else:
                self.log(
                    ctx,
                    f"following remote job {state.remote_job_id} again after the restart (no new upload, no new job)",
                )

        try:
            job = await self.monitor.follow(ctx, plan, state)
        except JobCancelled:
            await self.monitor.cancel_remote(ctx, plan, state.remote_job_id)
            raise
        model = await self.registrar.register(ctx, plan, state, job)
        return self.registrar.result(plan, state, model, reused_model=False)

    def _ended_badly(self, remote_job_id: str, key: str) -> bool:
        known = self.store.plan(key)
        return bool(
            known
            and known.get("remote_job_id") == remote_job_id
            and known.get("remote_status") in ("failed", "cancelled")
        )
