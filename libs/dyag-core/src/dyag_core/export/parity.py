"""The parity gate: is the exported GGUF the model it was made from?

It measures what the people who build quantizers measure (llama.cpp's `llama-perplexity --kl-divergence`): the
reference answers of the dataset's test split are read teacher-forced by the HF model (transformers) and by each GGUF
(llama.cpp), and their next-token distributions are compared at every answer token:
- mean and 99th-percentile KL divergence KL(HF || GGUF): how much information the conversion lost;
- top-1 agreement: how often both rank the same token first (what greedy decoding follows);
- the perplexity ratio: how much less likely the GGUF finds the reference answers.
Each level has its limits (LEVEL_LIMITS, chosen from measurements: f16 identical, q8_0 small, q4_K_M larger).

Beside them, the checks that a conversion can break without touching a weight:
- tokenizer: the GGUF's tokenizer must cut every probe conversation into the HF tokenizer's tokens;
- chat template: the template the GGUF carries (tokenizer.chat_template, what llama.cpp's servers use) must render
  the conversations as the HF tokenizer's does;
- adapter: when a LoRA adapter was merged, the GGUF must be nearer the merged model than the base model (a paired
  test over the probe conversations), else the adapter's weights are missing or misplaced.

Greedy answers (a few probes, answered by both models) stay as information: their agreement over tens of tokens
measures the luck of greedy decoding, not the quantization. Fact accuracy is a gate only where the HF model states
facts at all: the GGUF must not lose more than `max_accuracy_drop` of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from dyag_core.evaluation.aggregate import percentile
from dyag_core.evaluation.metrics import answer_tokens, token_prf
from dyag_core.evaluation.model import EvalCase, Response
from dyag_core.evaluation.scoring import score_answer

DEFAULT_THRESHOLD = 0.0  # greedy answer agreement: information, unless a request asks for a minimum
DEFAULT_MAX_ACCURACY_DROP = 0.2
ADAPTER_Z = 3.0  # how many standard errors nearer the base model the GGUF must be for "adapter missing"


@dataclass(frozen=True, slots=True)
class FidelityLimits:
    """What a level may lose, teacher-forced, against the HF model."""

    max_mean_kld: float
    max_p99_kld: float
    min_top1_agreement: float
    max_perplexity_ratio: float


# Measured on this project's models (bench/bench_parity.py; bench/RESULTS.md): SmolLM2-135M's q8_0 has a mean KLD of
# 0.006-0.008 and a top-1 agreement of 95 %, its q4_K_M 0.07-0.09 and 84-85 %; llama.cpp publishes 0.0014 and 0.031
# for LLaMA 3 8B (small models lose more). The limits leave 3-4x the worst measurement (a faithful export of any
# model passes) and stay far below what a damaged conversion gives (a missing adapter, a corrupted tensor: 0.17 to >1).
LEVEL_LIMITS: dict[str, FidelityLimits] = {
    "f16": FidelityLimits(max_mean_kld=0.002, max_p99_kld=0.02, min_top1_agreement=0.98, max_perplexity_ratio=1.01),
    "q8_0": FidelityLimits(max_mean_kld=0.03, max_p99_kld=0.3, min_top1_agreement=0.9, max_perplexity_ratio=1.05),
    "q4_K_M": FidelityLimits(max_mean_kld=0.25, max_p99_kld=2.5, min_top1_agreement=0.75, max_perplexity_ratio=1.25),
}


# A base GGUF with the adapter as a GGUF LoRA applied at run time (Ollama's ADAPTER; "q8_0+adapter") does not
# reproduce the merged model as closely as the merged GGUF: llama.cpp (ik_llama.cpp) computing the LoRA beside the base
# measured a mean KLD of 0.019 (SmolLM2, sample adapter) to 0.032 (a strong 3-fact adapter) even over an f16 base,
# where the merged f16 gives 0.000005. Such pairs get the looser of their level's limits and these.
RUNTIME_LORA_LIMITS = FidelityLimits(
    max_mean_kld=0.1, max_p99_kld=1.5, min_top1_agreement=0.85, max_perplexity_ratio=1.1
)


def limits_for(quantization: str) -> FidelityLimits:
    """The limits of a level; a pair "LEVEL+adapter" (a base GGUF with the GGUF LoRA) gets the looser of the level's
    and RUNTIME_LORA_LIMITS."""
    level, _, runtime_lora = quantization.partition("+")
    if level not in LEVEL_LIMITS:
        raise ValueError(f"no parity limits for {quantization!r}; known: {', '.join(LEVEL_LIMITS)}")
    limits = LEVEL_LIMITS[level]
    if not runtime_lora:
        return limits
    lora = RUNTIME_LORA_LIMITS
    return FidelityLimits(
        max_mean_kld=max(limits.max_mean_kld, lora.max_mean_kld),
        max_p99_kld=max(limits.max_p99_kld, lora.max_p99_kld),
        min_top1_agreement=min(limits.min_top1_agreement, lora.min_top1_agreement),
        max_perplexity_ratio=max(limits.max_perplexity_ratio, lora.max_perplexity_ratio),
    )


def _exp(x: float) -> float:
    return math.exp(x) if x < 700 else math.inf


def _finite(x: float, digits: int) -> float:
    """A figure for JSON and protobuf: rounded; an infinite one as 1e9 (its reason says why)."""
    return round(x, digits) if math.isfinite(x) else 1e9


def first_difference(a: Sequence[Any], b: Sequence[Any]) -> int:
    """The first index where two sequences (token lists, texts) differ; the shorter one's length if one is the other's
    beginning."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


