"""ExporterService and the "export.gguf" job: a LoRA model in, a checked GGUF export (and an Ollama model) out."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from dyag.v1 import dataset_pb2, export_pb2, export_pb2_grpc
from dyag_core.errors import DyagError
from dyag_core.evaluation import EvalCase, read_test_set
from dyag_core.evaluation.errors import EvaluationError
from dyag_core.export import (
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    MODES,
    ExportError,
    check_model_name,
    choose_probes,
    create_command,
    parse_quantizations,
)
from dyag_model_exporter.engine import Exporter, ExportInputs, ExportOptions, ExportOutcome, free_bytes
from dyag_model_exporter.settings import ExporterSettings
from dyag_runtime.artifacts import Artifact
from dyag_runtime.database import Database
from dyag_runtime.events import emit_from_thread, now_rfc3339
from dyag_runtime.jobs import JobContext, record_to_proto
from dyag_runtime.peers import SyncPeers, dataset_files
from dyag_runtime.registry import Registry
from dyag_runtime.server import Runtime

EXPORT = "export.gguf"
MEDIA = {
    ".gguf": "application/octet-stream",
    ".json": "application/json",
    ".md": "text/markdown",
    ".safetensors": "application/octet-stream",
    ".jinja": "text/plain",
    ".txt": "text/plain",
    "": "text/plain",
}


class ExportNotFound(DyagError):
    def __init__(self, export_id: str):
        super().__init__("export_not_found", f"export {export_id!r} not found")


class ExportRegistry(Registry):
    def __init__(self, db: Database | Path):
        super().__init__(db, "exports", ("model_id", "status"), not_found=ExportNotFound)


def export_id_for(job_id: str) -> str:
    """One export per job, whatever the number of attempts."""
    return "exp-" + hashlib.sha256(job_id.encode()).hexdigest()[:16]


def export_message(record: dict[str, Any]) -> export_pb2.ModelExport:
    return json_format.ParseDict(record, export_pb2.ModelExport(), ignore_unknown_fields=True)


def same_disk(a: Path, b: str) -> bool:
    if "://" in b:
        return False
    try:
        x, y = Path(a), Path(b)
        x.mkdir(parents=True, exist_ok=True)
        y.mkdir(parents=True, exist_ok=True)
        return os.stat(x).st_dev == os.stat(y).st_dev
    except OSError:
        return True


def parse_request(request: export_pb2.ExportRequest) -> dict[str, Any]:
    """The job's parameters, checked now: a bad option is refused by the RPC, not by the job."""
    if not request.model_id and not request.base_model and not request.adapter_dir:
        raise ExportError(
            "invalid_request", "name the model to export: a LoRA model id (lora-…), or base_model (and adapter_dir)"
        )
    if request.model_id and request.adapter_dir:
        raise ExportError("invalid_request", "give model_id (its adapter comes along) or adapter_dir, not both")
    quantizations = parse_quantizations(request.quantizations)
    ollama_quantization = (
        parse_quantizations([request.ollama_quantization])[0] if request.ollama_quantization else quantizations[0]
    )
    if ollama_quantization not in quantizations:
        quantizations = (*quantizations, ollama_quantization)
    mode = request.mode or "merged"
    if mode not in MODES:
        raise ExportError("invalid_request", f"unknown mode {mode!r}; choose {' or '.join(MODES)}")
    if request.ollama_name:
        check_model_name(request.ollama_name)
    threshold = request.parity_threshold if request.HasField("parity_threshold") else None
    if threshold is not None and not 0 <= threshold <= 1:
        raise ExportError("invalid_request", f"parity_threshold must be between 0 and 1, not {threshold}")
    probes = [json_format.MessageToDict(p, preserving_proto_field_name=True) for p in request.probes]
    for i, probe in enumerate(probes, start=1):
        if not str(probe.get("question", "")).strip():
            raise ExportError("invalid_request", f"probe {i} has no question")
    return {
        "model_id": request.model_id,
        "base_model": request.base_model,
        "adapter_dir": request.adapter_dir,
        "quantizations": list(quantizations),
        "ollama_quantization": ollama_quantization,
        "ollama_name": request.ollama_name,
        "mode": mode,
        "system_prompt": request.system_prompt,
        "temperature": request.temperature if request.HasField("temperature") else DEFAULT_TEMPERATURE,
        "top_p": request.top_p if request.HasField("top_p") else DEFAULT_TOP_P,
        "probe_count": request.probe_count,
        "probes": probes,
        "parity_threshold": threshold,
        "name": request.name,
    }


