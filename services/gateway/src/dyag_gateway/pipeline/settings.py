"""A pipeline's settings: the gateway's DYAG_* settings of pipelines, the request (POST /pipelines), and the
parameters it runs with once every default is filled in for the trainer's device."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dyag_core.export import ExportError, parse_quantizations
from dyag_core.nesting import check_depth
from dyag_gateway.params import Body, Label
from dyag_gateway.pipeline.model import EXPORT_TARGETS, FINE_TUNED_TARGETS, TARGETS


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


# --- parameters ------------------------------------------------------------------------------------------------

# Defaults by the trainer's device. CPU: sized so that the sample catalog (45 applications) goes through every step in
# about 10 minutes on a 2-core machine (bench/bench_pipeline.py); CUDA: the guide's sizes. The dataset keeps the guide's
# 1,000 questions on a CPU too (it builds in a second; the training budget is in steps): with fewer, the paraphrase
# split's test set holds only the catalog-wide types (a fact needs two phrasings to send one to test), and the
# evaluation would ask no question about an application's status, domain or actors.
DEVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    # CPU: one question at a time per evaluation (concurrent calls to a CPU model only queue, and the latency measured
    # would be the queue's), RAG with 3 chunks (the prompt's prefill is most of a CPU answer's time).
    # The training runs alone (its two torch threads lose most of their speed when anything else runs on two cores);
    # the evaluations two at a time (a CPU model generates on one thread: RAG's in rag-service beside the base and
    # fine-tuned models' in gpu-lora-trainer), when the evaluator runs two jobs at once (else they queue there).
    # The base target: on a CPU, the training keeps a small model (its 10-minute budget) and the base target is the
    # capable CPU model RAG falls back to, through llama.cpp (one engine for base and RAG); on a GPU, the
    # fine-tuning's own base model, so that the fine-tuned model is compared with what it started from.
    "cpu": {
        "num_questions": 1000,
        "max_steps": 16,
        "max_eval_questions": 30,
        "max_parallel": 2,
        "train_alone": True,
        "eval_max_tokens": 96,
        "eval_concurrency": 1,
        "rag_n_chunks": 3,
        "learning_rate": 1e-3,
        "base_llm": "gguf:qwen2.5-0.5b",
    },
    "cuda": {
        "num_questions": 1000,
        "max_steps": 0,
        "max_eval_questions": 0,
        "max_parallel": 3,
        "train_alone": False,
        "eval_max_tokens": 0,
        "eval_concurrency": None,
        "rag_n_chunks": 0,
        "learning_rate": None,
        "base_llm": "",
    },
}
TUNED = (
    "num_questions",
    "max_steps",
    "max_eval_questions",
    "max_parallel",
    "train_alone",
    "eval_max_tokens",
    "eval_concurrency",
    "rag_n_chunks",
    "base_llm",
)
BASE_LLM_KINDS = ("gguf", "ollama")  # what the base target may answer with besides the fine-tuning's base model


class PipelineRequest(Body):
    """POST /pipelines. Every parameter has a default; unset ones follow the trainer's device (DEVICE_DEFAULTS)."""

    catalog: str = Field(
        "", description="the catalog's name: a stored catalog, or the name to store catalog_content under"
    )
    catalog_version: str = Field("", description="with a stored catalog: that version (empty: the latest)")
    catalog_content: str = Field(
        "", description="the catalog file itself (keyed JSON, JSON list, JSONL or CSV), as text"
    )
    catalog_base64: str = Field("", description="or its bytes, base64-encoded")
    catalog_filename: str = Field(
        "", description="the file's name (helps detect its format; names the catalog by default)"
    )
    num_questions: int | None = Field(None, ge=1, le=100_000, description="dataset size; default: 1000")
    question_types: list[str] = Field(default_factory=lambda: ["all"])
    seed: int = Field(42, ge=-(2**31), le=2**31 - 1, description="dataset, training and evaluation sample seed")
    base_model: str = Field("default", min_length=1, description="base model of the fine-tuning and of the base target")
    preset: Literal["auto", "small", "medium", "large", "knowledge"] = Field(
        "auto",
        description="the guide's Annex A preset (auto: by size), or knowledge: every phrasing of each fact in the "
        "dataset, and epochs sized by exposures per fact",
    )
    epochs: int | None = Field(None, ge=1, le=100, description="default: the preset's")
    max_steps: int | None = Field(
        None, ge=0, le=1_000_000, description="training steps; 0: whole epochs; default: 24 on CPU, 0 on GPU"
    )
    training_config: Annotated[dict[str, Any], AfterValidator(check_depth)] = Field(
        default_factory=dict, description="any other TrainingConfig option (r, learning_rate…)"
    )
    model_id: str = Field("", description="with skip=[train]: an existing fine-tuned model (lora-…) to evaluate")
    rag_collection: str = Field("", description="the RAG collection; default: the catalog's name")
    base_llm: str | None = Field(
        None,
        description="what the base target answers with: gguf:NAME (llama.cpp in the evaluator) or ollama:NAME; "
        "'' for base_model through gpu-lora-trainer; default: gguf:qwen2.5-0.5b on CPU, base_model on GPU",
    )
    rag_llm: str = Field(
        "", description="the chat model RAG answers with; empty: rag-service's default (gguf:qwen2.5-0.5b)"
    )
    rag_mode: Literal["auto", "grounded", "generative"] = Field(
        "auto",
        description="how RAG answers: auto (from the records when the question is understood, else the model), "
        "grounded (the records only) or generative (the model always)",
    )
    rag_n_chunks: int | None = Field(
        None, ge=0, le=50, description="chunks given to RAG's model; 0: the service's (5); default: 3 on CPU"
    )
    targets: list[Literal["base", "fine_tuned", "rag", "grounded", "hybrid", "gguf"]] = Field(
        default_factory=lambda: list(TARGETS),
        description="what is evaluated: base, fine_tuned, rag (in rag_mode), grounded, hybrid (RAG's retrieval as "
        "the fine-tuned model's context), gguf (the export's first level through llama.cpp; needs export); "
        "default: base, fine_tuned, rag, and gguf when export is given",
    )
    export: list[str] = Field(
        default_factory=list,
        description="export the fine-tuned model to GGUF at these quantization levels (f16, q8_0, q4_K_M; "
        "model-exporter, with its parity gate) after the training; empty: no export (the default)",
    )
    max_eval_questions: int | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description="test questions per target (a stratified sample); 0: all; default: 30 on CPU, all on GPU",
    )
    eval_max_tokens: int | None = Field(
        None, ge=0, le=4096, description="answer length per question; 0: the evaluator's default"
    )
    eval_concurrency: int | None = Field(
        None, ge=1, le=256, description="questions in flight per evaluation; default: the evaluator's"
    )
    skip_similarity: bool = Field(False, description="no semantic similarity in the evaluation (no embedding model)")
    skip: list[Literal["validate", "train", "index", "evaluate", "report"]] = Field(default_factory=list)
    max_parallel: int | None = Field(
        None, ge=1, le=16, description="heavy steps at once (training, indexing, evaluations)"
    )
    train_alone: bool | None = Field(None, description="no other heavy step while the training runs; default: on CPU")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="size the defaults for this device; auto: the trainer's"
    )
    name: Label = Field("", description="a label for the pipeline")

    @field_validator("targets", "skip")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("export")
    @classmethod
    def _levels(cls, value: list[str]) -> list[str]:
        """The levels in their canonical spelling ("Q8_0" is q8_0, "q8_0,f16" two of them); an unknown one refused."""
        if not any(v.strip() for v in value):
            return []
        try:
            return list(parse_quantizations(value))
        except ExportError as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _consistent(self) -> PipelineRequest:
        if self.catalog_content and self.catalog_base64:
            raise ValueError("give catalog_content or catalog_base64, not both")
        has_content = bool(self.catalog_content or self.catalog_base64)
        if not has_content and not self.catalog:
            raise ValueError("give a catalog: the name of a stored catalog, or the file in catalog_content")
        if has_content and self.catalog_version:
            raise ValueError("catalog_version names a stored version; it cannot go with catalog_content")
        evaluating = "evaluate" not in self.skip
        if evaluating and not self.targets:
            raise ValueError("targets is empty: name at least one of base, fine_tuned, rag (or skip evaluate)")
        tuned = [t for t in self.targets if t in FINE_TUNED_TARGETS]
        if evaluating and tuned and "train" in self.skip and not self.model_id:
            raise ValueError(
                f"skip=[train] with the {' and '.join(tuned)} target needs model_id (an existing lora-… model), "
                f"or leave {' and '.join(tuned)} out of targets"
            )
        if self.model_id and "train" not in self.skip:
            raise ValueError("model_id evaluates an existing model: it goes with skip=[train]")
        if self.base_llm and self.base_llm.partition(":")[0] not in BASE_LLM_KINDS:
            raise ValueError(
                f"base_llm must be gguf:NAME or ollama:NAME (or empty for base_model), not {self.base_llm!r}"
            )
        if self.base_llm and not self.base_llm.partition(":")[2].strip():
            raise ValueError(f"base_llm {self.base_llm!r} names no model: gguf:NAME or ollama:NAME")
        if self.model_id and not self.model_id.startswith("lora-"):
            raise ValueError(f"model_id must be a fine-tuned model id (lora-…), not {self.model_id!r}")
        if evaluating and EXPORT_TARGETS & set(self.targets) and not self.export:
            raise ValueError(
                'the gguf target evaluates the pipeline\'s export: give export (e.g. ["q8_0"]), or leave gguf out of '
                "targets"
            )
        if self.export and "train" in self.skip and not self.model_id:
            raise ValueError(
                "export exports the fine-tuned model: leave train in, or give model_id (an existing lora-… model) "
                "with skip=[train]"
            )
        return self

    def evaluated(self) -> list[str]:
        """The targets this pipeline evaluates: those asked, else the defaults (and the GGUF with an export)."""
        if "evaluate" in self.skip:
            return []
        if "targets" in self.model_fields_set or not self.export:
            return list(self.targets)
        return [*self.targets, *sorted(EXPORT_TARGETS)]

    def has_content(self) -> bool:
        return bool(self.catalog_content or self.catalog_base64)