@dataclass(frozen=True, slots=True)
class Fidelity:
    """Teacher-forced measures of one GGUF against the HF model, over the reference answers' tokens."""

    tokens: int
    mean_kld: float
    p99_kld: float
    max_kld: float
    top1_agreement: float
    perplexity_hf: float
    perplexity_gguf: float
    non_finite: int = 0  # tokens whose GGUF distribution is not finite (NaN logits: a damaged tensor)

    @property
    def perplexity_ratio(self) -> float:
        return self.perplexity_gguf / self.perplexity_hf

    @classmethod
    def of_tokens(
        cls, kld: Sequence[float], top1: Sequence[bool], nll_hf: Sequence[float], nll_gguf: Sequence[float]
    ) -> Fidelity:
        n = len(kld)
        if not n or not (n == len(top1) == len(nll_hf) == len(nll_gguf)):
            raise ValueError("one KL divergence, top-1 verdict and two likelihoods per token, and at least one token")
        kld = [k if math.isfinite(k) else math.inf for k in kld]  # NaN -> inf: it sorts, and it fails every limit
        nll_gguf = [x if math.isfinite(x) else math.inf for x in nll_gguf]
        return cls(
            tokens=n,
            mean_kld=sum(kld) / n,
            p99_kld=percentile(kld, 99) or 0.0,
            max_kld=max(kld),
            top1_agreement=sum(bool(t) for t in top1) / n,
            perplexity_hf=math.exp(sum(nll_hf) / n),
            perplexity_gguf=_exp(sum(nll_gguf) / n),
            non_finite=sum(not math.isfinite(k) for k in kld),
        )

    def failures(self, limits: FidelityLimits) -> list[tuple[str, str]]:
        """(measure, what it means) for each limit this GGUF exceeds (a NaN exceeds every limit)."""
        out = []
        if self.non_finite:
            out.append(
                (
                    "non_finite",
                    f"its next-token distribution is not finite (NaN or infinite logits) on {self.non_finite} of "
                    f"{self.tokens} tokens: a damaged tensor",
                )
            )
        if not self.mean_kld <= limits.max_mean_kld:
            out.append(
                (
                    "mean_kld",
                    f"mean KL divergence {self.mean_kld:.4f} > {limits.max_mean_kld:g}: its next-token distributions "
                    "differ from the HF model's more than this level's rounding explains (damaged, missing or "
                    "misplaced weights)",
                )
            )
        if not self.p99_kld <= limits.max_p99_kld:
            out.append(
                (
                    "p99_kld",
                    f"99th-percentile KL divergence {self.p99_kld:.3f} > {limits.max_p99_kld:g}: on some tokens it "
                    "predicts something else entirely",
                )
            )
        if not self.top1_agreement >= limits.min_top1_agreement:
            out.append(
                (
                    "top1_agreement",
                    f"top-1 agreement {self.top1_agreement:.1%} < {limits.min_top1_agreement:.0%}: its most likely "
                    "next token is another one too often, so its greedy answers follow another path",
                )
            )
        if not self.perplexity_ratio <= limits.max_perplexity_ratio:
            out.append(
                (
                    "perplexity_ratio",
                    f"perplexity ratio {self.perplexity_ratio:.3f} > {limits.max_perplexity_ratio:g}: it finds the "
                    "reference answers much less likely than the HF model does",
                )
            )
        return out