class ExportJob:
    """The job handler. Runs in a worker thread (CPU-bound); the event loop stays free for RPCs."""

    def __init__(
        self, rt: Runtime, settings: ExporterSettings, registry: ExportRegistry, loop: asyncio.AbstractEventLoop
    ):
        self.rt, self.settings, self.registry, self.loop = rt, settings, registry, loop

    # --- the other services ---
    def trainer_model(self, model_id: str) -> dict[str, Any]:
        with SyncPeers(self.settings) as peers:
            model = peers.lora_model(model_id)
        return json_format.MessageToDict(model, preserving_proto_field_name=True)

    def dataset(self, dataset_id: str) -> dataset_pb2.Dataset:
        with SyncPeers(self.settings) as peers:
            return peers.dataset(dataset_id)

    # --- inputs ---
    def resolve(self, params: dict[str, Any], ctx: JobContext) -> ExportInputs:
        from dyag_llm.base import LLMError
        from dyag_llm.local import hub_allowed, resolve_base_model

        lineage: dict[str, Any] = {}
        adapter_dir: Path | None = None
        base_name = params.get("base_model") or ""
        if params.get("model_id"):
            model = self.trainer_model(params["model_id"])
            lineage = {
                k: model.get(k, "")
                for k in ("dataset_id", "dataset_hash", "validation_hash", "catalog", "catalog_version")
            }
            lineage.update(model_id=model["id"], model_name=model.get("name", ""))
            base_name = base_name or model.get("base_model") or "default"
            adapter_dir = ctx.workdir / "adapter"
            for artifact in model.get("artifacts", []):
                if (
                    artifact["name"] in ("adapter_model.safetensors", "adapter_config.json")
                    and not (adapter_dir / artifact["name"]).is_file()
                ):
                    self.rt.artifacts.fetch(artifact["digest"], adapter_dir / artifact["name"])
        elif params.get("adapter_dir"):
            adapter_dir = Path(params["adapter_dir"]).expanduser()
        try:
            resolved = resolve_base_model(base_name or "default", allow_hub=hub_allowed(self.settings.allow_hub_models))
        except LLMError as exc:
            raise ExportError(exc.code, exc.message) from None
        base_path = Path(resolved)
        if (
            not base_path.is_dir()
        ):  # a hub id (GPU nodes with hub access): the files the export reads, from the hub cache
            from huggingface_hub import snapshot_download

            ctx.progress(0.008, f"fetching {resolved} from the hub")
            base_path = Path(
                snapshot_download(resolved, allow_patterns=["*.json", "*.safetensors", "*.model", "*.jinja", "*.txt"])
            )
        lineage["base_model"] = base_name or "default"
        return ExportInputs(base_name or "default", base_path, adapter_dir, lineage)

    def probes(self, params: dict[str, Any], lineage: dict[str, Any], folder: Path) -> tuple[list[EvalCase], str]:
        """(the probes, where they come from): explicit probes, else the dataset's test split, else the model's
        validation file, else its train file (the facts it was taught); all of them, in choose_probes' order (the
        first ones are answered greedily, the reference answers read teacher-forced up to a token budget)."""
        if params.get("probes"):
            cases = [
                EvalCase.from_record({**p, "id": p.get("id") or f"probe-{i}"})
                for i, p in enumerate(params["probes"], start=1)
            ]
            return cases, "the probes of the request"
        sources: list[tuple[str, str, str]] = []  # (digest, file name, description)
        if lineage.get("dataset_id"):
            dataset = self.dataset(lineage["dataset_id"])
            files = dataset_files(dataset)
            for key in (("test", "eval"), ("test", "openai")):
                if key in files:
                    sources.append(
                        (files[key].digest, f"test.{key[1]}.jsonl", f"the test split of dataset {dataset.id}")
                    )
                    break
        if lineage.get("validation_hash"):
            sources.append((lineage["validation_hash"], "validation.jsonl", "the model's validation file"))
        if lineage.get("dataset_hash") and not lineage.get("dataset_id"):
            sources.append(
                (lineage["dataset_hash"], "train.jsonl", "the model's training file (the facts it was taught)")
            )
        for digest, name, what in sources:
            if not self.rt.artifacts.exists(digest):
                continue
            path = self.rt.artifacts.fetch(digest, folder / "probes" / name)
            try:
                cases = list(read_test_set(path).cases)
            except EvaluationError as exc:
                raise ExportError("no_probes", f"cannot read probes from {what}: {exc.message}") from None
            if cases:
                return choose_probes(cases, len(cases)), what
        raise ExportError(
            "no_probes",
            "the parity gate has no probe: this model has no dataset test split or validation file; "
            "send probes (questions with their expected answers) with the request",
        )

    # --- the job ---
    def __call__(self, ctx: JobContext) -> dict[str, Any]:
        params = ctx.params
        export_id = export_id_for(ctx.job_id)
        ctx.progress(0.005, "resolving the model")
        inputs = self.resolve(params, ctx)
        probes, probe_source = self.probes(params, inputs.lineage, ctx.workdir)
        ctx.log(f"parity probes: {len(probes)} from {probe_source}")
        name = (
            params.get("name")
            or inputs.lineage.get("model_name")
            or inputs.lineage.get("model_id")
            or inputs.base_path.name
        )
        ollama_name = params.get("ollama_name") or _default_ollama_name(inputs)
        options = ExportOptions(
            quantizations=tuple(params["quantizations"]),
            mode=params["mode"],
            ollama_name=ollama_name,
            ollama_quantization=params["ollama_quantization"],
            system_prompt=params.get("system_prompt") or DEFAULT_SYSTEM_PROMPT,
            temperature=params["temperature"],
            top_p=params["top_p"],
            probes=probes,
            parity_threshold=params["parity_threshold"]
            if params.get("parity_threshold") is not None
            else self.settings.parity_threshold,
            max_accuracy_drop=self.settings.parity_max_accuracy_drop,
            max_tokens=self.settings.parity_max_tokens,
            greedy_probes=params.get("probe_count") or self.settings.parity_probes,
            scored_tokens=self.settings.parity_scored_tokens,
        )
        exports_dir = self.settings.data_dir / "exports"
        copies = 2 if same_disk(self.settings.data_dir, self.rt.settings.artifact_root()) else 1
        exporter = Exporter(
            ctx.workdir / "export",
            progress=lambda f, s: ctx.progress(f, s),
            log=ctx.log,
            should_stop=ctx.check_cancelled,
            free_space=free_bytes,
            copies=copies,
            threads=self.settings.llama_threads,
            llama=_llama(self.settings),
        )
        outcome = exporter.run(inputs, options)
        ctx.progress(0.96, "storing the export")
        bundle = exports_dir / export_id
        if bundle.exists():
            shutil.rmtree(bundle)
        bundle.parent.mkdir(parents=True, exist_ok=True)
        os.replace(outcome.folder, bundle)
        outcome.folder = bundle
        files = self._store(ctx, outcome)
        record = self._record(ctx, export_id, name, params, inputs, options, outcome, files, probe_source)
        if outcome.passed and params.get("ollama_name") and self.settings.ollama_host:
            ctx.progress(0.98, f"creating {ollama_name} on Ollama at {self.settings.ollama_host}")
            record["ollama"].update(self._ollama_create(ctx, outcome, ollama_name, files))
        elif params.get("ollama_name") and not outcome.passed:
            ctx.log(f"{ollama_name} not created on Ollama: the parity gate failed", "warning")
        self.registry.put(record)
        self._emit("export.completed", export_pb2.ExportCompleted(export=export_message(record)), ctx)
        if not outcome.passed:
            raise ExportError(
                "parity_failed",
                f"{outcome.failure()} (export {export_id} is in the registry, marked failed). What to do: "
                f"read the figures per level in {bundle / 'parity.json'}; a level whose KL divergence alone is over "
                "its limit loses too much: keep a finer one (f16, q8_0); a tokenizer, chat template or adapter "
                "failure is a broken conversion: check the model folder and llama.cpp's version",
            )
        ctx.log(
            f"export {export_id}: "
            f"{', '.join(f.name for f in outcome.files if f.kind.endswith('gguf'))}; {outcome.command}"
        )
        return {
            "export_id": export_id,
            "status": record["status"],
            "bundle_dir": str(bundle),
            "command": record["ollama"]["command"],
            "ollama_created": record["ollama"]["created"],
        }

    def _store(self, ctx: JobContext, outcome: ExportOutcome) -> list[dict[str, Any]]:
        files = []
        for info in outcome.files:
            path = outcome.folder / info.name
            artifact: Artifact = ctx.add_artifact(
                self.rt.artifacts.put_file(path, info.name, MEDIA.get(path.suffix, "application/octet-stream"))
            )
            files.append(
                {
                    "name": info.name,
                    "kind": info.kind,
                    "quantization": info.quantization,
                    "sha256": artifact.digest.removeprefix("sha256:"),
                    "size": artifact.size,
                    "artifact": artifact.to_dict(),
                }
            )
        return files

    def _record(
        self,
        ctx,
        export_id,
        name,
        params,
        inputs: ExportInputs,
        options: ExportOptions,
        outcome: ExportOutcome,
        files,
        probe_source,
    ) -> dict[str, Any]:
        adapter_sha = ""
        if inputs.adapter_dir is not None and (inputs.adapter_dir / "adapter_model.safetensors").is_file():
            from dyag_runtime.artifacts import file_digest

            adapter_sha = file_digest(inputs.adapter_dir / "adapter_model.safetensors").removeprefix("sha256:")
        lineage = inputs.lineage
        parity = []
        for report in outcome.parity:
            data = report.to_dict()
            data["seconds"] = outcome.timings.get(f"parity_{report.quantization}", 0.0)
            data["prompt_token_agreement"] = report.prompt_token_agreement or 0.0
            parity.append(data)
        return {
            "id": export_id,
            "name": name,
            "status": "succeeded" if outcome.passed else "failed",
            "error": outcome.failure(),
            "model_id": lineage.get("model_id", ""),
            "base_model": inputs.base_model,
            "base_model_resolved": str(inputs.base_path),
            "architecture": outcome.architecture,
            "adapter_sha256": adapter_sha,
            "dataset_id": lineage.get("dataset_id", ""),
            "dataset_hash": lineage.get("dataset_hash", ""),
            "catalog": lineage.get("catalog", ""),
            "catalog_version": lineage.get("catalog_version", ""),
            "mode": options.mode,
            "quantizations": list(options.quantizations),
            "files": files,
            "parity": parity,
            "ollama": {
                "name": options.ollama_name,
                "created": False,
                "host": "",
                "status": [],
                "command": create_command(options.ollama_name, "Modelfile", str(outcome.folder)),
                "modelfile": outcome.modelfile.text(),
            },
            "bundle_dir": str(outcome.folder),
            "job_id": ctx.job_id,
            "created_at": now_rfc3339(),
            "timings": {**outcome.timings, "probes_from": probe_source},
            "llama_cpp": _llama(self.settings).describe(),
        }

    def _ollama_create(
        self, ctx: JobContext, outcome: ExportOutcome, name: str, files: list[dict[str, Any]]
    ) -> dict[str, Any]:
        from dyag_llm.base import LLMError
        from dyag_llm.ollama import OllamaModels

        spec = outcome.modelfile
        digests = {f["name"]: "sha256:" + f["sha256"] for f in files}
        client = OllamaModels(self.settings.ollama_host, timeout=self.settings.ollama_timeout_s)
        try:
            for file_name in filter(None, (spec.model_file, spec.adapter_file)):
                uploaded = client.push_blob(outcome.folder / file_name, digests[file_name])
                ctx.log(f"Ollama blob {file_name}: {'uploaded' if uploaded else 'already there'}")
            statuses = client.create(spec.create_request(name, digests), on_status=lambda s: ctx.log(f"ollama: {s}"))
        except LLMError as exc:
            raise ExportError(
                "ollama_failed",
                f"{exc.message} (the export bundle is in {outcome.folder}; run there: {create_command(name)})",
            ) from None
        finally:
            client.close()
        return {"created": True, "host": client.host, "status": statuses}

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


