"""dyag_llm.fidelity (the parity gate's arithmetic: KL divergence, top-1, likelihoods) on known distributions, and
dyag_llm.gguf.teacher_forced_logprobs: llama.cpp's logits for every position of a sequence, read in micro-batches,
equal to the ones decoding it token by token gives."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dyag_llm.fidelity import compare_logprobs, log_softmax


def test_log_softmax_is_a_distribution_in_float64():
    out = log_softmax(np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 0.0]], dtype=np.float32))
    assert out.dtype == np.float64 and np.allclose(np.exp(out).sum(axis=1), 1.0)
    assert out[1, 0] == pytest.approx(math.log(0.5))  # no overflow with large logits


def test_identical_distributions_have_no_divergence():
    ref = log_softmax(np.random.default_rng(0).normal(size=(5, 50)))
    c = compare_logprobs(ref, ref.copy(), [1, 2, 3, 4, 5])
    assert c.kld == [0.0] * 5 and all(c.top1) and c.nll_reference == c.nll_candidate


def test_kl_divergence_top1_and_likelihoods_of_known_distributions():
    p = np.log([[0.5, 0.5], [0.9, 0.1]])
    q = np.log([[0.25, 0.75], [0.9, 0.1]])
    c = compare_logprobs(p, q, [1, 0])
    assert c.kld[0] == pytest.approx(0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)) and c.kld[1] == 0.0
    assert c.top1 == [False, True]  # argmax of p's first row is token 0 (a tie: the first), of q's token 1
    assert c.nll_reference == pytest.approx([-math.log(0.5), -math.log(0.9)])
    assert c.nll_candidate == pytest.approx([-math.log(0.75), -math.log(0.9)])


def test_nan_logits_count_as_lost_tokens():
    p = np.log([[0.5, 0.5], [0.9, 0.1]])
    q = np.array([[np.nan, np.nan], [math.log(0.9), math.log(0.1)]])
    c = compare_logprobs(p, q, [0, 0])
    assert c.kld[0] == math.inf and c.top1 == [False, True] and c.nll_candidate[0] == math.inf


def test_shapes_must_match_the_targets():
    with pytest.raises(ValueError, match="target tokens"):
        compare_logprobs(np.zeros((2, 3)), np.zeros((2, 3)), [0])


@pytest.mark.slow
def test_teacher_forced_logprobs_match_token_by_token_decoding():
    """SmolLM2's Q4_1 GGUF (read 31 tokens at a time: dyag_llm.gguf.SMALL_BATCH_QUANTS): every position's distribution
    from the micro-batched read equals the one-token-at-a-time read, for a sequence three batches long."""
    pytest.importorskip("ik_llama_cpp")
    from ik_llama_cpp import IkLlama

    from dyag_llm import gguf

    path, template, _ = gguf.resolve("smollm2-135m")
    gguf._quiet()
    llm = IkLlama(str(path), n_ctx=512, n_threads=2, verbose=False)
    try:
        messages = [
            {"role": "user", "content": "Quel est le statut de 8-SINP (Plateformes régionales SINP habilitées) ?"},
            {
                "role": "assistant",
                "content": "L'application 8-SINP est en production depuis 2019 ; sa portée est régionale et elle "
                "relève du domaine Biodiversité, avec les plateformes régionales habilitées comme acteurs.",
            },
        ]
        tokens = list(llm.tokenize(gguf.render(messages, template), add_bos=False, special=True))
        first = 10
        assert len(tokens) - first > 2 * gguf.SMALL_BATCH
        batched = gguf.teacher_forced_logprobs(llm, tokens, first)
        single = gguf.teacher_forced_logprobs(llm, tokens, first, step=1)
        assert batched.shape == (len(tokens) - first, llm._model.n_vocab)
        divergence = compare_logprobs(single, batched, tokens[first:]).kld
        assert max(divergence) < 1e-3, max(divergence)
        with pytest.raises(ValueError, match="outside a sequence"):
            gguf.teacher_forced_logprobs(llm, tokens, 0)
    finally:
        llm.close()