@dataclass(frozen=True, slots=True)
class AdapterCheck:
    """Is the merged LoRA adapter in the GGUF? Per probe conversation, the GGUF's mean KL divergence from the base
    model minus the one from the merged model: positive when the GGUF follows the merged model."""

    adapter_kld: float  # KL(merged || base): what the adapter changes, the scale of what could be lost
    margin: float  # mean of the per-conversation differences
    z: float  # the margin in standard errors (0 when it cannot be computed)

    @property
    def verdict(self) -> str:
        if self.z <= -ADAPTER_Z:
            return "missing"
        return "present" if self.z >= ADAPTER_Z else "undetermined"

    @classmethod
    def of_sequences(
        cls, adapter_kld: float, kld_to_merged: Sequence[float], kld_to_base: Sequence[float]
    ) -> AdapterCheck:
        diffs = [b - m for m, b in zip(kld_to_merged, kld_to_base, strict=True)]
        if not diffs:
            raise ValueError("no conversation")
        mean = sum(diffs) / len(diffs)
        z = 0.0
        if len(diffs) > 1:
            var = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
            se = math.sqrt(var / len(diffs))
            z = mean / se if se > 0 else math.copysign(math.inf, mean) if mean else 0.0
        return cls(adapter_kld=adapter_kld, margin=mean, z=z)


@dataclass(frozen=True, slots=True)
class ConversionChecks:
    """What the conversion could break besides the weights."""

    conversations: int
    same_tokens: int  # conversations the GGUF's tokenizer cuts into exactly the HF tokenizer's tokens
    first_token_mismatch: str = ""  # what differs in the first conversation that is cut differently
    chat_template: str = "same"  # same | differs | missing (the HF tokenizer has one, the GGUF none) | none (neither)
    chat_template_detail: str = ""
    adapter: AdapterCheck | None = None

    @property
    def token_agreement(self) -> float:
        return self.same_tokens / self.conversations if self.conversations else 1.0

    def failures(self) -> list[tuple[str, str]]:
        out = []
        if self.same_tokens < self.conversations:
            out.append(
                (
                    "tokenizer",
                    f"its tokenizer cuts {self.conversations - self.same_tokens} of {self.conversations} probe "
                    f"conversations differently from the HF tokenizer ({self.first_token_mismatch}): llama.cpp and "
                    "Ollama would feed the model tokens it was not trained on",
                )
            )
        if self.chat_template in ("differs", "missing"):
            out.append(
                (
                    "chat_template",
                    f"the chat template it carries (tokenizer.chat_template) {self.chat_template_detail}: llama.cpp's "
                    "servers would prompt it in another format than it was trained on",
                )
            )
        if self.adapter is not None and self.adapter.verdict == "missing":
            a = self.adapter
            out.append(
                (
                    "adapter",
                    f"it is nearer the base model than the merged one (by {-a.margin:.4f} nats a token, "
                    f"{-a.z:.1f} standard errors; the adapter moves the model by {a.adapter_kld:.4f}): the LoRA "
                    "adapter's weights are missing or misplaced",
                )
            )
        return out


@dataclass(frozen=True, slots=True)
class GreedyAnswers:
    """The few probes both models answered greedily: information, and the fact-accuracy gate."""

    probes: int
    agreement: float
    mean_token_f1: float
    hf_fact_accuracy: float
    gguf_fact_accuracy: float
    prompt_token_agreement: float | None
    samples: tuple[dict[str, Any], ...]


def greedy_answers(
    probes: Sequence[EvalCase],
    hf_answers: Sequence[str],
    gguf_answers: Sequence[str],
    prompt_tokens_equal: Sequence[bool] | None = None,
) -> GreedyAnswers:
    if not (len(probes) == len(hf_answers) == len(gguf_answers)) or not probes:
        raise ValueError("one HF and one GGUF answer per probe, and at least one probe")
    samples = []
    agree = f1_sum = hf_right = gguf_right = 0
    for case, hf, gguf in zip(probes, hf_answers, gguf_answers, strict=True):
        same = same_answer(hf, gguf)
        hf_ok = score_answer(case, Response(text=hf)).correct
        gguf_ok = score_answer(case, Response(text=gguf)).correct
        agree += same
        hf_right += hf_ok
        gguf_right += gguf_ok
        f1_sum += token_prf(gguf, hf)[2]
        samples.append(
            {
                "question": case.question,
                "hf_answer": hf,
                "gguf_answer": gguf,
                "agree": same,
                "hf_correct": hf_ok,
                "gguf_correct": gguf_ok,
            }
        )
    n = len(probes)
    token_share = None
    if prompt_tokens_equal is not None and len(prompt_tokens_equal):
        token_share = sum(bool(x) for x in prompt_tokens_equal) / len(prompt_tokens_equal)
    return GreedyAnswers(
        probes=n,
        agreement=round(agree / n, 4),
        mean_token_f1=round(f1_sum / n, 4),
        hf_fact_accuracy=round(hf_right / n, 4),
        gguf_fact_accuracy=round(gguf_right / n, 4),
        prompt_token_agreement=token_share,
        samples=tuple(samples),
    )


def choose_probes(cases: Sequence[EvalCase], count: int) -> list[EvalCase]:
    """`count` probes, the same for the same test split: round robin over question types (sorted), each type's
    questions in id order."""
    by_type: dict[str, list[EvalCase]] = {}
    for case in sorted(cases, key=lambda c: (c.qtype, c.id, c.question)):
        if case.question.strip():
            by_type.setdefault(case.qtype, []).append(case)
    chosen: list[EvalCase] = []
    queues = [list(v) for _, v in sorted(by_type.items())]
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return chosen