def _default_ollama_name(inputs: ExportInputs) -> str:
    raw = inputs.lineage.get("model_name") or inputs.lineage.get("model_id") or inputs.base_path.name
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in raw.lower()).strip("-._") or "model"
    return check_model_name(f"dyag-{cleaned}"[:60])


_LLAMA = None


def _llama(settings: ExporterSettings):
    global _LLAMA
    if _LLAMA is None:
        from dyag_model_exporter.llama import find_llama_cpp

        _LLAMA = find_llama_cpp(settings.llama_cpp_dir)
    return _LLAMA


class ExporterServicer(export_pb2_grpc.ExporterServiceServicer):
    def __init__(self, rt: Runtime, settings: ExporterSettings, registry: ExportRegistry):
        self.rt, self.settings, self.registry = rt, settings, registry

    async def Export(self, request, context):
        params = parse_request(request)
        await asyncio.to_thread(_llama, self.settings)  # no llama.cpp here: refused now, not in the job
        if params["model_id"]:
            job = ExportJob(self.rt, self.settings, self.registry, asyncio.get_running_loop())
            await asyncio.to_thread(job.trainer_model, params["model_id"])  # an unknown model is refused now
        record = await self.rt.jobs.submit(EXPORT, params, request.correlation_id)
        return record_to_proto(record)

    async def GetExport(self, request, context):
        return export_message(self.registry.get(request.id))

    async def ListExports(self, request, context):
        exports = self.registry.list(request.limit or 100, model_id=request.model_id)
        return export_pb2.ListExportsResponse(exports=[export_message(e) for e in exports])

    async def ReadFile(self, request, context):
        record = self.registry.get(request.export_id)
        match = next((f for f in record["files"] if f["name"] == request.name), None)
        if match is None:
            names = ", ".join(f["name"] for f in record["files"])
            raise DyagError(
                "file_not_found", f"export {request.export_id} has no file {request.name!r}; it has {names}"
            )
        path = Path(record["bundle_dir"]) / match["name"]
        if not path.is_file():
            path = await asyncio.to_thread(
                self.rt.artifacts.fetch, match["artifact"]["digest"], self.settings.data_dir / "tmp" / match["sha256"]
            )
        with open(path, "rb") as f:
            while chunk := await asyncio.to_thread(f.read, 1 << 20):
                yield dataset_pb2.FileChunk(data=chunk)