def resolve_params(
    request: PipelineRequest, *, device: str, device_source: str, catalog: dict[str, Any]
) -> dict[str, Any]:
    """The parameters as the pipeline runs them: every default filled in for the device. No catalog bytes."""
    defaults = DEVICE_DEFAULTS["cuda" if device == "cuda" else "cpu"]
    params = request.model_dump(exclude={"catalog_content", "catalog_base64", "device"})

    def pick(name: str) -> Any:
        value = getattr(request, name)
        return defaults[name] if value is None else value

    for name in TUNED:
        params[name] = pick(name)
    # A short CPU budget learns at a higher rate than Annex A's (which is meant for whole epochs), unless one is given.
    if defaults["learning_rate"] and request.max_steps is None and "learning_rate" not in request.training_config:
        params["training_config"] = {**request.training_config, "learning_rate": defaults["learning_rate"]}
    params.update(
        catalog=catalog["name"],
        catalog_version=catalog["version"],
        catalog_entities=catalog.get("entity_count", 0),
        rag_collection=request.rag_collection or catalog["name"],
        device=device,
        device_source=device_source,
        num_questions_given=request.num_questions is not None,  # else a target the build sizes to the catalog
        targets=request.evaluated(),
    )
    return params


def training_config(params: dict[str, Any]) -> dict[str, Any]:
    """The TrainingConfig the train step sends."""
    config = dict(params.get("training_config") or {})
    config.setdefault("base_model", params.get("base_model") or "default")
    config.setdefault("preset", params.get("preset") or "auto")
    config.setdefault("seed", params.get("seed", 42))
    if params.get("epochs"):
        config.setdefault("epochs", params["epochs"])
    if params.get("max_steps"):
        config.setdefault("max_steps", params["max_steps"])
    return config
