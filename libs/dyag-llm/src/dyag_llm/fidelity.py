"""How faithfully one model reproduces another's next-token distributions, teacher-forced: the measures llama.cpp's
`llama-perplexity --kl-divergence` reports for a quantization (KL divergence from the reference, top-1 agreement,
the perplexity of the text under each). numpy only: the HF side (transformers) and the GGUF side (llama.cpp) each
produce log-probabilities, and these functions compare them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64 (float32 logits lose the KL divergence of a near-lossless quantization)."""
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


@dataclass(frozen=True, slots=True)
class TokenComparison:
    """Per reference token: KL(reference || candidate) of the distributions that predict it, whether both rank the
    same token first, and each model's negative log-likelihood of the token itself."""

    kld: list[float]
    top1: list[bool]
    nll_reference: list[float]
    nll_candidate: list[float]


def compare_logprobs(reference: np.ndarray, candidate: np.ndarray, targets: list[int]) -> TokenComparison:
    """`reference` and `candidate`: (n, vocabulary) log-probabilities at the n positions that predict `targets`."""
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape or ref.shape[0] != len(targets):
        raise ValueError(f"log-probabilities {ref.shape} and {cand.shape} for {len(targets)} target tokens")
    finite = np.isfinite(cand).all(axis=-1)  # a damaged tensor can give NaN logits: such a token is lost entirely
    with np.errstate(invalid="ignore"):
        kld = np.where(finite, (np.exp(ref) * (ref - cand)).sum(axis=-1), np.inf)
    rows = np.arange(len(targets))
    index = np.asarray(targets, dtype=np.int64)
    return TokenComparison(
        kld=[max(float(v), 0.0) for v in kld],  # rounding can make an exact copy's 0 a -1e-17
        top1=[bool(v) for v in (ref.argmax(axis=-1) == cand.argmax(axis=-1)) & finite],
        nll_reference=[float(v) for v in -ref[rows, index]],
        nll_candidate=[float(v) if ok else float("inf") for v, ok in zip(-cand[rows, index], finite, strict=True)],
    )
