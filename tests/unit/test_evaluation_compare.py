"""Comparison of runs: the guide's 6.2 deltas, significance, the 7.2 decision table and the recommendation."""

from __future__ import annotations

import pytest
from test_evaluation_support import CATALOG, case

from dyag_core.evaluation import (
    GUIDE_DECISION_ROWS,
    EvaluationError,
    Response,
    Target,
    compare_runs,
    comparison_markdown,
    evaluate,
    guide_row,
    load_run,
    mcnemar_p,
)

CASES = [
    case(
        "status",
        f"Quel est le statut de GEOVAL (variante {i}) ?",
        "GEOVAL est en production.",
        ("en production",),
        ("1",),
        id=f"q{i}",
    )
    for i in range(20)
]
RIGHT, WRONG = "GEOVAL est en production.", "Je ne sais pas."
PRICES = {"ollama:*": 0, "ft:gpt-4o-mini": (0.3, 1.2)}


def make_run(name: str, approach: str, model: str, correct: int, latency: float, training: float | None = None):
    responses = [Response(RIGHT if i < correct else WRONG, latency, 200, 50) for i in range(len(CASES))]
    return evaluate(
        CASES,
        responses,
        target=Target(name, approach, model, training_cost_usd=training),
        catalog=CATALOG,
        prices=PRICES,
        test_set="test.jsonl",
    )


@pytest.fixture(scope="module")
def runs():
    return [
        make_run("base", "base", "ollama:qwen2.5", 10, 1000.0),  # 10/20 = 50 %
        make_run("rag", "rag", "ollama:qwen2.5", 20, 2000.0),  # 20/20 = 100 %
        make_run(
            "fine-tuned", "fine_tuned", "ft:gpt-4o-mini-2024-07-18:org::x", 11, 500.0, training=2.5
        ),  # 11/20 = 55 %
    ]


def test_mcnemar_exact_p_values() -> None:
    # b=0, c=2: 2·C(2,0)/2² = 0.5; b=10, c=0: 2/2¹⁰ = 0.001953125; b=c=3: 2·(1+6+15+20)/2⁶ > 1 -> 1.
    assert mcnemar_p(0, 2) == 0.5
    assert mcnemar_p(10, 0) == pytest.approx(0.001953125)
    assert mcnemar_p(3, 3) == 1.0 and mcnemar_p(0, 0) == 1.0


def test_the_guide_6_2_table_with_deltas(runs) -> None:
    c = compare_runs(runs)
    acc = next(m for m in c.table if m.key == "accuracy")
    # 0.5, 1.0, 0.55 -> deltas against base: +0.5, +0.05.
    assert acc.values == (0.5, 1.0, 0.55)
    assert acc.deltas[0] is None and acc.deltas[1] == pytest.approx(0.5) and acc.deltas[2] == pytest.approx(0.05)
    assert [m.key for m in c.table[:4]] == ["accuracy", "precision", "recall", "f1_score"]
    # The guide's latency improvement (baseline - run) / baseline: (1000-2000)/1000 = -100 %, (1000-500)/1000 = +50 %.
    assert c.latency_ms == (1000.0, 2000.0, 500.0)
    assert c.latency_improvement == (None, -1.0, 0.5)
    # McNemar on the same 20 questions: base vs rag, b=0 c=10 -> p = 2/1024 (significant); base vs ft, b=0 c=1 -> p = 1.
    assert c.same_test_set and c.significance[1].test == "mcnemar"
    assert c.significance[1].p_value == pytest.approx(2 / 1024) and c.significance[1].significant
    assert c.significance[2].p_value == 1.0 and not c.significance[2].significant
    md = comparison_markdown(c)
    assert "| Accuracy | 50.0 % | 100.0 % | 55.0 % | +50.0 pts | +5.0 pts |" in md
    assert "| Latence moyenne | 1 000 ms | 2 000 ms | 500 ms | +1 000 ms | -500 ms |" in md


def test_rag_vs_fine_tuned_vs_hybrid_and_the_decision_table(runs) -> None:
    c = compare_runs(runs)
    assert [a.approach for a in c.approaches] == ["base", "rag", "fine_tuned"]
    ft = c.approach("fine_tuned")
    # 20 questions × (200 in × 0.3 + 50 out × 1.2) / 1M = 20 × 120 µ$ = 0.0024 $ -> 0.12 $ / 1000 questions.
    assert ft.cost_per_1000_usd == pytest.approx(0.12) and ft.training_cost_usd == 2.5
    assert c.approach("rag").cost_per_1000_usd == 0.0
    # 4 applications: the guide's "< 50" row; each row carries the measured figures of the approach it advises.
    assert c.catalog_size == 4 and c.guide_row == 0 == guide_row(4)
    table = c.decision_table()
    assert [r["approach"] for r in table] == ["base", "rag", "hybrid", "fine_tuned", "grounded"]
    assert table[4]["measured"] is None and not table[4]["this_catalog"]  # grounded answering: not measured here
    assert table[0]["this_catalog"] and not any(r["this_catalog"] for r in table[1:])
    assert table[1]["measured"]["accuracy"] == 1.0 and table[1]["measured"]["latency_p50_ms"] == 2000.0
    assert table[2]["measured"] is None  # hybrid was not measured
    assert "non mesuré" in comparison_markdown(c)


