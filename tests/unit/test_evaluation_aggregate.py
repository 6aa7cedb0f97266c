"""Aggregation, percentiles, tokens and cost, the optional embedder and judge: hand-checked numbers."""

from __future__ import annotations

import pytest
from test_evaluation_support import (
    ACTORS_GEOVAL,
    CATALOG,
    EMPTY_SITES_ARCHIPEL,
    SITES_GEOVAL,
    STATUS_GEOVAL,
    UNKNOWN_ZORGLUB,
)

from dyag_core.evaluation import (
    EvaluationError,
    Response,
    ScoringConfig,
    Target,
    TokenPrice,
    evaluate,
    percentile,
    price_for,
)

CASES = [STATUS_GEOVAL, ACTORS_GEOVAL, SITES_GEOVAL, EMPTY_SITES_ARCHIPEL, UNKNOWN_ZORGLUB]
RESPONSES = [
    Response("GEOVAL est en production.", 100.0, 1000, 500),  # correct
    Response("DGALN/DHUP et CEREMA.", 200.0, 1000, 500),  # 2/3 facts: incorrect
    Response("Voir https://www.geoval.gouv.fr.", 300.0, 1000, 500),  # invented URL: incorrect, hallucinated
    Response("Je ne sais pas.", 400.0, 1000, 500),  # correct abstention
    Response.failed("timeout après 30 s", 30000.0),  # failed: incorrect, latency not counted
]
PRICES = {"gpt-4o-mini": TokenPrice(1.0, 2.0)}


@pytest.fixture(scope="module")
def run():
    return evaluate(
        CASES,
        RESPONSES,
        target=Target("hosted", "fine_tuned", "gpt-4o-mini-2024-07-18"),
        catalog=CATALOG,
        prices=PRICES,
        test_set="t.jsonl",
    )


def test_percentiles_interpolate_linearly() -> None:
    # ranks (n-1)·p: [100, 200, 300, 400] p50 -> rank 1.5 -> 250; p95 -> rank 2.85 -> 300 + 0.85·100 = 385.
    assert percentile([400, 100, 300, 200], 50) == 250
    assert percentile([100, 200, 300, 400], 95) == pytest.approx(385)
    assert percentile([7], 95) == 7 and percentile([], 50) is None
    numpy = pytest.importorskip("numpy")
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    for p in (0, 25, 50, 90, 95, 100):
        assert percentile(values, p) == pytest.approx(float(numpy.percentile(values, p)))


def test_run_aggregates(run) -> None:
    o = run.overall
    # correct: status + abstention = 2 of 5 -> 0.4; failed 1.
    assert (o.n, o.correct, o.failed, o.accuracy) == (5, 2, 1, 0.4)
    # hallucination: 1 (the URL) of 4 answered; abstention: 1 of 2 negatives (the failed one did not abstain).
    assert (o.hallucinated, o.hallucination_rate) == (1, 0.25)
    assert (o.negatives, o.abstention_rate) == (2, 0.5)
    # fact recall over the 3 questions with key facts: (1 + 2/3 + 0) / 3 = 5/9.
    assert o.fact_accuracy == pytest.approx(5 / 9)
    # latency over the 4 calls that did not fail: mean 250, p50 250, p95 385.
    lat = run.latency
    assert (lat.n, lat.mean, lat.p50, lat.min, lat.max) == (4, 250.0, 250.0, 100.0, 400.0)
    assert lat.p95 == pytest.approx(385)
    assert run.average_generation_time_ms == 250.0


def test_tokens_and_cost(run) -> None:
    u = run.usage
    # 4 answered × (1000 + 500); price found for the dated name: 1000·1 + 500·2 = 2000 µ$ = 0.002 $ a question.
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (4000, 2000, 6000)
    assert u.price == TokenPrice(1.0, 2.0)
    assert u.cost_usd == pytest.approx(0.008)
    assert u.cost_per_1000_questions_usd == pytest.approx(0.008 / 5 * 1000)  # 1.6 $
    # No price: no cost, said so — never invented.
    other = evaluate(CASES, RESPONSES, target=Target("x", model="mystery-model"), prices=PRICES)
    assert other.usage.cost_usd is None and "pas de tarif" in other.usage.cost_note


