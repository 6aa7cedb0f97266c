"""Scoring: one question (score_answer) and a whole run (evaluate).

The correctness rule ("is correct", which `accuracy` counts), in order:
1. a failed call (error, timeout) is incorrect — reason "failed";
2. an empty answer is incorrect — "empty_answer";
3. a negative question (unknown application, empty field) is correct when the answer abstains and
   asserts nothing that contradicts the record — else "invented_answer" (it did not abstain) or
   "hallucination";
4. an answerable question with key facts is correct when the answer states at least
   `fact_threshold` (0.8) of them — every fact when there are 1 to 4, 4 of 5, 8 of 10… — and asserts no
   hallucination — else "hallucination", "abstained" (it declined) or "missing_facts";
5. an answerable question without key facts (a chat test set with no manifest) is correct when its token
   F1 with the expected answer reaches `overlap_threshold` (0.5) or, with an embedder, its semantic
   similarity reaches `similarity_threshold` (0.85), and it asserts no hallucination — else "low_overlap".
Exact match, token F1, semantic similarity and the judge's score are reported; they never override rules
1-4 (a paraphrase that states the facts is correct; a fluent answer with the wrong status is not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dyag_core.catalog.model import Catalog
from dyag_core.dataset.model import QUESTION_TYPES
from dyag_core.evaluation.aggregate import (
    PriceTable,
    TokenPrice,
    by_key,
    group_metrics,
    latency_stats,
    price_for,
    question_cost,
    usage_stats,
)
from dyag_core.evaluation.errors import EvaluationError
from dyag_core.evaluation.hallucination import CatalogIndex, active_rules, detect, entity_names
from dyag_core.evaluation.metrics import abstains, cosine, exact_match, fact_recall, token_prf
from dyag_core.evaluation.model import (
    Embedder,
    EvalCase,
    Hallucination,
    QuestionResult,
    Response,
    ScoringConfig,
    Target,
)
from dyag_core.evaluation.normalize import view
from dyag_core.evaluation.results import EvaluationRun, fingerprint

DEFAULT_CONFIG = ScoringConfig()


def score_answer(
    case: EvalCase,
    response: Response,
    *,
    index: CatalogIndex | None = None,
    similarity: float | None = None,
    price: TokenPrice | None = None,
    config: ScoringConfig = DEFAULT_CONFIG,
) -> QuestionResult:
    """One question's metrics and verdict (similarity is computed by evaluate(), which batches the embedder)."""
    usage: dict[str, Any] = {
        "latency_ms": response.latency_ms,
        "prompt_tokens": response.prompt_tokens,
        "completion_tokens": response.completion_tokens,
        "cost_usd": question_cost(response.prompt_tokens, response.completion_tokens, price),
        "judge_score": response.judge_score,
    }
    facts_missing = tuple(case.key_facts)
    recall0 = 0.0 if case.key_facts else None
    if response.error is not None:
        failure = f"échec de l'appel à la cible : {response.error}"
        return QuestionResult(
            case,
            response.text,
            False,
            "failed",
            failure,
            failed=True,
            error=response.error,
            fact_recall=recall0,
            facts_missing=facts_missing,
            **usage,
        )
    answer = response.text or ""
    if not answer.strip():
        return QuestionResult(
            case,
            answer,
            False,
            "empty_answer",
            "réponse vide",
            fact_recall=recall0,
            facts_missing=facts_missing,
            **usage,
        )

    text = view(answer)
    precision, recall, f1 = token_prf(answer, case.expected_answer)
    share, matches = fact_recall(case.key_facts, text)
    found = tuple(m.fact for m in matches if m.found)
    missing = tuple(m.fact for m in matches if not m.found)
    abstained = abstains(answer)
    hallucinations = detect(case, text, index, abstained)
    code, reason = _verdict(case, share, missing, abstained, hallucinations, f1, similarity, config)
    return QuestionResult(
        case,
        answer,
        code is None,
        code,
        reason,
        exact_match=exact_match(answer, case.expected_answer),
        precision=precision,
        recall=recall,
        f1=f1,
        fact_recall=share,
        facts_found=found,
        facts_missing=missing,
        similarity=similarity,
        abstained=abstained,
        hallucinations=hallucinations,
        **usage,
    )


