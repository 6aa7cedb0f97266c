"""Targets: what answers the questions, checked when a run is asked for, and the answerers that reach them.

- base, lora  -> gpu-lora-trainer's TrainerService.Generate (batched: the CPU/GPU answers a batch at once);
- openai, ollama -> dyag_llm's chat models (one call per question, several in flight);
- gguf        -> a GGUF on the evaluator's CPU through llama.cpp (dyag_llm.gguf): a shipped model, a file of its host,
                 or one from the artifact store by digest (a pipeline's export);
- rag         -> rag-service's RagService.Query (retrieval + the collection's answering model, cited);
- hybrid      -> RagService.Query(retrieve_only) for the context, dyag_core.rag's prompt, answered by the
                 fine-tuned model through Generate.

An answerer returns one Response per question. A call that fails gives failed Responses with the reason
(the run goes on); a target that cannot be reached at all raises Unreachable, which the job counts to stop
asking a dead target (settings.eval_unreachable_after).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import grpc

from dyag.v1 import evaluation_pb2, rag_pb2, training_pb2
from dyag_core.errors import DyagError
from dyag_core.evaluation import APPROACHES, EvalCase, Response, Target
from dyag_core.rag import validate_collection_name
from dyag_core.rag.prompt import ContextChunk, build_messages
from dyag_evaluator.settings import EvaluatorSettings

RAG_MODES = ("auto", "grounded", "generative")
KINDS = ("base", "lora", "openai", "ollama", "gguf", "rag", "hybrid")
SPELLINGS = (
    "base, base:FOLDER, lora:MODEL_ID, openai:MODEL, ollama:MODEL, "
    "gguf:MODEL, rag:COLLECTION, hybrid:MODEL_ID+COLLECTION"
)
LLM_PROVIDERS = ("ollama", "openai", "local")
KEY_ENV_PREFIX = "DYAG_EVAL_KEY_"
MAX_N_CHUNKS = 50
ARTIFACT_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class Unreachable(Exception):
    """The target cannot be reached at all (connection refused, service down, time-out)."""


def _bad(code: str, message: str) -> DyagError:
    return DyagError(code, message)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """Target (evaluation.proto) as the service keeps it: never a key, only the name of where one is."""

    kind: str
    model: str = ""
    base_url: str = ""
    api_key_env: str = ""
    host: str = ""
    collection: str = ""
    n_chunks: int = 0
    llm: str = ""
    approach: str = ""
    training_cost_usd: float | None = None
    rag_mode: str = ""
    artifact_digest: str = ""  # gguf: the GGUF in the artifact store

    @classmethod
    def from_proto(cls, t: evaluation_pb2.Target) -> TargetSpec:
        return cls(
            kind=t.kind.strip().lower(),
            model=t.model.strip(),
            base_url=t.base_url.strip(),
            api_key_env=t.api_key_env.strip(),
            host=t.host.strip(),
            collection=t.collection.strip(),
            n_chunks=t.n_chunks,
            llm=t.llm.strip(),
            approach=t.approach.strip(),
            training_cost_usd=t.training_cost_usd if t.HasField("training_cost_usd") else None,
            rag_mode=t.rag_mode.strip().lower(),
            artifact_digest=t.artifact_digest.strip(),
        )

    def to_proto(self) -> evaluation_pb2.Target:
        values = {k: v for k, v in asdict(self).items() if v is not None}
        return evaluation_pb2.Target(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetSpec:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if "n_chunks" in values:
            values["n_chunks"] = int(values["n_chunks"] or 0)
        return cls(**values)

    # -------------------------------------------------------------- checks

    def validate(self, settings: EvaluatorSettings) -> TargetSpec:
        """The target with its defaults, or a DyagError that names what is wrong and how to say it."""
        kind = self.kind
        if not kind:
            raise _bad("missing_target", f"name a target: {SPELLINGS}")
        if kind not in KINDS:
            raise _bad(
                "unknown_target_kind", f"unknown target kind {kind!r}; use one of {', '.join(KINDS)} ({SPELLINGS})"
            )
        model = self.model
        if kind == "base":
            model = model or "default"
        if self.artifact_digest and kind != "gguf":
            raise _bad(
                "invalid_target", f"artifact_digest (a GGUF in the artifact store) only applies to gguf, not {kind}"
            )
        if self.artifact_digest and not ARTIFACT_DIGEST.fullmatch(self.artifact_digest):
            raise _bad(
                "invalid_artifact",
                f"artifact_digest {self.artifact_digest!r} is not an artifact digest (sha256:<64 hex>)",
            )
        if kind == "gguf":  # a GGUF on the evaluator's CPU through llama.cpp (dyag_llm.gguf)
            model = model or self.artifact_digest or "qwen2.5-0.5b"
        if kind in ("lora", "hybrid") and not model:
            raise _bad("missing_model", f"a {kind} target needs the LoRA model id (lora-…) from `dyag models`")
        if kind in ("openai", "ollama") and not model:
            raise _bad(
                "missing_model",
                f"an {kind} target needs the model name, e.g. "
                f"{kind}:{'gpt-4o-mini' if kind == 'openai' else 'applications-ia'}",
            )
        collection = self.collection
        if kind in ("rag", "hybrid"):
            if not collection:
                raise _bad(
                    "missing_collection",
                    f"a {kind} target needs the RAG collection, e.g. "
                    f"{'rag:applications_ia' if kind == 'rag' else 'hybrid:lora-…+applications_ia'}",
                )
            collection = validate_collection_name(collection)
        if not 0 <= self.n_chunks <= MAX_N_CHUNKS:
            raise _bad(
                "invalid_n_chunks",
                f"n_chunks must be between 1 and {MAX_N_CHUNKS} (0: the default, 5), not {self.n_chunks}",
            )
        if self.llm:
            provider, _, name = self.llm.partition(":")
            if kind != "rag":
                raise _bad("invalid_target", f"llm (the RAG answering model) only applies to a rag target, not {kind}")
            if provider not in LLM_PROVIDERS or not name:
                raise _bad(
                    "invalid_llm",
                    f"llm {self.llm!r} is not a chat-model spec; use ollama:NAME, openai:NAME or local:default",
                )
        if self.approach and self.approach not in APPROACHES:
            raise _bad("invalid_approach", f"unknown approach {self.approach!r}; use one of {', '.join(APPROACHES)}")
        if self.api_key_env:
            if kind != "openai":
                raise _bad("invalid_target", "api_key_env only applies to an openai target")
            key_env_allowed(self.api_key_env, settings)
        if self.base_url and kind != "openai":
            raise _bad("invalid_target", "base_url only applies to an openai target (ollama takes host)")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise _bad("invalid_base_url", f"base_url {self.base_url!r} must start with http:// or https://")
        if self.base_url and self.base_url.rstrip("/") not in settings.allowed_base_urls():
            raise _bad(
                "base_url_not_allowed",
                f"base_url {self.base_url!r} is not an endpoint this evaluator may send a key to; "
                "its operator lists them in DYAG_EVAL_OPENAI_BASE_URLS (besides OPENAI_BASE_URL)",
            )
        if self.host and kind != "ollama":
            raise _bad("invalid_target", "host only applies to an ollama target")
        if self.training_cost_usd is not None and self.training_cost_usd < 0:
            raise _bad("invalid_target", "training_cost_usd cannot be negative")
        if self.rag_mode and kind != "rag":
            raise _bad("invalid_target", f"rag_mode only applies to a rag target, not {kind}")
        if self.rag_mode not in ("", *RAG_MODES):
            raise _bad("invalid_rag_mode", f"unknown rag_mode {self.rag_mode!r}; use one of {', '.join(RAG_MODES)}")
        return TargetSpec(
            kind,
            model,
            self.base_url,
            self.api_key_env,
            self.host,
            collection,
            self.n_chunks,
            self.llm,
            self.approach or self.default_approach(model),
            self.training_cost_usd,
            self.rag_mode,
            self.artifact_digest,
        )

    def default_approach(self, model: str | None = None) -> str:
        model = self.model if model is None else model
        if self.kind == "lora":
            return "fine_tuned"
        if self.kind == "rag" and self.rag_mode == "grounded":
            return "grounded"
        if self.kind in ("rag", "hybrid"):
            return self.kind
        if self.kind == "openai" and model.startswith("ft:"):
            return "fine_tuned"
        return "base"

    # -------------------------------------------------------------- names

    def label(self) -> str:
        """The run's default name, in the CLI's spelling: rag:applications_ia, hybrid:lora-…+applications_ia."""
        if self.kind == "hybrid":
            return f"hybrid:{self.model}+{self.collection}"
        if self.kind == "rag":
            mode = f" [{self.rag_mode}]" if self.rag_mode else ""
            return f"rag:{self.collection}{mode}" + (f" ({self.llm})" if self.llm else "")
        return f"{self.kind}:{self.model}" if self.model else self.kind

    def model_spec(self) -> str:
        """What answers, as a chat-model spec (for the report and the price table)."""
        if self.kind == "base":
            return f"local:{self.model}"
        if self.kind in ("lora", "hybrid"):
            return f"local:{self.model}"
        if self.kind == "openai":
            return self.model  # the price table knows OpenAI's models by their bare names
        if self.kind in ("ollama", "gguf"):
            return f"{self.kind}:{self.model}"
        return pricing_name(self.llm)  # rag: its answering model ("" until the service says which)

    def provider(self) -> str:
        return {
            "base": "gpu-lora-trainer",
            "lora": "gpu-lora-trainer",
            "openai": "openai",
            "ollama": "ollama",
            "gguf": "llama.cpp (evaluator)",
            "rag": "rag-service",
            "hybrid": "rag-service + gpu-lora-trainer",
        }[self.kind]

    def core_target(self, name: str, answered_by: str = "") -> Target:
        model = pricing_name(answered_by) if answered_by and self.kind == "rag" else self.model_spec()
        return Target(
            name=name,
            approach=self.approach or self.default_approach(),
            model=model,
            provider=self.provider(),
            training_cost_usd=self.training_cost_usd,
        )


def pricing_name(spec: str) -> str:
    """openai:gpt-4o-mini -> gpt-4o-mini (the price table's name); other specs unchanged."""
    return spec.partition(":")[2] if spec.startswith("openai:") else spec


def key_env_allowed(name: str, settings: EvaluatorSettings) -> str:
    if name in settings.eval_api_key_envs or (name.startswith(KEY_ENV_PREFIX) and len(name) > len(KEY_ENV_PREFIX)):
        return name
    allowed = ", ".join([*settings.eval_api_key_envs, KEY_ENV_PREFIX + "*"])
    raise _bad(
        "invalid_api_key_env",
        f"api_key_env {name!r} is not one the evaluator may read; allowed: {allowed} "
        "(name the variable that holds the key, never the key itself)",
    )


def read_key(name: str, settings: EvaluatorSettings) -> str:
    """The key from the evaluator's environment, else from a mounted secret file of that name. Never logged."""
    name = key_env_allowed(name or "OPENAI_API_KEY", settings)
    if value := os.environ.get(name, "").strip():
        return value
    secret = Path(settings.eval_secrets_dir) / name
    try:
        return secret.read_text().strip()
    except OSError:
        return ""


# ------------------------------------------------------------------ answerers


class Answerer:
    batch_size = 1
    answered_by = ""  # what answered, when the target says (rag: its model)

    async def answer(self, cases: list[EvalCase], system_prompt: str) -> list[Response]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def _grpc_failure(exc: grpc.aio.AioRpcError, service: str, address: str) -> Exception:
    details = exc.details() or exc.code().name
    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Unreachable(f"{service} at {address}: {details}")
    return DyagError(exc.code().name.lower(), f"{service}: {details}")


class ChatAnswerer(Answerer):
    """openai / ollama through a dyag_llm chat model, one question per call."""

    def __init__(self, chat: Any, executor: Executor, *, max_tokens: int, temperature: float):
        self.chat, self.executor = chat, executor
        self.max_tokens, self.temperature = max_tokens, temperature
        self.answered_by = getattr(chat, "name", "")

    async def answer(self, cases: list[EvalCase], system_prompt: str) -> list[Response]:
        from dyag_llm.base import LLMError

        out = []
        for case in cases:
            messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
                {"role": "user", "content": case.question}
            ]
            began = time.perf_counter()
            try:
                result = await asyncio.get_running_loop().run_in_executor(
                    self.executor,
                    lambda m=messages: self.chat.chat(m, max_tokens=self.max_tokens, temperature=self.temperature),
                )
            except LLMError as exc:
                if exc.code == "unavailable":
                    raise Unreachable(exc.message) from None
                out.append(Response.failed(exc.message, (time.perf_counter() - began) * 1000))
                continue
            out.append(
                Response(
                    result.text,
                    result.latency_ms or (time.perf_counter() - began) * 1000,
                    result.prompt_tokens or None,
                    result.completion_tokens or None,
                )
            )
        return out

    async def close(self) -> None:
        close = getattr(self.chat, "close", None)
        if close:
            close()