def test_price_lookup() -> None:
    table = {"gpt-4o-mini-2024-07-18": (0.15, 0.6), "ft:gpt-4o-mini": (0.3, 1.2), "ollama:*": 0}
    assert price_for("gpt-4o-mini", table) == TokenPrice(0.15, 0.6)
    assert price_for("ft:gpt-4o-mini-2024-07-18:org::abc123", table) == TokenPrice(0.3, 1.2)
    assert price_for("ollama:applications-ia", table) == TokenPrice(0.0, 0.0)
    assert price_for("claude-x", table) is None and price_for("gpt-4o-mini", None) is None


def test_per_type_and_per_entity(run) -> None:
    assert list(run.by_type) == [
        "status",
        "actors",
        "sites",
        "negative_unknown_entity",
        "negative_empty_field",
    ]  # QUESTION_TYPES order
    assert run.by_type["status"].accuracy == 1.0 and run.by_type["sites"].hallucination_rate == 1.0
    # GEOVAL ("1") has 3 questions, 1 correct; ARCHIPEL ("3") 1 of 1.
    assert run.by_entity["1"].n == 3 and run.by_entity["1"].accuracy == pytest.approx(1 / 3)
    assert run.by_entity["3"].accuracy == 1.0 and run.entity_names == {"1": "GEOVAL", "3": "ARCHIPEL"}


def test_semantic_similarity_uses_the_injected_embedder_in_batches() -> None:
    calls: list[int] = []

    def embed(texts):  # a deterministic bag of letters
        calls.append(len(texts))
        return [[t.lower().count(ch) for ch in "abcdefghijklmnopqrstuvwxyz"] for t in texts]

    run = evaluate(CASES, RESPONSES, target=Target("t"), embed=embed, config=ScoringConfig(embed_batch=4))
    # 4 non-failed answers, 2 pairs (4 texts) per call -> 2 calls; the failed question has no similarity.
    assert calls == [4, 4]
    sims = [r.similarity for r in run.results]
    assert sims[4] is None and all(0.0 <= s <= 1.0 for s in sims[:4])
    assert run.has_similarity and run.overall.similarity == pytest.approx(sum(sims[:4]) / 4)
    same = evaluate([STATUS_GEOVAL], [Response(STATUS_GEOVAL.expected_answer)], target=Target("t"), embed=embed)
    assert same.results[0].similarity == pytest.approx(1.0)
    with pytest.raises(EvaluationError) as err:
        evaluate(CASES, RESPONSES, target=Target("t"), embed=lambda texts: [[1.0]])
    assert err.value.code == "bad_embedder"


def test_the_judge_score_is_optional() -> None:
    run = evaluate(CASES[:2], [Response("a", judge_score=0.8), Response("b", judge_score=0.4)], target=Target("t"))
    assert run.overall.judge_score == pytest.approx(0.6)
    run = evaluate(CASES[:2], [Response("a"), Response("b")], target=Target("t"))
    assert run.overall.judge_score is None and run.to_dict()["judge_score"] is None


def test_bad_runs_are_refused_clearly() -> None:
    with pytest.raises(EvaluationError) as err:
        evaluate([], [], target=Target("t"))
    assert err.value.code == "empty_test_set" and "0 questions" in err.value.message
    with pytest.raises(EvaluationError) as err:
        evaluate(CASES, RESPONSES[:2], target=Target("t"))
    assert err.value.code == "length_mismatch"


def test_an_unreachable_target_still_reports() -> None:
    run = evaluate(
        CASES, [Response.failed("connexion refusée : 127.0.0.1:11434")] * len(CASES), target=Target("ollama")
    )
    assert run.overall.failed == 5 and run.accuracy == 0.0 and run.latency.mean is None
    assert run.overall.hallucination_rate is None  # nothing answered
    assert all(e["reason"].startswith("échec de l'appel") for e in run.errors)
