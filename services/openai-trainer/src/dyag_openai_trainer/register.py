"""Recording a "train.openai" job's model: the smoke test (the guide's step-4.5 questions), the registry entry
with its lineage and model card, `model.registered` (the target "openai:<id>"), and the job's result, also for
a model this plan had already trained."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from dyag.v1 import hosted_pb2
from dyag_core.errors import DyagError
from dyag_core.validation.cost import price_for
from dyag_openai_trainer.jobstate import JobState
from dyag_openai_trainer.step import Step, now_rfc3339
from dyag_runtime.jobs import JobContext

log = logging.getLogger(__name__)


class Registrar(Step):
    """Step 6: the trained model tested, recorded and announced; the job's result."""

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
        card_bytes = self.scrubber.text(card).encode()
        artifact = ctx.add_artifact(self.rt.artifacts.put_bytes(card_bytes, "model-card.json", "application/json"))
        model["card"] = artifact.to_dict()
        self.store.put_model(model, plan["key"])
        self.store.update_plan(plan["key"], model_id=model_id, remote_status="succeeded")
        self.log(ctx, f"model {model_id} registered (target {model['target']})")
        event = hosted_pb2.ModelRegistered(
            model_id=model_id,
            target=model["target"],
            base_model=model["base_model"],
            job_id=ctx.job_id,
            remote_job_id=job.id,
            dataset_id=model["dataset_id"],
            catalog=model["catalog"],
            catalog_version=model["catalog_version"],
            train_hash=model["train_hash"],
            cost_usd=model["cost"]["actual_usd"] or model["cost"]["estimated_usd"],
            card=artifact.to_proto(),
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
            messages = [
                {"role": "system", "content": self.settings.openai_smoke_system_prompt},
                {"role": "user", "content": question},
            ]
            try:
                reply = await self.provider.call(
                    "chat.completions.create",
                    client.chat.completions.create,
                    model=model_id,
                    messages=messages,
                    max_tokens=self.settings.openai_smoke_max_tokens,
                    temperature=0,
                    check=ctx.check_cancelled,
                )
                answer = (reply.choices[0].message.content or "").strip() if reply.choices else ""
                latency_ms = round((time.perf_counter() - start) * 1000, 1)
                answers.append({"question": question, "answer": answer, "error": "", "latency_ms": latency_ms})
                self.log(ctx, f"Q: {question} | R: {answer[:300]}")
            except DyagError as exc:
                answers.append({"question": question, "answer": "", "error": exc.message, "latency_ms": 0.0})
                self.log(ctx, f"smoke test: {question!r} got no answer: {exc.message}", "warning")
        return answers

    def reuse_model(self, ctx: JobContext, plan: dict, known: dict) -> dict[str, Any]:
        model = self.store.model(known["model_id"])
        self.log(
            ctx,
            f"this dataset and these parameters already trained {model['id']} "
            f"(remote job {model['remote_job_id']}): reusing it, nothing uploaded or paid again",
        )
        ctx.progress(1.0, "reused an already trained model")
        files = {split: {"file_id": f, "reused": True} for split, f in model["lineage"].get("files", {}).items()}
        state = JobState(Path("."), files=files, remote_job_id=model["remote_job_id"], reused_remote_job=True)
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