def _verdict(
    case: EvalCase,
    share: float | None,
    missing: Sequence[str],
    abstained: bool,
    hallucinations: Sequence[Hallucination],
    f1: float,
    similarity: float | None,
    config: ScoringConfig,
) -> tuple[str | None, str | None]:
    """(reason code, reason) — (None, None) when correct. See the module's docstring."""
    contradictions = [h for h in hallucinations if h.kind != "invented_answer"]
    said = (
        "hallucination : " + " ; ".join(f"« {h.value} » ({h.detail})" for h in contradictions) if contradictions else ""
    )
    if case.negative:
        if not abstained:
            return (
                "invented_answer",
                "la question n'a pas de réponse dans le catalogue et "
                "la réponse invente au lieu de dire qu'elle ne sait pas" + (f" ; {said}" if said else ""),
            )
        return ("hallucination", said) if said else (None, None)
    if share is not None:
        lacking = (
            f"faits manquants : {' ; '.join(missing)} "
            f"({len(case.key_facts) - len(missing)}/{len(case.key_facts)} énoncés)"
            if missing
            else ""
        )
        if said:
            return "hallucination", said + (f" ; {lacking}" if lacking else "")
        if share >= config.fact_threshold:
            return None, None
        if abstained:
            return "abstained", f"la réponse s'abstient alors que le catalogue répond ; {lacking}"
        return "missing_facts", lacking
    close = f1 >= config.overlap_threshold or (similarity is not None and similarity >= config.similarity_threshold)
    if said:
        return "hallucination", said
    if close:
        return None, None
    if abstained:
        return "abstained", "la réponse s'abstient alors que la réponse attendue répond"
    sim = f", similarité {similarity:.2f}" if similarity is not None else ""
    return "low_overlap", f"réponse éloignée de la réponse attendue (F1 {f1:.2f}{sim})"


def _similarities(
    cases: Sequence[EvalCase], responses: Sequence[Response], embed: Embedder, batch: int
) -> list[float | None]:
    scored = [i for i, r in enumerate(responses) if r.error is None and (r.text or "").strip()]
    out: list[float | None] = [None] * len(cases)
    step = max(1, batch // 2)
    for offset in range(0, len(scored), step):
        chunk = scored[offset : offset + step]
        texts = [responses[i].text for i in chunk] + [cases[i].expected_answer for i in chunk]
        vectors = list(embed(texts))
        if len(vectors) != len(texts):
            raise EvaluationError(
                "bad_embedder",
                f"the embedder returned {len(vectors)} vectors for {len(texts)} "
                "texts; it must return one vector per text, in order",
            )
        for k, i in enumerate(chunk):
            out[i] = max(
                0.0, min(1.0, cosine([float(x) for x in vectors[k]], [float(x) for x in vectors[k + len(chunk)]]))
            )
    return out


def evaluate(
    cases: Sequence[EvalCase],
    responses: Sequence[Response],
    *,
    target: Target,
    catalog: Catalog | CatalogIndex | None = None,
    embed: Embedder | None = None,
    prices: PriceTable | None = None,
    config: ScoringConfig | None = None,
    test_set: str = "",
    meta: Mapping[str, object] | None = None,
) -> EvaluationRun:
    """Score every answer of one target and aggregate. responses[i] answers cases[i]; a failed call is a
    Response with `error` set. The catalog enables the hallucination rules; the embedder, the semantic
    similarity; the price table, the cost."""
    config = config or DEFAULT_CONFIG
    if not cases:
        raise EvaluationError("empty_test_set", "the test set holds 0 questions: there is nothing to evaluate")
    if len(cases) != len(responses):
        raise EvaluationError(
            "length_mismatch",
            f"{len(responses)} responses for {len(cases)} questions: give one "
            "response per question, in order (a failed call is Response.failed(...))",
        )
    index = CatalogIndex.of(catalog)
    price = price_for(target.model, prices, target.provider)
    similarities = _similarities(cases, responses, embed, config.embed_batch) if embed else [None] * len(cases)
    results = tuple(
        score_answer(c, r, index=index, similarity=s, price=price, config=config)
        for c, r, s in zip(cases, responses, similarities, strict=True)
    )
    entity_ids = list(dict.fromkeys(e for c in cases for e in c.entity_ids))
    return EvaluationRun(
        target=target,
        test_set=test_set,
        test_set_fingerprint=fingerprint(cases),
        results=results,
        overall=group_metrics(results),
        by_type=by_key(results, QUESTION_TYPES, lambda r: (r.case.qtype,)),
        by_entity=by_key(results, entity_ids, lambda r: r.case.entity_ids),
        entity_names=entity_names(index, entity_ids),
        latency=latency_stats(results),
        usage=usage_stats(results, price, target.model),
        catalog_size=index.size if index else None,
        catalog_version=index.version if index else None,
        rules=active_rules(index),
        config=config,
        has_similarity=embed is not None,
        meta=dict(meta or {}),
    )