def same_answer(a: str, b: str) -> bool:
    return answer_tokens(a) == answer_tokens(b)


@dataclass(frozen=True, slots=True)
class ParityReport:
    quantization: str
    fidelity: Fidelity
    limits: FidelityLimits
    checks: ConversionChecks
    greedy: GreedyAnswers
    threshold: float  # the least greedy answer agreement asked for (0: information only)
    max_accuracy_drop: float
    failed: tuple[str, ...] = ()  # the measures that failed: mean_kld, p99_kld, top1_agreement, tokenizer, …
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failed

    # The greedy figures, as the report's readers (CLI, bundle README, tests) name them.
    @property
    def agreement(self) -> float:
        return self.greedy.agreement

    @property
    def hf_fact_accuracy(self) -> float:
        return self.greedy.hf_fact_accuracy

    @property
    def gguf_fact_accuracy(self) -> float:
        return self.greedy.gguf_fact_accuracy

    @property
    def prompt_token_agreement(self) -> float | None:
        return self.greedy.prompt_token_agreement

    @property
    def samples(self) -> tuple[dict[str, Any], ...]:
        return self.greedy.samples

    def to_dict(self) -> dict[str, Any]:
        f, c = self.fidelity, self.checks
        return {
            "quantization": self.quantization,
            "passed": self.passed,
            "failed": list(self.failed),
            "reason": self.reason,
            # teacher-forced, on the reference answers
            "scored_tokens": f.tokens,
            "mean_kld": _finite(f.mean_kld, 6),
            "p99_kld": _finite(f.p99_kld, 6),
            "max_kld": _finite(f.max_kld, 6),
            "top1_agreement": round(f.top1_agreement, 4),
            "perplexity_hf": _finite(f.perplexity_hf, 4),
            "non_finite_tokens": f.non_finite,
            "perplexity_gguf": _finite(f.perplexity_gguf, 4),
            "perplexity_ratio": _finite(f.perplexity_ratio, 4),
            "limits": asdict(self.limits),
            # the conversion
            "conversations": c.conversations,
            "sequence_token_agreement": round(c.token_agreement, 4),
            "chat_template": c.chat_template,
            "adapter": None
            if c.adapter is None
            else {
                "adapter_kld": round(c.adapter.adapter_kld, 6),
                "margin": round(c.adapter.margin, 6),
                "z": round(c.adapter.z, 2) if math.isfinite(c.adapter.z) else (99.0 if c.adapter.z > 0 else -99.0),
                "verdict": c.adapter.verdict,
            },
            # greedy answers: information (and the fact-accuracy gate)
            "probes": self.greedy.probes,
            "agreement": self.greedy.agreement,
            "mean_token_f1": self.greedy.mean_token_f1,
            "hf_fact_accuracy": self.greedy.hf_fact_accuracy,
            "gguf_fact_accuracy": self.greedy.gguf_fact_accuracy,
            "prompt_token_agreement": self.greedy.prompt_token_agreement,
            "threshold": self.threshold,
            "max_accuracy_drop": self.max_accuracy_drop,
            "samples": list(self.greedy.samples),
            **self.extra,
        }


def parity_report(
    quantization: str,
    fidelity: Fidelity,
    checks: ConversionChecks,
    greedy: GreedyAnswers,
    *,
    limits: FidelityLimits | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
) -> ParityReport:
    """The verdict for one GGUF: every measure that fails is named, with what it means."""
    limits = limits or limits_for(quantization)
    failures = fidelity.failures(limits) + checks.failures()
    if threshold and greedy.agreement < threshold:
        failures.append(
            (
                "answer_agreement",
                f"it answers {greedy.agreement:.0%} of {greedy.probes} probes as the HF model does "
                f"(< {threshold:.0%} asked)",
            )
        )
    if greedy.hf_fact_accuracy > 0 and greedy.gguf_fact_accuracy < greedy.hf_fact_accuracy - max_accuracy_drop - 1e-9:
        failures.append(
            (
                "fact_accuracy",
                f"its fact accuracy falls from {greedy.hf_fact_accuracy:.0%} (HF) to {greedy.gguf_fact_accuracy:.0%} "
                f"(more than {max_accuracy_drop:.0%})",
            )
        )
    return ParityReport(
        quantization=quantization,
        fidelity=fidelity,
        limits=limits,
        checks=checks,
        greedy=greedy,
        threshold=threshold,
        max_accuracy_drop=max_accuracy_drop,
        failed=tuple(name for name, _ in failures),
        reason="; ".join(text for _, text in failures),
    )