def test_the_recommendation_follows_the_numbers(runs) -> None:
    c = compare_runs(runs)
    # rag 100 % is significantly better than base (b=10, c=0: p = 0.00195) and fine-tuned (b=9, c=0:
    # p = 2/512 = 0.0039).
    assert c.recommended == "rag"
    assert "Recommandation : RAG (cible « rag ») — 100.0 % d'exactitude sur 20 questions" in c.recommendation
    # 2 000 ms is not "under 2 s": the guide's success criteria are not met, and the report says so first.
    assert c.success_shortfalls == ("latence p50 2 000 ms (objectif < 2 s)",)
    assert c.recommendation.startswith(
        "⚠ Aucune approche mesurée ne remplit les critères de réussite du guide : la meilleure, RAG"
    )
    assert c.to_dict()["meets_success_criteria"] is False
    assert (
        "significativement plus exacte que Modèle de base 50.0 % (p = 0.00195), Fine-tuning 55.0 % (p = 0.00391)"
        in c.recommendation
    )
    assert (
        "le tableau 7.2 du guide conseille « NI l'un NI l'autre" in c.recommendation
        and "les mesures désignent plutôt RAG" in c.recommendation
    )


def test_a_tie_goes_to_the_cheaper_approach() -> None:
    rag = make_run("rag", "rag", "ollama:qwen2.5", 19, 2000.0)
    hybrid = make_run("hybrid", "hybrid", "ft:gpt-4o-mini-2024-07-18:org::x", 20, 2100.0, training=2.5)
    c = compare_runs([rag, hybrid])
    # 95 % vs 100 %: one discordant question, p = 1 -> not significant -> the cheaper (0 $ vs 0.12 $) wins.
    assert c.recommended == "rag"
    assert "un écart de 5.0 pts non significatif (p = 1)" in c.recommendation
    assert "RAG est moins coûteuse (0 $ contre 0.1200 $ pour 1000 questions)" in c.recommendation


def test_a_tie_at_comparable_latency_goes_to_the_simpler_approach() -> None:
    """Same accuracy, same cost, p50 latencies 7 % apart (noise on a few dozen questions): the simpler approach wins,
    never the one that happened to be a few milliseconds faster."""
    base = make_run("base", "base", "local:default", 10, 1200.0)
    tuned = make_run("fine-tuned", "fine_tuned", "local:lora-x", 10, 1120.0)
    c = compare_runs([base, tuned])
    assert c.recommended == "base"
    assert (
        "plus simple à exploiter, à coût égal et latence comparable (p50 1 200 ms contre 1 120 ms" in c.recommendation
    )
    # Clearly faster (more than 10 %): the faster one wins the tie.
    slow_base = make_run("base", "base", "local:default", 10, 2000.0)
    c = compare_runs([slow_base, tuned])
    assert c.recommended == "fine_tuned" and "plus rapide (latence p50 1 120 ms contre 2 000 ms)" in c.recommendation


def test_one_run_and_mismatched_test_sets_are_said() -> None:
    single = compare_runs([make_run("rag", "rag", "ollama:x", 15, 900.0)])
    assert "Seule l'approche « RAG » a été mesurée" in single.recommendation
    other = evaluate(CASES[:10], [Response(RIGHT, 10.0)] * 10, target=Target("ft", "fine_tuned"), catalog=CATALOG)
    c = compare_runs([make_run("rag", "rag", "ollama:x", 15, 900.0), other])
    assert not c.same_test_set and c.warnings and c.significance[1].test == "two-proportion"
    with pytest.raises(EvaluationError) as err:
        compare_runs([])
    assert err.value.code == "no_runs"


def test_guide_rows_cover_every_size() -> None:
    assert [guide_row(n) for n in (0, 49, 50, 199, 200, 1000, 1001, 10**6)] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert guide_row(None) is None and len(GUIDE_DECISION_ROWS) == 4


def test_compare_from_files(tmp_path, runs) -> None:
    paths = []
    for run in runs:
        path = tmp_path / f"{run.target.name}.json"
        path.write_text(run.to_json(), encoding="utf-8")
        paths.append(path)
    loaded = [load_run(p) for p in paths]
    assert compare_runs(loaded).to_dict() == compare_runs(runs).to_dict()
    bad = tmp_path / "bad.json"
    bad.write_text('{"accuracy": 0.5}', encoding="utf-8")
    with pytest.raises(EvaluationError) as err:
        load_run(bad)
    assert err.value.code == "bad_results" and "bad.json" in err.value.message


def test_a_comparison_says_when_no_approach_is_good_enough_and_when_one_is() -> None:
    weak = [make_run("base", "base", "ollama:qwen2.5", 1, 900.0), make_run("rag", "rag", "ollama:qwen2.5", 2, 1500.0)]
    c = compare_runs(weak)
    # 1 and 2 right of 20 do not differ: the simpler approach is named, and said not to be good enough.
    assert c.recommended == "base" and "exactitude 5.0 % (objectif > 85 %)" in c.success_shortfalls[0]
    assert c.recommendation.startswith("⚠ Aucune approche mesurée ne remplit les critères de réussite du guide")
    assert (
        "Étape suivante : regardez les questions manquées" in c.recommendation
    )  # RAG was measured: not "evaluate RAG"
    only_base = compare_runs(weak[:1])
    assert "Étape suivante : évaluez RAG en mode auto" in only_base.recommendation
    good = [make_run("base", "base", "ollama:qwen2.5", 1, 900.0), make_run("grounded", "grounded", "", 20, 40.0)]
    c = compare_runs(good)
    assert c.recommended == "grounded" and c.success_shortfalls == ()
    assert c.recommendation.startswith("Recommandation : Réponses ancrées") and c.to_dict()["meets_success_criteria"]
