"""TrainerService and the "train.lora" job: a dataset in, a registered LoRA model (adapter + lineage) out."""

from __future__ import annotations

import asyncio
import hashlib
import json
import platform
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from dyag.v1 import training_pb2, training_pb2_grpc
from dyag_core.errors import DyagError
from dyag_core.training import (
    ChatExample,
    TrainingConfig,
    TrainingInputError,
    continued_config,
    count_facts,
    parse_chat_jsonl,
)
from dyag_gpu_lora_trainer.continuation import continued_base_model
from dyag_gpu_lora_trainer.registry import ModelRegistry
from dyag_gpu_lora_trainer.settings import TrainerSettings
from dyag_runtime.artifacts import Artifact
from dyag_runtime.contracts import lora_config_dict
from dyag_runtime.events import emit_from_thread
from dyag_runtime.jobs import JobContext, record_to_proto
from dyag_runtime.peers import SyncPeers, dataset_files
from dyag_runtime.server import Runtime

TRAIN = "train.lora"
ROLES = ("system", "user", "assistant")


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def model_id_for(job_id: str) -> str:
    """One model per job, whatever the number of attempts."""
    return "lora-" + hashlib.sha256(job_id.encode()).hexdigest()[:16]


def adapter_folder(model: dict[str, Any], data_dir: Path, artifacts) -> str:
    """A registered model's adapter folder on this replica, fetched back from the artifact store when missing."""
    folder = Path(model.get("adapter_dir") or data_dir / "models" / model["id"] / "adapter")
    if not (folder / "adapter_config.json").is_file():
        for artifact in model.get("artifacts", []):
            if artifact["name"] in ("adapter_model.safetensors", "adapter_config.json"):
                artifacts.fetch(artifact["digest"], folder / artifact["name"])
    return str(folder)


