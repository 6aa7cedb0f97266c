"""The parity gate: does the exported GGUF answer like the model it was made from?

A fixed probe set (questions of the dataset's test split, chosen deterministically across question types)
is answered greedily by the HF model (transformers) and by the GGUF (llama.cpp), from the same prompt.
Reported for each GGUF:
- agreement: the share of probes whose two answers are identical once normalised as
  dyag_core.evaluation normalises answers (fold()ed words, articles and function words dropped);
- mean token F1 of the GGUF's answer against the HF model's (how far apart the others are);
- fact accuracy of each model: dyag_core.evaluation's verdict against the probes' gold facts;
- prompt token agreement: the share of prompts the GGUF's tokenizer cuts into the same tokens as the HF one.
The export fails when agreement is below the threshold, or when the GGUF's fact accuracy falls more than
`max_accuracy_drop` below the HF model's: a quantization level that breaks the answers is visible before
anyone ships it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dyag_core.evaluation.metrics import answer_tokens, token_prf
from dyag_core.evaluation.model import EvalCase, Response
from dyag_core.evaluation.scoring import score_answer

DEFAULT_THRESHOLD = 0.75
DEFAULT_MAX_ACCURACY_DROP = 0.2


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
    probes: int
    agreement: float
    mean_token_f1: float
    hf_fact_accuracy: float
    gguf_fact_accuracy: float
    prompt_token_agreement: float | None
    threshold: float
    max_accuracy_drop: float
    passed: bool
    reason: str
    samples: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantization": self.quantization,
            "probes": self.probes,
            "agreement": self.agreement,
            "mean_token_f1": self.mean_token_f1,
            "hf_fact_accuracy": self.hf_fact_accuracy,
            "gguf_fact_accuracy": self.gguf_fact_accuracy,
            "prompt_token_agreement": self.prompt_token_agreement,
            "threshold": self.threshold,
            "passed": self.passed,
            "reason": self.reason,
            "samples": list(self.samples),
        }


def parity_report(
    quantization: str,
    probes: Sequence[EvalCase],
    hf_answers: Sequence[str],
    gguf_answers: Sequence[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
    prompt_tokens_equal: Sequence[bool] | None = None,
) -> ParityReport:
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
    agreement, hf_acc, gguf_acc = agree / n, hf_right / n, gguf_right / n
    reasons = []
    if agreement < threshold:
        reasons.append(f"the GGUF answers {agree}/{n} probes as the HF model does ({agreement:.0%} < {threshold:.0%})")
    if gguf_acc < hf_acc - max_accuracy_drop - 1e-9:
        reasons.append(
            f"its fact accuracy falls from {hf_acc:.0%} to {gguf_acc:.0%} (more than {max_accuracy_drop:.0%})"
        )
    token_share = None
    if prompt_tokens_equal is not None and len(prompt_tokens_equal):
        token_share = sum(bool(x) for x in prompt_tokens_equal) / len(prompt_tokens_equal)
    return ParityReport(
        quantization=quantization,
        probes=n,
        agreement=round(agreement, 4),
        mean_token_f1=round(f1_sum / n, 4),
        hf_fact_accuracy=round(hf_acc, 4),
        gguf_fact_accuracy=round(gguf_acc, 4),
        prompt_token_agreement=token_share,
        threshold=threshold,
        max_accuracy_drop=max_accuracy_drop,
        passed=not reasons,
        reason="; ".join(reasons),
        samples=tuple(samples),
    )
