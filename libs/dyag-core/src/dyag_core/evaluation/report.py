"""The Markdown report: one run in the guide's layout (6.2 metrics, 6.3 errors), or N runs with their comparison."""

from __future__ import annotations

from collections.abc import Sequence

from dyag_core.evaluation.compare import Comparison, compare_runs, comparison_markdown
from dyag_core.evaluation.formatting import approach_label, ms, pct, score, type_label, usd
from dyag_core.evaluation.results import EvaluationRun

ERRORS_SHOWN = 10  # the guide's step 6.3 prints the first 5; the JSON holds them all
ENTITIES_SHOWN = 15


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_markdown(run: EvaluationRun, level: int = 1) -> str:
    h = "#" * level
    o, t = run.overall, run.target
    lines = [f"{h} Évaluation : {t.name}", ""]
    lines.append(
        f"- Approche : {approach_label(t.approach)}"
        + (f" — modèle `{t.model}`" if t.model else "")
        + (f" ({t.provider})" if t.provider else "")
    )
    lines.append(f"- Jeu de test : {run.test_set or 'n/d'} — {o.n} questions (empreinte {run.test_set_fingerprint})")
    if run.catalog_size is not None:
        lines.append(f"- Catalogue : {run.catalog_size} applications (version {run.catalog_version})")
    lines += ["", f"{h}# Résultats (étape 6.2 du guide)", "", "| Métrique | Valeur |", "|---|---|"]
    rows = [
        ("Accuracy", pct(o.accuracy) + f" ({o.correct}/{o.n})"),
        ("Precision (mots)", pct(o.precision)),
        ("Recall (mots)", pct(o.recall)),
        ("F1_score (mots)", pct(o.f1_score)),
        ("Faits clés énoncés", pct(o.fact_accuracy)),
        ("Exact match", pct(o.exact_match)),
        ("Similarité sémantique", score(o.similarity) if run.has_similarity else "non mesurée"),
        ("Hallucinations", pct(o.hallucination_rate) + f" ({o.hallucinated} réponses)"),
        ("Abstention (questions négatives)", pct(o.abstention_rate) + f" ({o.negatives} questions)"),
        ("Abstention à tort (questions avec réponse)", pct(o.over_abstention_rate)),
        ("Appels en échec", str(o.failed)),
        ("Latence moyenne (average_generation_time_ms)", ms(run.latency.mean)),
        ("Latence p50 / p95", f"{ms(run.latency.p50)} / {ms(run.latency.p95)}"),
        ("Tokens (entrée / sortie)", f"{run.usage.prompt_tokens} / {run.usage.completion_tokens}"),
        (
            "Coût estimé",
            f"{usd(run.usage.cost_usd)} ({usd(run.usage.cost_per_1000_questions_usd)} "
            f"pour 1000 questions) — {run.usage.cost_note}",
        ),
    ]
    if o.judge_score is not None:
        rows.append(("Score du juge LLM", score(o.judge_score)))
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += [
        "",
        f"{h}# Par type de question",
        "",
        "| Type | Questions | Exactitude | Faits clés | F1 | Hallucinations |",
        "|---|---|---|---|---|---|",
    ]
    for qtype, g in run.by_type.items():
        lines.append(
            f"| {type_label(qtype)} | {g.n} | {pct(g.accuracy)} | "
            f"{pct(g.fact_accuracy)} | {pct(g.f1_score)} | {pct(g.hallucination_rate)} |"
        )
    if run.by_entity:
        worst = sorted(run.by_entity.items(), key=lambda kv: (kv[1].accuracy, -kv[1].n, kv[0]))[:ENTITIES_SHOWN]
        lines += [
            "",
            f"{h}# Par application (les {len(worst)} moins bien servies)",
            "",
            "| Application | Questions | Exactitude | Hallucinations |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {_cell(run.entity_names.get(k, k))} | {g.n} | {pct(g.accuracy)} | {pct(g.hallucination_rate)} |"
            for k, g in worst
        ]
    errors = run.errors
    lines += ["", f"{h}# Erreurs (étape 6.3 du guide) : {len(errors)}", ""]
    for i, err in enumerate(errors[:ERRORS_SHOWN], 1):
        lines += [
            f"{i}. **Question :** {_cell(err['question'])}",
            f"   - Attendu : {_cell(err['expected'])}",
            f"   - Obtenu : {_cell(err['got']) or '(vide)'}",
            f"   - Raison : {_cell(err['reason'] or 'N/A', 300)}",
        ]
    if len(errors) > ERRORS_SHOWN:
        lines.append(f"\n… et {len(errors) - ERRORS_SHOWN} autres (toutes dans le JSON, champ `errors`).")
    lines.append("")
    return "\n".join(lines)


def render_markdown(runs: EvaluationRun | Sequence[EvaluationRun], comparison: Comparison | None = None) -> str:
    """One run's report, or N runs: the comparison first, then each run."""
    if isinstance(runs, EvaluationRun):
        return run_markdown(runs)
    runs = list(runs)
    if len(runs) == 1 and comparison is None:
        return run_markdown(runs[0])
    comparison = comparison or compare_runs(runs)
    parts = ["# Rapport d'évaluation Dyag", "", comparison_markdown(comparison)]
    parts += [run_markdown(r, level=2) for r in comparison.runs]
    return "\n".join(parts)
