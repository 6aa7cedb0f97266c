"""The factory: a chat model from its spec ("provider:model"). Apart from base.py, which the providers import, so that
the interface and the providers do not import each other."""

from __future__ import annotations

from dyag_llm.base import PROVIDERS, ChatModel, LLMError, LLMSettings


def open_chat_model(spec: str | None = None, settings: LLMSettings | None = None) -> ChatModel:
    """The model a spec names ("provider:model"); without one, LLM_PROVIDER and LLM_MODEL."""
    settings = settings or LLMSettings()
    provider, _, model = (spec or settings.spec()).partition(":")
    if provider == "ollama":
        from dyag_llm.ollama import OllamaChatModel

        return OllamaChatModel(model, settings.ollama_host, settings.request_timeout_s)
    if provider == "openai":
        from dyag_llm.openai_compat import OpenAICompatibleChatModel

        return OpenAICompatibleChatModel(
            model, settings.openai_base_url, settings.openai_api_key, settings.request_timeout_s
        )
    if provider == "local":
        from dyag_llm.local import LocalChatModel

        base, _, adapter = (model or "default").partition("+")
        return LocalChatModel(base or "default", adapter or None)
    if provider == "gguf":
        from dyag_llm.gguf import GgufChatModel

        return GgufChatModel(model)
    raise LLMError(
        "unknown_provider", f"unknown LLM provider {provider!r} in {spec!r}; use one of {', '.join(PROVIDERS)}"
    )
