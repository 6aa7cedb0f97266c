"""LLM-as-judge, only when a judge model is configured (a run's judge_model, else DYAG_EVAL_JUDGE_MODEL):
the judge reads the question, the reference answer and the answer, and gives a score from 0 to 10. The score
is reported beside the other metrics; it never decides whether an answer is correct."""

from __future__ import annotations

import re

from dyag_core.evaluation import EvalCase

JUDGE_SYSTEM = (
    "Tu es un évaluateur strict. On te donne une question sur un catalogue d'applications, la réponse de "
    "référence (exacte) et une réponse à évaluer. Note la réponse de 0 à 10 : 10 si elle donne exactement les "
    "faits de la référence, sans rien inventer ; 0 si elle est fausse, invente des faits ou ne répond pas. "
    "Si la référence dit que l'information n'est pas connue, une réponse qui le dit aussi vaut 10. "
    "Réponds uniquement par la note, un nombre entier entre 0 et 10."
)
_NUMBER = re.compile(r"(?<![\d.])(10|\d)(?:[.,]\d+)?(?:\s*/\s*10)?")


def judge_messages(case: EvalCase, answer: str) -> list[dict[str, str]]:
    user = (
        f"Question : {case.question}\n\nRéponse de référence : "
        f"{case.expected_answer}\n\nRéponse à évaluer : {answer}\n\nNote (0 à 10) :"
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_score(text: str) -> float | None:
    """The judge's 0-10 grade as 0..1; None when it gave no grade."""
    match = _NUMBER.search(text or "")
    if not match:
        return None
    value = float(match.group(0).split("/")[0].strip().replace(",", "."))
    return max(0.0, min(1.0, value / 10))