class GenerateAnswerer(Answerer):
    """base / lora through gpu-lora-trainer's Generate: a batch of questions per call; each question's
    latency is the batch's time divided by its size (the time per answer at that batch size)."""

    def __init__(
        self,
        stub: Any,
        address: str,
        *,
        model_id: str = "",
        base_model: str = "",
        batch_size: int,
        max_tokens: int,
        temperature: float,
        timeout: float,
    ):
        self.stub, self.address = stub, address
        self.model_id, self.base_model = model_id, base_model
        self.batch_size, self.max_tokens, self.temperature, self.timeout = (
            max(1, batch_size),
            max_tokens,
            temperature,
            timeout,
        )
        self.answered_by = f"local:{model_id or base_model}"

    async def generate(self, conversations: list[list[dict[str, str]]]) -> tuple[list[Any], float]:
        request = training_pb2.GenerateRequest(
            model_id=self.model_id,
            base_model="" if self.model_id else self.base_model,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            conversations=[
                training_pb2.Conversation(messages=[training_pb2.ChatMessage(**m) for m in c]) for c in conversations
            ],
        )
        began = time.perf_counter()
        try:
            reply = await self.stub.Generate(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise _grpc_failure(exc, "gpu-lora-trainer", self.address) from None
        return list(reply.generations), (time.perf_counter() - began) * 1000

    async def answer(self, cases: list[EvalCase], system_prompt: str) -> list[Response]:
        conversations = [
            ([{"role": "system", "content": system_prompt}] if system_prompt else [])
            + [{"role": "user", "content": c.question}]
            for c in cases
        ]
        try:
            generations, ms = await self.generate(conversations)
        except DyagError as exc:
            return [Response.failed(exc.message) for _ in cases]
        return [_generated(g, ms / max(1, len(cases))) for g in generations]


def _generated(g: Any, latency_ms: float) -> Response:
    return Response(g.text, latency_ms, g.prompt_tokens or None, g.completion_tokens or None)


class RagAnswerer(Answerer):
    """rag-service's Query: retrieval and the answering model of the collection (or `llm`), cited."""

    def __init__(
        self,
        stub: Any,
        address: str,
        *,
        collection: str,
        n_chunks: int,
        llm: str,
        max_tokens: int,
        temperature: float,
        timeout: float,
        mode: str = "",
    ):
        self.stub, self.address = stub, address
        self.collection, self.n_chunks, self.llm, self.mode = collection, n_chunks, llm, mode
        self.max_tokens, self.temperature, self.timeout = max_tokens, temperature, timeout

    async def query(self, question: str, *, retrieve_only: bool) -> tuple[rag_pb2.QueryResponse, float]:
        request = rag_pb2.QueryRequest(
            collection=self.collection,
            question=question,
            n_chunks=self.n_chunks,
            model=self.llm,
            retrieve_only=retrieve_only,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            mode="" if retrieve_only else self.mode,
        )
        began = time.perf_counter()
        try:
            reply = await self.stub.Query(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise _grpc_failure(exc, "rag-service", self.address) from None
        return reply, (time.perf_counter() - began) * 1000

    async def answer(self, cases: list[EvalCase], system_prompt: str) -> list[Response]:
        out = []
        for case in cases:
            try:
                reply, ms = await self.query(case.question, retrieve_only=False)
            except DyagError as exc:
                out.append(Response.failed(exc.message))
                continue
            if reply.model:
                self.answered_by = reply.model
            out.append(Response(reply.answer, ms, reply.tokens.prompt or None, reply.tokens.completion or None))
        return out


class HybridAnswerer(Answerer):
    """The fine-tuned model answering with the RAG context: rag-service retrieves (retrieve_only), the
    prompt is the RAG's (dyag_core.rag.prompt), gpu-lora-trainer's Generate answers the batch. A question
    the retrieval already declines (an application the catalog does not have) keeps the RAG's abstention."""

    def __init__(self, rag: RagAnswerer, generate: GenerateAnswerer):
        self.rag, self.gen = rag, generate
        self.batch_size = generate.batch_size
        self.answered_by = generate.answered_by

    async def answer(self, cases: list[EvalCase], system_prompt: str) -> list[Response]:
        async def retrieve(case: EvalCase):
            try:
                return await self.rag.query(case.question, retrieve_only=True)
            except (DyagError, Unreachable) as exc:
                return exc

        retrieved = await asyncio.gather(*(retrieve(c) for c in cases))
        unreachable = [r for r in retrieved if isinstance(r, Unreachable)]
        if unreachable and len(unreachable) == len(cases):
            raise unreachable[0]
        out: list[Response | None] = [None] * len(cases)
        asks: list[int] = []
        conversations = []
        for i, (case, r) in enumerate(zip(cases, retrieved, strict=True)):
            if isinstance(r, Exception):
                out[i] = Response.failed(str(getattr(r, "message", r)))
            elif r[0].abstained:
                out[i] = Response(r[0].answer, r[1])
            else:
                chunks = [ContextChunk(c.entity_id, c.entity_name, c.text) for c in r[0].chunks]
                conversations.append(build_messages(case.question, chunks))
                asks.append(i)
        if asks:
            try:
                generations, ms = await self.gen.generate(conversations)
            except DyagError as exc:
                for i in asks:
                    out[i] = Response.failed(exc.message)
            else:
                for i, g in zip(asks, generations, strict=False):
                    retrieval_ms = retrieved[i][1]  # type: ignore[index]
                    out[i] = _generated(g, retrieval_ms + ms / len(asks))
        return [r if r is not None else Response.failed("no answer") for r in out]
