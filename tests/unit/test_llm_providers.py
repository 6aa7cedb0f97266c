"""dyag_llm's remote providers against real HTTP servers on loopback: Ollama's /api/chat and an
OpenAI-compatible /v1/chat/completions (fakes that speak the documented protocols)."""

from __future__ import annotations

import pytest

from dyag_core.rag import ContextChunk, build_messages
from dyag_llm import LLMError, LLMSettings, open_chat_model
from dyag_llm.ollama import OllamaChatModel
from dyag_llm.openai_compat import OpenAICompatibleChatModel
from tests.fake_llm import FakeOllama, FakeOpenAI

CONTEXT = [
    ContextChunk(
        "1503", "GEOVAL", "GEOVAL (Gestion des valorisations géographiques) [id 1503] — fiche\nStatut : En production"
    )
]


def test_ollama_chat_through_the_spec_and_settings():
    with FakeOllama(models=("applications-ia",)) as server:
        settings = LLMSettings(OLLAMA_HOST=server.host.replace("http://", ""))  # OLLAMA_HOST may omit the scheme
        model = open_chat_model("ollama:applications-ia", settings)
        assert isinstance(model, OllamaChatModel) and model.name == "ollama:applications-ia"
        result = model.chat(build_messages("Quel est le statut de GEOVAL ?", CONTEXT), max_tokens=64, temperature=0.1)
        assert "Statut : En production" in result.text and "[1503 GEOVAL]" in result.text
        assert result.prompt_tokens > 0 and result.completion_tokens > 0 and result.latency_ms > 0
        sent = server.requests[-1]
        assert sent["stream"] is False and sent["options"] == {"temperature": 0.1, "num_predict": 64}
        assert [m["role"] for m in sent["messages"]] == ["system", "user"]
        answers = model.chat_batch([build_messages("Quel est le statut de GEOVAL ?", CONTEXT)] * 3)
        assert len(answers) == 3


def test_ollama_errors_say_what_to_do():
    with FakeOllama(models=()) as server:
        with pytest.raises(LLMError) as missing:
            OllamaChatModel("applications-ia", server.host).chat([{"role": "user", "content": "?"}])
        assert missing.value.code == "model_not_found" and "ollama create" in missing.value.message
        port = server.port
    with pytest.raises(LLMError) as down:
        OllamaChatModel("applications-ia", f"http://127.0.0.1:{port}", timeout=2).chat(
            [{"role": "user", "content": "?"}]
        )
    assert down.value.code == "unavailable" and "OLLAMA_HOST" in down.value.message


def test_openai_compatible_chat_with_key_usage_and_retry_on_rate_limit():
    with FakeOpenAI(api_key="sk-good", rate_limit_first=1) as server:
        settings = LLMSettings(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-good")
        model = open_chat_model("openai:gpt-4o-mini", settings)
        assert isinstance(model, OpenAICompatibleChatModel)
        result = model.chat(build_messages("Quel est le statut de l'application TIVAPORT ?", CONTEXT))
        assert result.text.startswith("Je ne sais pas")  # the fake follows the prompt: TIVAPORT is not in the context
        assert result.prompt_tokens > 0 and result.model == "openai:gpt-4o-mini"
        assert len(server.requests) == 2  # the 429 was retried
        assert server.requests[-1]["max_tokens"] == 256 and server.requests[-1]["temperature"] == 0.0


def test_openai_compatible_errors():
    with FakeOpenAI(api_key="sk-good") as server:
        with pytest.raises(LLMError) as bad_key:
            OpenAICompatibleChatModel("gpt-4o-mini", server.base_url, "sk-bad").chat([{"role": "user", "content": "?"}])
        assert bad_key.value.code == "llm_unauthorized" and "OPENAI_API_KEY" in bad_key.value.message
        with pytest.raises(LLMError) as no_model:
            OpenAICompatibleChatModel("gpt-9", server.base_url, "sk-good").chat([{"role": "user", "content": "?"}])
        assert no_model.value.code == "model_not_found" and "gpt-9" in no_model.value.message


def test_an_unknown_provider_is_refused():
    with pytest.raises(LLMError) as error:
        open_chat_model("mystery:model")
    assert error.value.code == "unknown_provider"


def test_local_generation_settings_and_loop_cut(monkeypatch):
    from dyag_llm import ChatResult
    from dyag_llm.local import DEFAULT_MAX_TOKENS, _repeat_at_end, cpu_dtype, generation_threads

    assert ChatResult("x", "m").finish_reason == "" and DEFAULT_MAX_TOKENS == 128
    block = list(range(10, 18))
    assert _repeat_at_end([1, 2, 3, *block, *block, *block]) == 3 + len(block)  # one copy kept
    assert _repeat_at_end([1, 2, 3, 4, 5, 6, 7, 8]) == 8  # no repeat: unchanged
    assert _repeat_at_end([5, 5, 5, 5]) == 4  # shorter than a block: not a loop
    monkeypatch.delenv("DYAG_LLM_THREADS", raising=False)
    monkeypatch.delenv("DYAG_LLM_DTYPE", raising=False)
    assert generation_threads() == 1 and cpu_dtype() == "fp32"
    monkeypatch.setenv("DYAG_LLM_THREADS", "2")
    monkeypatch.setenv("DYAG_LLM_DTYPE", "int8")
    assert generation_threads() == 2 and cpu_dtype() == "int8"


def test_hub_ids_are_allowed_only_where_said_or_on_a_cuda_node():
    torch = pytest.importorskip("torch")
    from dyag_llm.local import hub_allowed, resolve_base_model

    assert hub_allowed(True) is True and hub_allowed(False) is False
    assert hub_allowed(None) is torch.cuda.is_available()
    assert resolve_base_model("Qwen/Qwen2.5-0.5B-Instruct", allow_hub=True) == "Qwen/Qwen2.5-0.5B-Instruct"
    with pytest.raises(LLMError) as refused:
        resolve_base_model("Qwen/Qwen2.5-0.5B-Instruct", allow_hub=False)
    assert refused.value.code == "unknown_base_model"