def loss_points(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trainer's log history as the curve's points: the training loss per logging step, the validation loss per
    evaluation (the trainer's summary entries, with neither, left out)."""
    points = []
    for entry in log_history:
        point = {k: float(entry[k]) for k in ("loss", "eval_loss") if isinstance(entry.get(k), int | float)}
        if point:
            points.append({"step": int(entry.get("step") or 0), **point})
    return points


def model_message(model: dict[str, Any]) -> training_pb2.LoraModel:
    body = {k: v for k, v in model.items() if k != "adapter_dir"}
    return json_format.ParseDict(body, training_pb2.LoraModel(), ignore_unknown_fields=True)


class LoraTrainingJob:
    """The job handler. Runs in a worker thread (CPU-bound); the event loop stays free for RPCs."""

    def __init__(
        self, rt: Runtime, settings: TrainerSettings, registry: ModelRegistry, loop: asyncio.AbstractEventLoop
    ):
        self.rt, self.settings, self.registry, self.loop = rt, settings, registry, loop

    # --- inputs ---
    def load_inputs(self, params: dict[str, Any]) -> dict[str, Any]:
        """Train and validation examples, with what the lineage says about them."""
        lineage: dict[str, Any] = {"dataset_id": "", "catalog": "", "catalog_version": "", "validation_hash": ""}
        if params.get("dataset_id"):
            with SyncPeers(self.settings) as peers:
                dataset = peers.dataset(params["dataset_id"])
            files = dataset_files(dataset)
            if ("train", "openai") not in files:
                raise TrainingInputError(
                    "malformed_dataset", f"dataset {dataset.id} has no train split in OpenAI chat format"
                )
            train_ref = files[("train", "openai")]
            val_ref = files.get(("validation", "openai"))
            train_bytes = self.rt.artifacts.get_bytes(train_ref.digest)
            val_bytes = self.rt.artifacts.get_bytes(val_ref.digest) if val_ref is not None else b""
            lineage.update(
                dataset_id=dataset.id,
                catalog=dataset.catalog,
                catalog_version=dataset.catalog_version,
                dataset_name=dataset.id,
            )
        else:
            train_bytes = self.rt.artifacts.get_bytes(params["train_artifact"])
            val_bytes = (
                self.rt.artifacts.get_bytes(params["validation_artifact"]) if params.get("validation_artifact") else b""
            )
            lineage["dataset_name"] = params.get("filename") or "uploaded"
        lineage["dataset_hash"] = "sha256:" + hashlib.sha256(train_bytes).hexdigest()
        if val_bytes:
            lineage["validation_hash"] = "sha256:" + hashlib.sha256(val_bytes).hexdigest()
        train = parse_chat_jsonl(train_bytes, "train")
        validation: list[ChatExample] = parse_chat_jsonl(val_bytes, "validation") if val_bytes.strip() else []
        return {"train": train, "validation": validation, "lineage": lineage}

    # --- the job ---
    def __call__(self, ctx: JobContext) -> dict[str, Any]:
        from dyag_gpu_lora_trainer.engine import LoraTrainer, loss_curve_png
        from dyag_llm.base import LLMError
        from dyag_llm.local import hub_allowed, resolve_base_model

        params = ctx.params
        ctx.progress(0.01, "reading the dataset")
        inputs = self.load_inputs(params)
        train, validation, lineage = inputs["train"], inputs["validation"], inputs["lineage"]
        config = TrainingConfig.from_dict(params.get("config") or {}).resolve(len(train), count_facts(train))
        ctx.log(f"{len(train)} training and {len(validation)} validation examples; {config.preset_reason}")
        init_adapter = None
        if params.get("init_model_id"):
            config, init_adapter, lineage["notes"] = self._continued(ctx, params, config)
            lineage["init_model_id"] = params["init_model_id"]
        ctx.progress(0.02, "preparing the base model")
        try:
            base_path = resolve_base_model(config.base_model, allow_hub=hub_allowed(self.settings.allow_hub_models))
        except LLMError as exc:
            raise TrainingInputError(exc.code, exc.message) from None

        def on_progress(p: dict[str, Any]) -> None:
            total = max(int(p.get("total_steps") or 1), 1)
            fraction = 0.05 + 0.9 * min(p["step"] / total, 1.0)
            text = f"training: step {p['step']}/{total}"
            if "loss" in p:
                text += f", loss {p['loss']:.4f}"
            if p.get("eval_loss") is not None:
                text += f", eval loss {p['eval_loss']:.4f}"
            metrics = {
                k: p[k]
                for k in (
                    "step",
                    "total_steps",
                    "epoch",
                    "loss",
                    "eval_loss",
                    "learning_rate",
                    "tokens_per_second",
                    "eta_seconds",
                    "grad_norm",
                )
                if p.get(k) is not None
            }
            ctx.progress(fraction, text, **metrics)

        def on_eval(p: dict[str, Any]) -> None:
            event = training_pb2.LoraTrainingProgress(
                job_id=ctx.job_id,
                step=p["step"],
                total_steps=p.get("total_steps", 0),
                epoch=p.get("epoch", 0.0),
                loss=p.get("loss", 0.0),
                eval_loss=p["eval_loss"],
                learning_rate=p.get("learning_rate", 0.0),
                tokens_per_second=p.get("tokens_per_second", 0.0),
                eta_seconds=p.get("eta_seconds", 0.0),
            )
            self._emit("training.lora.progress", event, ctx)

        trainer = LoraTrainer(
            config,
            base_path,
            ctx.workdir,
            on_progress=on_progress,
            on_eval=on_eval,
            should_stop=lambda: ctx.cancelled,
            log_fn=ctx.log,
            init_adapter=init_adapter,
        )
        if ctx.resumed:
            ctx.log(f"attempt {ctx.attempt}: looking for a checkpoint in the job's work folder")
        result = trainer.train(train, validation)
        ctx.progress(0.96, "saving the adapter and its model card")
        model = self._register(ctx, params, config, base_path, lineage, result, loss_curve_png)
        self._emit("model.trained", training_pb2.LoraModelTrained(model=model_message(model)), ctx)
        ctx.log(
            f"model {model['id']} registered: loss {result.metrics['first_loss']:.3f} -> "
            f"{result.metrics['final_loss']:.3f}, {result.metrics['tokens_per_second']} tokens/s"
        )
        return {
            "model_id": model["id"],
            "metrics": result.metrics,
            "target": model["target"],
            "init_model_id": model["init_model_id"],
        }

    def _continued(self, ctx: JobContext, params: dict[str, Any], config) -> tuple[Any, str, list[str]]:
        """A run that continues a registered model: its adapter folder, and the run's config with that adapter's LoRA
        shape (what the config asked otherwise is logged, and written in the model card)."""
        initial = self.registry.get(params["init_model_id"])
        continued_base_model(params.get("config") or {}, initial)  # checked by Train; the registry may have changed
        config, notes = continued_config(
            config, initial.get("hyperparameters") or {}, params.get("config") or {}, initial["id"]
        )
        ctx.log(
            f"continuing model {initial['id']} ({initial['name']}): its adapter is the starting point, and its LoRA "
            f"shape the run's (r={config.r}, lora_alpha={config.lora_alpha}, lora_dropout={config.lora_dropout:g}, "
            f"target_modules={','.join(config.target_modules)})"
        )
        for note in notes:
            ctx.log(note, "warning")
        folder = adapter_folder(initial, self.settings.data_dir, self.rt.artifacts)
        return config, folder, notes

    def _register(self, ctx, params, config, base_path, lineage, result, loss_curve_png) -> dict[str, Any]:
        model_id = model_id_for(ctx.job_id)
        out = ctx.workdir / "outputs"
        out.mkdir(parents=True, exist_ok=True)
        hardware = result.hardware
        name = (
            params.get("name")
            or f"{Path(config.base_model).name or config.base_model}-{lineage.get('dataset_id') or 'uploaded'}-lora"
        )
        artifacts: list[Artifact] = []
        for file in ("adapter_model.safetensors", "adapter_config.json"):
            media = "application/json" if file.endswith(".json") else "application/octet-stream"
            artifacts.append(ctx.add_artifact(self.rt.artifacts.put_file(result.adapter_dir / file, file, media)))
        metrics_path = out / "metrics.json"
        metrics_path.write_text(
            json.dumps({"metrics": result.metrics, "log_history": result.log_history}, indent=2, default=str)
        )
        artifacts.append(ctx.add_artifact(self.rt.artifacts.put_file(metrics_path, "metrics.json", "application/json")))
        curve = loss_curve_png(
            result.log_history, out / "loss_curve.png", f"{name} ({hardware.precision_label}, {hardware.description})"
        )
        artifacts.append(ctx.add_artifact(self.rt.artifacts.put_file(curve, "loss_curve.png", "image/png")))
        # The adapter where Generate reads it (a replica without it fetches it back from the artifacts).
        adapter_dir = self.settings.data_dir / "models" / model_id / "adapter"
        if adapter_dir.exists():
            shutil.rmtree(adapter_dir)
        shutil.copytree(result.adapter_dir, adapter_dir)
        model = {
            "id": model_id,
            "name": name,
            "base_model": config.base_model,
            "base_model_resolved": base_path,
            "target": f"local:{base_path}+{adapter_dir}",
            "job_id": ctx.job_id,
            "dataset_id": lineage.get("dataset_id", ""),
            "dataset_hash": lineage["dataset_hash"],
            "validation_hash": lineage.get("validation_hash", ""),
            "catalog": lineage.get("catalog", ""),
            "catalog_version": lineage.get("catalog_version", ""),
            "hyperparameters": config.hyperparameters() | {"preset_reason": config.preset_reason},
            "metrics": {k: v for k, v in result.metrics.items() if v is not None},
            "created_at": now_rfc3339(),
            "hardware": hardware.description,
            "precision": hardware.precision_label,
            "backend": hardware.backend,
            "init_model_id": lineage.get("init_model_id", ""),
            "loss_history": loss_points(result.log_history),
        }
        card = out / "MODEL_CARD.md"
        card.write_text(model_card(model, lineage), encoding="utf-8")
        artifacts.append(ctx.add_artifact(self.rt.artifacts.put_file(card, "MODEL_CARD.md", "text/markdown")))
        model["artifacts"] = [a.to_dict() for a in artifacts]
        model["adapter_dir"] = str(adapter_dir)
        self.registry.put(model)
        return model

    def _emit(self, event_type: str, payload, ctx: JobContext) -> None:
        emit_from_thread(
            self.rt.bus,
            self.loop,
            event_type,
            payload,
            subject=ctx.job_id,
            correlation_id=ctx.correlation_id,
            best_effort=True,
        )


def model_card(model: dict[str, Any], lineage: dict[str, Any]) -> str:
    m, h = model["metrics"], model["hyperparameters"]
    rows = "\n".join(f"| {k} | {v} |" for k, v in h.items())
    started_from = (
        f"the adapter of {model['init_model_id']} (continued training: its LoRA shape is this model's)"
        if model.get("init_model_id")
        else "a fresh LoRA adapter"
    )
    notes = "".join(f"\n- {note}" for note in lineage.get("notes") or ())
    notes = f"\n\nNotes:\n{notes}" if notes else ""
    metric_rows = "\n".join(f"| {k} | {v} |" for k, v in m.items())
    return f"""# {model["name"]} ({model["id"]})

A LoRA adapter trained by Dyag's gpu-lora-trainer (the guide's step 5).

## Lineage

| | |
|---|---|
| base model | {model["base_model"]} (`{model["base_model_resolved"]}`) |
| started from | {started_from} |
| catalog | {model["catalog"] or "-"} version {model["catalog_version"] or "-"} |
| dataset | {model["dataset_id"] or lineage.get("dataset_name", "uploaded")} |
| train file hash | {model["dataset_hash"]} |
| validation file hash | {model["validation_hash"] or "-"} |
| trained | {model["created_at"]} by job {model["job_id"]} |
| hardware | {model["hardware"]} ({platform.system()} {platform.release()}) |
| precision | {model["precision"]} |
| backend | {model["backend"]} |

## Hyperparameters

| name | value |
|---|---|
{rows}{notes}

## Metrics

| name | value |
|---|---|
{metric_rows}

The loss is the mean cross-entropy on the assistant's tokens only. The curve is `loss_curve.png`.

## Use

    dyag query_finetuned {model["id"]} "Qu'est-ce que l'application … ?"

or, from Python, `dyag_llm.open_chat_model("{model["target"]}")`.
"""


class TrainerServicer(training_pb2_grpc.TrainerServiceServicer):
    def __init__(self, rt: Runtime, settings: TrainerSettings, registry: ModelRegistry):
        self.rt, self.settings, self.registry = rt, settings, registry

    def _check_dataset(self, dataset_id: str) -> None:
        with SyncPeers(self.settings) as peers:
            peers.dataset(dataset_id)

    async def Train(self, request, context):
        config = lora_config_dict(request.config)
        if request.init_model_id:  # an unknown model or another base model is refused now, not in the job
            config = continued_base_model(config, self.registry.get(request.init_model_id))
        TrainingConfig.from_dict(config)  # a bad option is refused now, not in the job
        params: dict[str, Any] = {"config": config, "name": request.name}
        if request.init_model_id:
            params["init_model_id"] = request.init_model_id
        source = request.data.WhichOneof("source")
        if source == "dataset_id":
            params["dataset_id"] = request.data.dataset_id
            await asyncio.to_thread(self._check_dataset, request.data.dataset_id)  # an unknown dataset is refused now
        elif source == "train_content":
            limit = self.settings.max_upload_bytes
            if len(request.data.train_content) + len(request.data.validation_content) > limit:
                raise DyagError("too_large", f"the uploaded dataset is larger than {limit} bytes")
            filename = Path(request.data.filename or "train.jsonl").name
            train = await asyncio.to_thread(
                self.rt.artifacts.put_bytes, request.data.train_content, filename, "application/jsonl"
            )
            params.update(train_artifact=train.digest, filename=filename)
            if request.data.validation_content:
                val = await asyncio.to_thread(
                    self.rt.artifacts.put_bytes,
                    request.data.validation_content,
                    "validation.jsonl",
                    "application/jsonl",
                )
                params["validation_artifact"] = val.digest
        else:
            raise DyagError("missing_dataset", "send a dataset id or the training data (OpenAI chat JSONL)")
        record = await self.rt.jobs.submit(TRAIN, params, request.correlation_id)
        return record_to_proto(record)

    async def GetModel(self, request, context):
        return model_message(self.registry.get(request.id))

    async def ListModels(self, request, context):
        models = self.registry.list(request.base_model, request.dataset_id, request.limit or 100)
        return training_pb2.ListLoraModelsResponse(models=[model_message(m) for m in models])

    def _adapter_dir(self, model: dict[str, Any]) -> str:
        return adapter_folder(model, self.settings.data_dir, self.rt.artifacts)

    async def Generate(self, request, context):
        from dyag_llm.local import LocalChatModel, hub_allowed

        if not request.conversations:
            raise DyagError("no_conversation", "send at least one conversation to answer")
        if len(request.conversations) > self.settings.generate_max_batch:
            raise DyagError("too_large", f"at most {self.settings.generate_max_batch} conversations per call")
        batch = []
        for i, conversation in enumerate(request.conversations, start=1):
            messages = [{"role": m.role, "content": m.content} for m in conversation.messages]
            if not messages or any(m["role"] not in ROLES for m in messages) or messages[-1]["role"] == "assistant":
                raise DyagError(
                    "invalid_conversation",
                    f"conversation {i} must be system/user/assistant messages ending with the question",
                )
            batch.append(messages)
        if request.model_id:
            model = self.registry.get(request.model_id)
            adapter = await asyncio.to_thread(self._adapter_dir, model)
            base, name = model["base_model_resolved"], model["id"]
        else:
            base, adapter, name = request.base_model or "default", None, request.base_model or "default"
        chat = LocalChatModel(
            base,
            adapter,
            dtype=self.settings.generate_dtype,
            allow_hub=hub_allowed(self.settings.allow_hub_models),
            batch_size=self.settings.generate_max_batch,
        )
        max_tokens = request.max_tokens or self.settings.generate_max_tokens
        began = asyncio.get_running_loop().time()
        try:
            results = await asyncio.to_thread(
                chat.chat_batch, batch, max_tokens=max_tokens, temperature=request.temperature
            )
        except ImportError as exc:
            raise DyagError("unavailable", f"local models are not installed on this service: {exc}") from None
        latency = (asyncio.get_running_loop().time() - began) * 1000
        return training_pb2.GenerateResponse(
            generations=[
                training_pb2.Generation(
                    text=r.text, prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens
                )
                for r in results
            ],
            model=name,
            latency_ms=latency,
        )
