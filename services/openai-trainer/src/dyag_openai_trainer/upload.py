"""What a "train.openai" job sends to the provider, each at most once: the files (files.create, one remote file
per content and provider, kept in the store) and the fine-tuning job (one remote job per plan key, so a
re-submission or a restarted service follows the job already paid for)."""

from __future__ import annotations

import asyncio
from typing import Any

from dyag_core.hosted.plan import content_hash, upload_key
from dyag_openai_trainer.step import Step
from dyag_openai_trainer.store import ENDED_BADLY
from dyag_runtime.jobs import JobContext

# A plan's claim (HostedStore.claim_plan) outlives the creation of its remote job, retries included; a claimant that
# died is taken over after it (and the provider is asked first whether the job exists: find_remote_job).
CLAIM_LEASE_S = 900.0
CLAIM_POLL_S = 1.0


class Uploader(Step):
    """Steps 3 and 4: the files uploaded (or found again), then the remote job created (or found again)."""

    async def upload_files(self, ctx: JobContext, plan: dict) -> dict[str, Any]:
        """The plan's train (and validation) files at the provider: {split: {"file_id", "reused"}}."""
        files: dict[str, Any] = {}
        for split in ("train", "validation"):
            digest = plan.get(f"{split}_digest")
            if not digest:
                continue
            data = await asyncio.to_thread(self.rt.artifacts.get_bytes, digest)
            key = upload_key(self.provider.base_url, data)
            known = self.store.upload(key)
            if known:
                self.log(
                    ctx, f"{split}: reusing upload {known['file_id']} (same content already sent to this provider)"
                )
                files[split] = {"file_id": known["file_id"], "reused": True}
                continue
            filename = f"dyag-{content_hash(data)[7:23]}-{split}.jsonl"
            found = await self.provider.call(
                "files.list",
                self.find_file,
                filename,
                len(data),
                on_retry=self.retry_logger(ctx),
                check=ctx.check_cancelled,
            )
            if found:
                self.log(
                    ctx,
                    f"{split}: the provider already has {filename} as {found} (uploaded before a restart); reusing it",
                )
                file_id, reused = found, True
            else:
                attempts = 0

                async def upload_once(filename=filename, data=data) -> str:
                    nonlocal attempts
                    attempts += 1
                    if attempts > 1 and (earlier := await self.find_file(filename, len(data))):
                        return earlier  # the failed attempt's upload did arrive: do not send it twice
                    created = await self.provider.client.files.create(
                        file=(filename, data, "application/jsonl"),
                        purpose="fine-tune",
                        timeout=self.settings.openai_upload_timeout_s,
                    )
                    return created.id

                file_id = await self.provider.call(
                    f"files.create ({split})", upload_once, on_retry=self.retry_logger(ctx), check=ctx.check_cancelled
                )
                reused = False
                self.log(ctx, f"{split}: uploaded {len(data)} bytes as {file_id}")
            self.store.put_upload(key, file_id, filename, len(data), content_hash(data))
            files[split] = {"file_id": file_id, "reused": reused}
        return files

    async def find_file(self, filename: str, size: int) -> str | None:
        """A usable file of this name and size at the provider (the newest 1000 fine-tune files are looked at)."""
        page = await self.provider.client.files.list(purpose="fine-tune", limit=1000, order="desc")
        for f in page.data:
            if f.filename == filename and f.bytes == size and f.status != "error":
                return f.id
        return None

    async def ensure_remote_job(self, ctx: JobContext, plan: dict, files: dict) -> tuple[str, bool]:
        key = plan["key"]
        waited = False
        while True:
            known = self.store.plan(key)
            if known and known.get("remote_job_id") and known.get("remote_status") not in ENDED_BADLY:
                self.log(
                    ctx, f"reusing remote job {known['remote_job_id']} (same dataset and parameters: not paying twice)"
                )
                return known["remote_job_id"], True
            if self.store.claim_plan(key, plan, ctx.job_id, CLAIM_LEASE_S):
                break
            if not waited:  # another replica's job is creating this plan's remote job: follow it once created
                self.log(ctx, f"another job is creating the remote job of plan {key}; waiting for it")
                waited = True
            ctx.check_cancelled()
            await asyncio.sleep(CLAIM_POLL_S)
        found = None
        if self.settings.openai_send_metadata:
            found = await self.provider.call(
                "fine_tuning.jobs.list",
                self.find_remote_job,
                key,
                on_retry=self.retry_logger(ctx),
                check=ctx.check_cancelled,
            )
        if found:
            self.log(ctx, f"the provider already runs remote job {found} for this plan; following it")
            self.store.update_plan(key, remote_job_id=found, remote_status="queued")
            return found, True
        kwargs: dict[str, Any] = {
            "model": plan["base_model"],
            "training_file": files["train"]["file_id"],
            "method": {"type": "supervised", "supervised": {"hyperparameters": plan["hyperparameters"]}},
        }
        if "validation" in files:
            kwargs["validation_file"] = files["validation"]["file_id"]
        if plan.get("suffix"):
            kwargs["suffix"] = plan["suffix"]
        if plan.get("seed") is not None:
            kwargs["seed"] = plan["seed"]
        if self.settings.openai_send_metadata:
            kwargs["metadata"] = {"dyag_plan": key, "dyag_job": ctx.job_id}
        ctx.progress(0.18, "creating the fine-tuning job")
        attempts = 0

        async def create_once():
            nonlocal attempts
            attempts += 1
            if (
                attempts > 1
                and self.settings.openai_send_metadata
                and (earlier := await self.find_remote_job(key, job=True))
            ):
                return earlier  # the failed attempt did create the job (its answer was lost): never pay twice
            return await self.provider.client.fine_tuning.jobs.create(**kwargs)

        job = await self.provider.call(
            "fine_tuning.jobs.create", create_once, on_retry=self.retry_logger(ctx), check=ctx.check_cancelled
        )
        self.store.update_plan(key, remote_job_id=job.id, remote_status=job.status)
        self.log(ctx, f"remote job {job.id} created (base model {plan['base_model']}, status {job.status})")
        await self.emit_progress(
            ctx, job.id, job.status, message=f"remote job created (base model {plan['base_model']})"
        )
        return job.id, False

    async def find_remote_job(self, key: str, *, job: bool = False):
        """The provider's live job for this plan (tagged with its key), among its newest 100 jobs."""
        page = await self.provider.client.fine_tuning.jobs.list(limit=100)
        for remote in page.data:
            if (remote.metadata or {}).get("dyag_plan") == key and remote.status not in ("failed", "cancelled"):
                return remote if job else remote.id
        return None
