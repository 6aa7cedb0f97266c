"""The "train.openai" job: gates, upload, remote fine-tuning job, monitoring, registry, smoke test.

Steps, and what makes each safe to repeat:

1. dataset: a dataset built by dataset-builder (its train and validation splits) or content sent with
   the request (kept as artifacts);
2. gates, before anything leaves the platform: the validator's format errors, personal data (blocks
   unless redacted or explicitly allowed), the cost estimate against the budget; each overridable;
3. upload with files.create(purpose="fine-tune"): one remote file per content and provider (SQLite);
4. fine_tuning.jobs.create: one remote job per plan key (content hashes + base model + hyperparameters
   + provider), so a re-submission or a restarted service follows the job already paid for;
5. monitoring: retrieve + list_events (+ checkpoints.list), polled with backoff; each remote event or
   metric becomes a `training.progress` event and the job's progress;
6. success: the model enters the registry with its lineage, answers the guide's step-4.5 questions, and
   is announced (`model.registered`) as the target "openai:<id>".

The job's work folder keeps the prepared plan and the events already seen: a job resumed after a
restart skips the gates and goes on following the same remote job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from dyag.v1 import hosted_pb2, jobs_pb2, validation_pb2
from dyag_core.errors import DyagError
from dyag_core.hosted import ProviderRefusal, Scrubber, resolve_hyperparameters
from dyag_core.hosted.plan import TrainingPlan, content_hash, upload_key
from dyag_core.validation.cost import estimate_cost, price_for
from dyag_runtime.jobs import JobCancelled, JobContext
from dyag_runtime.peers import Peers
from dyag_runtime.server import Runtime

from dyag_openai_trainer.provider import Provider, pause
from dyag_openai_trainer.settings import OpenAITrainerSettings
from dyag_openai_trainer.store import HostedStore

log = logging.getLogger(__name__)

TRAIN = "train.openai"
REMOTE_ACTIVE = ("validating_files", "queued", "running", "pausing", "paused")
REMOTE_ENDED = ("succeeded", "failed", "cancelled")
STATE_FILE = "hosted-state.json"
MAX_SEEN_EVENTS = 5000


class GateRefused(DyagError):
    """A gate before upload said no; nothing left the platform."""

    def __init__(self, gate: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(f"gate_{gate}", f"refused before upload ({gate} gate): {message}", details)


def now_rfc3339(ts: float | None = None) -> str:
    moment = datetime.fromtimestamp(ts, UTC) if ts else datetime.now(UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class JobState:
    """What a resumed job needs, in its work folder (it survives restarts)."""

    path: Path
    plan: dict[str, Any] | None = None
    files: dict[str, Any] = field(default_factory=dict)
    remote_job_id: str = ""
    reused_remote_job: bool = False
    seen_events: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, workdir: Path) -> JobState:
        path = workdir / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls(path)
        return cls(path, **{k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "path"})

    def save(self) -> None:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "path"}
        data["seen_events"] = data["seen_events"][-MAX_SEEN_EVENTS:]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False))
        tmp.replace(self.path)


class HostedTrainer:
    """The job handler, `handle` (async: the remote calls are I/O, and many jobs can be followed at once)."""

    def __init__(self, rt: Runtime, settings: OpenAITrainerSettings, store: HostedStore, provider: Provider, scrubber: Scrubber):
        self.rt, self.settings, self.store, self.provider, self.scrubber = rt, settings, store, provider, scrubber
        self.peers = Peers(settings)
        self._locks: dict[str, asyncio.Lock] = {}

    # --- the job -----------------------------------------------------------------------------------
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
            state.plan = await self.prepare(ctx)
            state.save()
        else:
            self.log(ctx, f"resumed: the gates were passed before the restart; following plan {state.plan['key']}")
        plan = state.plan

        async with self._locks.setdefault(plan["key"], asyncio.Lock()):
            known = self.store.plan(plan["key"])
            if known and known.get("model_id"):
                return self.reuse_model(ctx, plan, known)
            ctx.progress(0.12, "uploading the dataset")
            state.files = await self.upload(ctx, plan, state)
            state.save()
            if not state.remote_job_id or self._ended_badly(state.remote_job_id, plan["key"]):
                state.remote_job_id, state.reused_remote_job = await self.ensure_remote_job(ctx, plan, state.files)
                state.seen_events, state.metrics = [], {}
                state.save()
            else:
                self.log(ctx, f"following remote job {state.remote_job_id} again after the restart (no new upload, no new job)")

        try:
            job = await self.monitor(ctx, plan, state)
        except JobCancelled:
            await self.cancel_remote(ctx, plan, state.remote_job_id)
            raise
        model = await self.register(ctx, plan, state, job)
        return self.result(plan, state, model, reused_model=False)

    def _ended_badly(self, remote_job_id: str, key: str) -> bool:
        known = self.store.plan(key)
        return bool(known and known.get("remote_job_id") == remote_job_id and known.get("remote_status") in ("failed", "cancelled"))

    def log(self, ctx: JobContext, message: str, level: str = "info") -> None:
        ctx.log(self.scrubber.text(message), level)

    # --- 1 and 2: the dataset and the gates ----------------------------------------------------------
    async def prepare(self, ctx: JobContext) -> dict[str, Any]:
        p = ctx.params
        gates = p.get("gates") or {}
        base_model = p["base_model"]
        ctx.progress(0.01, "fetching the dataset")
        source = await self.dataset_files(p)
        ctx.progress(0.03, "gates: validating the dataset")

        train = await self.gate_file(ctx, "train", source, source["train"], base_model, gates)
        validation = None
        if source.get("validation"):
            validation = await self.gate_file(ctx, "validation", source, source["validation"], base_model, gates)

        n_train = int(train["report"].get("examples") or 0)
        given = p.get("hyperparameters") or {}
        hp = resolve_hyperparameters(
            n_train,
            n_epochs=int(given.get("n_epochs") or 0) or None,
            batch_size=int(given.get("batch_size") or 0) or None,
            learning_rate_multiplier=float(given.get("learning_rate_multiplier") or 0) or None,
        )
        self.log(ctx, f"hyperparameters: {hp.values()} ({', '.join(f'{k}: {v}' for k, v in hp.sources)})")
        cost = self.gate_cost(ctx, train["report"], base_model, n_train, hp.n_epochs, gates)

        train_bytes = self.rt.artifacts.get_bytes(train["digest"])
        validation_bytes = self.rt.artifacts.get_bytes(validation["digest"]) if validation else b""
        seed = p.get("seed")
        seed = int(seed) if seed is not None else None
        plan = TrainingPlan(
            provider=self.provider.identity,
            base_model=base_model,
            train_hash=content_hash(train_bytes),
            validation_hash=content_hash(validation_bytes) if validation else "",
            hyperparameters=hp.values(),
            suffix=p.get("suffix", ""),
            seed=seed,
        )
        body = {
            "key": plan.key,
            "provider": plan.provider,
            "base_model": base_model,
            "train_digest": train["digest"],
            "validation_digest": validation["digest"] if validation else "",
            "train_hash": plan.train_hash,
            "validation_hash": plan.validation_hash,
            "hyperparameters": hp.values(),
            "hyperparameter_sources": dict(hp.sources),
            "suffix": plan.suffix,
            "seed": seed,
            "dataset_id": source.get("dataset_id", ""),
            "dataset_name": source.get("name", ""),
            "catalog": source.get("catalog", ""),
            "catalog_version": source.get("catalog_version", ""),
            "n_train": n_train,
            "n_validation": int(validation["report"].get("examples") or 0) if validation else 0,
            "cost": cost,
            "gates": {"train": train["gates"], **({"validation": validation["gates"]} if validation else {})},
        }
        self.log(ctx, f"gates passed; plan {plan.key}")
        ctx.progress(0.1, "gates passed", estimated_cost_usd=round(cost.get("cost_usd", 0.0), 4), train_examples=n_train)
        return body

    async def dataset_files(self, p: dict[str, Any]) -> dict[str, Any]:
        """The train (and validation) files as artifact refs, with where they come from."""
        if p.get("dataset_id"):
            dataset, files = await self.peers.dataset_files(p["dataset_id"])
            if ("train", "openai") not in files:
                raise DyagError("split_not_found", f"dataset {dataset.id} has no train split in the OpenAI format")
            return {
                "dataset_id": dataset.id,
                "name": dataset.id,
                "catalog": dataset.catalog,
                "catalog_version": dataset.catalog_version,
                "train": {"artifact": files[("train", "openai")], "manifest": files.get(("train", "manifest"))},
                "validation": {"artifact": files[("validation", "openai")], "manifest": files.get(("validation", "manifest"))}
                if ("validation", "openai") in files and dataset.split_counts.get("validation", 0) > 0 else None,
            }
        uploaded = p["uploaded"]

        def ref(digest: str, name: str) -> jobs_pb2.ArtifactRef:
            return jobs_pb2.ArtifactRef(name=name, digest=digest, size=0, media_type="application/jsonl")

        return {
            "name": uploaded.get("name", ""),
            "catalog": uploaded.get("catalog", ""),
            "catalog_version": uploaded.get("catalog_version", ""),
            "train": {"artifact": ref(uploaded["train_digest"], "train.jsonl"), "manifest": None},
            "validation": {"artifact": ref(uploaded["validation_digest"], "validation.jsonl"), "manifest": None}
            if uploaded.get("validation_digest") else None,
        }

    async def validate(self, artifact, manifest, filename: str, source: dict, base_model: str, allow_pii: bool,
                       content: bytes | None = None) -> dict[str, Any]:
        dataset = validation_pb2.DatasetSource(filename=filename)
        if content is not None:
            dataset.content = content
        else:
            dataset.artifact.CopyFrom(artifact)
            if manifest is not None:
                dataset.manifest_artifact.CopyFrom(manifest)
        request = validation_pb2.ValidateRequest(
            dataset=dataset, catalog=source.get("catalog", ""), catalog_version=source.get("catalog_version", ""),
            model=base_model, bound_for_hosted_api=True, allow_pii=allow_pii,
        )
        try:
            result = await self.peers.validator().Validate(request, timeout=600)
        except grpc.aio.AioRpcError as exc:
            raise DyagError("unavailable", f"the validator could not check {filename}: {exc.details()}") from None
        return json_format.MessageToDict(result.report)

    async def gate_file(self, ctx: JobContext, split: str, source: dict, files: dict, base_model: str, gates: dict) -> dict[str, Any]:
        """Format and personal-data gates for one file; returns its (possibly redacted) digest and report."""
        artifact, manifest = files["artifact"], files["manifest"]
        filename = f"{split}.jsonl"
        allow_pii, redact_pii = bool(gates.get("allow_pii")), bool(gates.get("redact_pii"))
        report = await self.validate(artifact, manifest, filename, source, base_model, allow_pii and not redact_pii)
        digest = artifact.digest
        outcome: dict[str, Any] = {}

        # Format: the provider would refuse the file (or worse, train on broken lines).
        invalid, examples = int(report.get("invalid_lines") or 0), int(report.get("examples") or 0)
        if examples == 0:
            raise GateRefused("format", f"{filename} has no valid example (the validator found {invalid} invalid line(s))")
        if invalid:
            issues = "; ".join(f"line {int(i.get('line', 0))}: {i.get('code', '')}" for i in (report.get("issues") or [])[:5])
            if not gates.get("ignore_format_errors"):
                raise GateRefused(
                    "format", f"{filename} has {invalid} invalid line(s) ({issues}). Fix them (dyag dataset validate, dyag dataset "
                    "clean) or pass ignore_format_errors to upload it as it is",
                )
            self.log(ctx, f"format gate overridden: {filename} has {invalid} invalid line(s) ({issues})", "warning")
            outcome["format"] = f"overridden ({invalid} invalid lines)"
        else:
            outcome["format"] = "passed"

        # Personal data: never sent to a hosted API unless redacted or explicitly allowed.
        pii = report.get("pii") or {}
        counts = {k: int(v) for k, v in (pii.get("counts") or {}).items()}
        if counts and redact_pii:
            content = await self.redact(artifact, source, filename)
            digest = self.rt.artifacts.put_bytes(content, f"{split}.redacted.jsonl", "application/jsonl").digest
            again = await self.validate(None, None, filename, source, base_model, False, content=content)
            left = (again.get("pii") or {}).get("counts") or {}
            if (again.get("pii") or {}).get("blocking"):
                raise GateRefused("pii", f"{filename} still has personal data after redaction ({_counts(left)}); allow it explicitly (allow_pii) or fix the data")
            report = again
            self.log(ctx, f"personal data redacted in {filename} ({_counts(counts)})")
            outcome["pii"] = f"redacted ({_counts(counts)})"
        elif pii.get("blocking"):
            lines = [int(n) for n in (pii.get("lines") or [])[:10]]
            raise GateRefused(
                "pii", f"{filename} has personal data ({_counts(counts)}) on lines {lines}{'…' if len(pii.get('lines') or []) > 10 else ''}: "
                "it must not reach a hosted API as it is. Redact it (redact_pii) or allow it explicitly (allow_pii)",
                {"counts": counts},
            )
        elif counts:
            self.log(ctx, f"personal data in {filename} explicitly allowed ({_counts(counts)})", "warning")
            outcome["pii"] = f"allowed ({_counts(counts)})"
        else:
            outcome["pii"] = "none found"

        body = json.dumps({"split": split, "gates": outcome, "report": report}, ensure_ascii=False, default=str).encode()
        ctx.add_artifact(self.rt.artifacts.put_bytes(self.scrubber.text(body.decode()).encode(), f"validation-{split}.json", "application/json"))
        return {"digest": digest, "report": report, "gates": outcome}

    async def redact(self, artifact, source: dict, filename: str) -> bytes:
        request = validation_pb2.CleanRequest(
            dataset=validation_pb2.DatasetSource(artifact=artifact, filename=filename), redact_pii=True, catalog=source.get("catalog", ""),
        )
        try:
            return (await self.peers.validator().Clean(request, timeout=600)).content
        except grpc.aio.AioRpcError as exc:
            raise DyagError("unavailable", f"the validator could not redact {filename}: {exc.details()}") from None

    def gate_cost(self, ctx: JobContext, report: dict, base_model: str, n_train: int, epochs: int, gates: dict) -> dict[str, Any]:
        """The cost estimate, shown; above the budget (or unknown), the job is refused unless ignore_budget."""
        budget = self.settings.openai_budget_usd
        if float(gates.get("budget_usd") or 0) > 0:
            budget = min(budget, float(gates["budget_usd"]))
        ignore = bool(gates.get("ignore_budget"))
        billed = int((report.get("tokens") or {}).get("billed_tokens") or 0)
        if not billed:
            reason = "the validator could not count the dataset's tokens"
        else:
            try:
                estimate = estimate_cost(billed, base_model, n_examples=n_train, epochs=epochs, prices=self.settings.openai_prices)
            except DyagError:
                estimate, reason = None, f"no training price is known for {base_model} (add it to DYAG_OPENAI_PRICES, USD per 1M tokens)"
            else:
                cost = estimate.to_dict() | {"budget_usd": budget}
                line = (f"estimated cost: {billed} tokens x {epochs} epochs x {estimate.price_per_million:.2f} $/M = "
                        f"{_usd(estimate.cost_usd)} $ (budget {_usd(budget)} $)")
                self.log(ctx, line)
                if estimate.cost_usd > budget:
                    if not ignore:
                        raise GateRefused(
                            "budget", f"the {line}. Raise DYAG_OPENAI_BUDGET_USD, train on fewer examples or epochs, or pass "
                            "ignore_budget to accept this cost", {"cost_usd": estimate.cost_usd, "budget_usd": budget},
                        )
                    self.log(ctx, f"budget gate overridden: {_usd(estimate.cost_usd)} $ > {_usd(budget)} $", "warning")
                    cost["budget_overridden"] = True
                return cost
        if not ignore:
            raise GateRefused("budget", f"the cost cannot be estimated: {reason}. Pass ignore_budget to train without an estimate")
        self.log(ctx, f"budget gate overridden: {reason}", "warning")
        return {"model": base_model, "cost_usd": 0.0, "budget_usd": budget, "budget_overridden": True, "unknown": reason}

    # --- 3 and 4: upload and remote job ------------------------------------------------------------
    async def upload(self, ctx: JobContext, plan: dict, state: JobState) -> dict[str, Any]:
        files: dict[str, Any] = {}
        for split in ("train", "validation"):
            digest = plan.get(f"{split}_digest")
            if not digest:
                continue
            data = await asyncio.to_thread(self.rt.artifacts.get_bytes, digest)
            key = upload_key(self.provider.base_url, data)
            known = self.store.upload(key)
            if known:
                self.log(ctx, f"{split}: reusing upload {known['file_id']} (same content already sent to this provider)")
                files[split] = {"file_id": known["file_id"], "reused": True}
                continue
            filename = f"dyag-{content_hash(data)[7:23]}-{split}.jsonl"
            found = await self.provider.call("files.list", self.find_file, filename, len(data),
                                             on_retry=self.retry_logger(ctx), check=ctx.check_cancelled)
            if found:
                self.log(ctx, f"{split}: the provider already has {filename} as {found} (uploaded before a restart); reusing it")
                file_id, reused = found, True
            else:
                attempts = 0

                async def upload_once(filename=filename, data=data) -> str:
                    nonlocal attempts
                    attempts += 1
                    if attempts > 1 and (earlier := await self.find_file(filename, len(data))):
                        return earlier  # the failed attempt's upload did arrive: do not send it twice
                    created = await self.provider.client.files.create(
                        file=(filename, data, "application/jsonl"), purpose="fine-tune", timeout=self.settings.openai_upload_timeout_s)
                    return created.id

                file_id = await self.provider.call(f"files.create ({split})", upload_once, on_retry=self.retry_logger(ctx),
                                                   check=ctx.check_cancelled)
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
        known = self.store.plan(key)
        if known and known.get("remote_job_id") and known.get("remote_status") not in ("failed", "cancelled"):
            self.log(ctx, f"reusing remote job {known['remote_job_id']} (same dataset and parameters: not paying twice)")
            return known["remote_job_id"], True
        if not known:
            self.store.put_plan(key, plan)
        found = None
        if self.settings.openai_send_metadata:
            found = await self.provider.call("fine_tuning.jobs.list", self.find_remote_job, key, on_retry=self.retry_logger(ctx),
                                             check=ctx.check_cancelled)
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
            if attempts > 1 and self.settings.openai_send_metadata and (earlier := await self.find_remote_job(key, job=True)):
                return earlier  # the failed attempt did create the job (its answer was lost): never pay twice
            return await self.provider.client.fine_tuning.jobs.create(**kwargs)

        job = await self.provider.call("fine_tuning.jobs.create", create_once, on_retry=self.retry_logger(ctx), check=ctx.check_cancelled)
        self.store.update_plan(key, remote_job_id=job.id, remote_status=job.status)
        self.log(ctx, f"remote job {job.id} created (base model {plan['base_model']}, status {job.status})")
        await self.emit_progress(ctx, job.id, job.status, message=f"remote job created (base model {plan['base_model']})")
        return job.id, False

    async def find_remote_job(self, key: str, *, job: bool = False):
        """The provider's live job for this plan (tagged with its key), among its newest 100 jobs."""
        page = await self.provider.client.fine_tuning.jobs.list(limit=100)
        for remote in page.data:
            if (remote.metadata or {}).get("dyag_plan") == key and remote.status not in ("failed", "cancelled"):
                return remote if job else remote.id
        return None

    def retry_logger(self, ctx: JobContext):
        def on_retry(what: str, attempt: int, status: int | None, delay: float, message: str) -> None:
            shown = f"HTTP {status}" if status else "no answer"
            self.log(ctx, f"{what}: {shown} ({message}); retry {attempt} in {delay:.1f} s", "warning")

        return on_retry

    # --- 5: monitoring -----------------------------------------------------------------------------
    async def monitor(self, ctx: JobContext, plan: dict, state: JobState):
        remote_id = state.remote_job_id
        client = self.provider.client
        interval = self.settings.openai_poll_interval_s
        seen = set(state.seen_events)
        last_status = ""
        polls = 0
        call = self.provider.call
        while True:
            job = await call("fine_tuning.jobs.retrieve", client.fine_tuning.jobs.retrieve, remote_id,
                             on_retry=self.retry_logger(ctx), check=ctx.check_cancelled)
            changed = False
            if job.status != last_status:
                changed = True
                last_status = job.status
                self.store.update_plan(plan["key"], remote_status=job.status)
                await self.emit_progress(ctx, remote_id, job.status, message=f"remote status: {job.status}")
                self.log(ctx, f"remote job {remote_id}: {job.status}")
            fresh = await call("fine_tuning.jobs.list_events", self.new_events, remote_id, seen,
                               on_retry=self.retry_logger(ctx), check=ctx.check_cancelled)
            for event in fresh:
                changed = True
                seen.add(event.id)
                state.seen_events.append(event.id)
                await self.on_remote_event(ctx, remote_id, job.status, event, state)
            polls += 1
            if job.status == "succeeded" or polls % max(self.settings.openai_checkpoints_every_polls, 1) == 0:
                await self.read_checkpoints(ctx, remote_id, state)
            state.save()
            fraction, step = self.fraction(job.status, state.metrics)
            ctx.progress(fraction, step, **{("remote_step" if k == "step" else k): v for k, v in state.metrics.items() if v is not None})
            if job.status in REMOTE_ENDED:
                break
            interval = self.settings.openai_poll_interval_s if changed else min(
                interval * self.settings.openai_poll_backoff, self.settings.openai_poll_max_interval_s)
            await pause(interval, ctx.check_cancelled)

        if job.status == "failed":
            error = job.error
            reason = f"{error.code}: {error.message}" if error else "no reason given"
            raise ProviderRefusal(
                self.scrubber.text(
                    f"the remote fine-tuning job {remote_id} failed at the provider ({reason}). What to do next: fix what the "
                    "provider names (check the files with `dyag dataset validate --hosted`), then submit again; unchanged files "
                    "are not uploaded twice"
                ),
                provider_message=reason, code="remote_job_failed",
            )
        if job.status == "cancelled":
            raise ProviderRefusal(f"the remote fine-tuning job {remote_id} was cancelled at the provider", code="remote_job_cancelled")
        if not job.fine_tuned_model:
            raise ProviderRefusal(f"the remote job {remote_id} succeeded but names no fine-tuned model", code="remote_job_incomplete")
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
        metrics = {k: data.get(k) for k in ("step", "total_steps", "train_loss", "valid_loss", "train_mean_token_accuracy",
                                              "valid_mean_token_accuracy", "full_valid_loss") if isinstance(data.get(k), (int, float))}
        if metrics:
            state.metrics.update({k: float(v) for k, v in metrics.items()})
        else:
            self.log(ctx, f"provider: {event.message}", {"warn": "warning"}.get(event.level, event.level))
        await self.emit_progress(ctx, remote_id, status, message=event.message, level=event.level, event_id=event.id,
                                 created_at=now_rfc3339(event.created_at), **metrics)

    async def read_checkpoints(self, ctx: JobContext, remote_id: str, state: JobState) -> None:
        client = self.provider.client
        page = await self.provider.call("fine_tuning.jobs.checkpoints.list", client.fine_tuning.jobs.checkpoints.list, remote_id,
                                        on_retry=self.retry_logger(ctx), check=ctx.check_cancelled)
        known = {c["id"] for c in state.checkpoints}
        for checkpoint in sorted(page.data, key=lambda c: c.step_number):
            if checkpoint.id in known:
                continue
            metrics = checkpoint.metrics.model_dump(exclude_none=True) if checkpoint.metrics else {}
            state.checkpoints.append({"id": checkpoint.id, "step": checkpoint.step_number, "model": checkpoint.fine_tuned_model_checkpoint,
                                      "metrics": metrics})
            if "full_valid_loss" in metrics:
                state.metrics["full_valid_loss"] = float(metrics["full_valid_loss"])

    @staticmethod
    def fraction(status: str, metrics: dict[str, float]) -> tuple[float, str]:
        if status == "running" and metrics.get("total_steps"):
            done = metrics.get("step", 0) / metrics["total_steps"]
            return 0.3 + 0.55 * min(done, 1.0), f"training: step {int(metrics.get('step', 0))}/{int(metrics['total_steps'])}"
        return {"validating_files": (0.2, "the provider is validating the files"), "queued": (0.25, "queued at the provider"),
                "running": (0.3, "training"), "succeeded": (0.86, "trained: testing the model")}.get(status, (0.2, f"remote: {status}"))

    async def emit_progress(self, ctx: JobContext, remote_id: str, status: str, *, message: str = "", level: str = "info",
                            event_id: str = "", created_at: str = "", **metrics: float) -> None:
        payload = hosted_pb2.TrainingProgress(
            job_id=ctx.job_id, remote_job_id=remote_id, status=status, message=self.scrubber.text(message or ""), level=level or "info",
            remote_event_id=event_id, created_at=created_at or now_rfc3339(),
            step=int(metrics.get("step", 0)), total_steps=int(metrics.get("total_steps", 0)),
        )
        for name in ("train_loss", "valid_loss", "train_mean_token_accuracy", "valid_mean_token_accuracy", "full_valid_loss"):
            if metrics.get(name) is not None:
                setattr(payload, name, float(metrics[name]))
        try:
            await self.rt.bus.emit("training.progress", payload, subject=ctx.job_id, correlation_id=ctx.correlation_id)
        except Exception as exc:  # the job record stays the truth; an event lost to a NATS hiccup is not fatal
            log.warning("could not publish training.progress", extra={"job_id": ctx.job_id, "error": str(exc)})

    async def cancel_remote(self, ctx: JobContext, plan: dict, remote_id: str) -> None:
        if not remote_id:
            return
        try:
            job = await self.provider.call("fine_tuning.jobs.cancel", self.provider.client.fine_tuning.jobs.cancel, remote_id)
            self.store.update_plan(plan["key"], remote_status=job.status or "cancelled")
            self.log(ctx, f"remote job {remote_id} cancelled")
            await self.emit_progress(ctx, remote_id, job.status or "cancelled", message="cancelled at the user's request")
        except DyagError as exc:
            self.log(ctx, f"could not cancel remote job {remote_id}: {exc.message}", "error")

    # --- 6: the registry and the smoke test ---------------------------------------------------------
    async def register(self, ctx: JobContext, plan: dict, state: JobState, job) -> dict[str, Any]:
        model_id = job.fine_tuned_model
        final = {("remote_step" if k == "step" else k): v for k, v in state.metrics.items() if v is not None}
        ctx.progress(0.88, "smoke test: the guide's questions (step 4.5)", **final)  # the last metrics stay on the job
        smoke = await self.smoke_test(ctx, model_id)
        cost = dict(plan.get("cost") or {})
        price = price_for(plan["base_model"], self.settings.openai_prices)
        actual = (job.trained_tokens or 0) * price / 1_000_000 if price is not None and job.trained_tokens else 0.0
        remote_hp = job.hyperparameters.model_dump(exclude_none=True) if job.hyperparameters else {}
        model: dict[str, Any] = {
            "id": model_id,
            "target": f"openai:{model_id}",
            "base_model": plan["base_model"],
            "provider": plan["provider"],
            "job_id": ctx.job_id,
            "remote_job_id": job.id,
            "dataset_id": plan.get("dataset_id", ""),
            "dataset_name": plan.get("dataset_name", ""),
            "catalog": plan.get("catalog", ""),
            "catalog_version": plan.get("catalog_version", ""),
            "train_hash": plan["train_hash"],
            "validation_hash": plan.get("validation_hash", ""),
            "hyperparameters": plan["hyperparameters"],
            "cost": {
                "estimated_usd": float(cost.get("cost_usd") or 0.0),
                "actual_usd": round(actual, 6),
                "billed_tokens_per_epoch": int(cost.get("billed_tokens_per_epoch") or 0),
                "trained_tokens": int(job.trained_tokens or 0),
                "price_per_million": float(price or 0.0),
                "epochs": int(plan["hyperparameters"]["n_epochs"]),
            },
            "created_at": now_rfc3339(),
            "training_seconds": float((job.finished_at or time.time()) - job.created_at) if job.created_at else 0.0,
            "smoke_test": smoke,
            "lineage": {
                "plan_key": plan["key"],
                "files": {split: f["file_id"] for split, f in state.files.items()},
                "hyperparameter_sources": plan.get("hyperparameter_sources", {}),
                "remote_hyperparameters": remote_hp,
                "suffix": plan.get("suffix", ""),
                "seed": job.seed if getattr(job, "seed", None) is not None else plan.get("seed"),
                "n_train": plan.get("n_train", 0),
                "n_validation": plan.get("n_validation", 0),
                "gates": plan.get("gates", {}),
                "cost_estimate": cost,
                "checkpoints": state.checkpoints,
                "final_metrics": state.metrics,
                "remote_created_at": now_rfc3339(job.created_at) if job.created_at else "",
                "remote_finished_at": now_rfc3339(job.finished_at) if job.finished_at else "",
                "result_files": list(job.result_files or []),
            },
        }
        model = self.scrubber.data(model)
        card = json.dumps({"model_card": "dyag openai-trainer", **model}, ensure_ascii=False, indent=2, default=str)
        artifact = ctx.add_artifact(self.rt.artifacts.put_bytes(self.scrubber.text(card).encode(), "model-card.json", "application/json"))
        model["card"] = artifact.to_dict()
        self.store.put_model(model, plan["key"])
        self.store.update_plan(plan["key"], model_id=model_id, remote_status="succeeded")
        self.log(ctx, f"model {model_id} registered (target {model['target']})")
        event = hosted_pb2.ModelRegistered(
            model_id=model_id, target=model["target"], base_model=model["base_model"], job_id=ctx.job_id, remote_job_id=job.id,
            dataset_id=model["dataset_id"], catalog=model["catalog"], catalog_version=model["catalog_version"],
            train_hash=model["train_hash"], cost_usd=model["cost"]["actual_usd"] or model["cost"]["estimated_usd"], card=artifact.to_proto(),
        )
        try:
            await self.rt.bus.emit("model.registered", event, subject=model_id, correlation_id=ctx.correlation_id)
        except Exception as exc:
            log.warning("could not publish model.registered", extra={"job_id": ctx.job_id, "error": str(exc)})
        return model

    async def smoke_test(self, ctx: JobContext, model_id: str) -> list[dict[str, Any]]:
        answers = []
        client = self.provider.client
        for question in self.settings.openai_smoke_questions:
            start = time.perf_counter()
            messages = [{"role": "system", "content": self.settings.openai_smoke_system_prompt}, {"role": "user", "content": question}]
            try:
                reply = await self.provider.call(
                    "chat.completions.create", client.chat.completions.create, model=model_id, messages=messages,
                    max_tokens=self.settings.openai_smoke_max_tokens, temperature=0, check=ctx.check_cancelled,
                )
                answer = (reply.choices[0].message.content or "").strip() if reply.choices else ""
                answers.append({"question": question, "answer": answer, "error": "", "latency_ms": round((time.perf_counter() - start) * 1000, 1)})
                self.log(ctx, f"Q: {question} | R: {answer[:300]}")
            except DyagError as exc:
                answers.append({"question": question, "answer": "", "error": exc.message, "latency_ms": 0.0})
                self.log(ctx, f"smoke test: {question!r} got no answer: {exc.message}", "warning")
        return answers

    # --- results ---------------------------------------------------------------------------------
    def reuse_model(self, ctx: JobContext, plan: dict, known: dict) -> dict[str, Any]:
        model = self.store.model(known["model_id"])
        self.log(ctx, f"this dataset and these parameters already trained {model['id']} (remote job {model['remote_job_id']}): "
                      "reusing it, nothing uploaded or paid again")
        ctx.progress(1.0, "reused an already trained model")
        state = JobState(Path("."), files={s: {"file_id": f, "reused": True} for s, f in model["lineage"].get("files", {}).items()},
                         remote_job_id=model["remote_job_id"], reused_remote_job=True)
        return self.result(plan, state, model, reused_model=True)

    @staticmethod
    def result(plan: dict, state: JobState, model: dict, *, reused_model: bool) -> dict[str, Any]:
        return {
            "model_id": model["id"],
            "target": model["target"],
            "remote_job_id": model["remote_job_id"],
            "plan_key": plan["key"],
            "base_model": model["base_model"],
            "dataset_id": model.get("dataset_id", ""),
            "files": {split: f["file_id"] for split, f in state.files.items()},
            "reused_upload": all(f.get("reused") for f in state.files.values()) if state.files else False,
            "reused_remote_job": bool(state.reused_remote_job),
            "reused_model": reused_model,
            "hyperparameters": model["hyperparameters"],
            "estimated_cost_usd": model["cost"]["estimated_usd"],
            "actual_cost_usd": model["cost"]["actual_usd"],
            "smoke_test": model.get("smoke_test", []),
        }


def _usd(amount: float) -> str:
    return f"{amount:.2f}" if amount >= 0.01 or amount == 0 else f"{amount:.6f}".rstrip("0")


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{int(n)} {kind}" for kind, n in counts.items()) or "none"
