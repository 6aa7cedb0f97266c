"""Comparison of N runs: the guide's step 6.2 table with deltas, RAG vs fine-tuned vs hybrid, and the
guide's step 7.2 decision table filled in with the measured accuracy, latency and cost.

Deltas are against the baseline run (the first unless told), in percentage points for rates.
Whether an accuracy gap is real: on the same test set, McNemar's exact test on the questions one run gets
right and the other wrong; on different test sets, a two-proportion z-test (ALPHA = 0.05); plus the 95 %
Wald confidence interval of the gap. Two runs are *tied* when the gap is not significant and its interval
holds 0 (both must agree: with very few questions the exact test cannot reach significance at all).

The recommendation (one sentence, from the numbers only):
- the candidate of each approach is its most accurate run;
- the most accurate candidate wins, unless another is tied with it (see above): among those tied,
  the lowest measured inference cost per 1000 questions wins (an unknown cost never wins a tie), then the
  lowest p50 latency, then the simpler approach (base < RAG < fine-tuning < hybrid);
- it then says whether the guide's 7.2 row for this catalog size agrees. The guide's rows (<50, 50-200,
  200-1000, >1000 applications) are quoted as the guide's advice, never as measurements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dyag_core.evaluation.errors import EvaluationError
from dyag_core.evaluation.formatting import approach_label, ms, ms_delta, pct, points, usd
from dyag_core.evaluation.model import APPROACHES
from dyag_core.evaluation.results import EvaluationRun

ALPHA = 0.05
# The guide's success checklist: an approach is good enough when all three hold.
SUCCESS_ACCURACY = 0.85  # accuracy above 85 %
SUCCESS_P50_MS = 2000.0  # answers in under 2 s (p50)
SUCCESS_HALLUCINATION = 0.01  # no hallucinations (at most 1 %, the noise of one question in a hundred)
Z95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval
GUIDE_METRICS = (("accuracy", "Accuracy"), ("precision", "Precision"), ("recall", "Recall"), ("f1_score", "F1_score"))
EXTRA_METRICS = (
    ("fact_accuracy", "Faits clés"),
    ("hallucination_rate", "Hallucinations"),
    ("abstention_rate", "Abstention (négatives)"),
    ("exact_match", "Exact match"),
)


@dataclass(frozen=True, slots=True)
class GuideRow:
    """One row of the guide's step 7.2 decision table (the guide's advice, not a measurement)."""

    situation: str
    details: str
    advice: str
    approach: str  # the approach the guide recommends
    low: int  # catalog sizes low <= n < high
    high: float


GUIDE_DECISION_ROWS = (
    GuideRow(
        "< 50 applications",
        "peu de questions",
        "NI l'un NI l'autre → utiliser un modèle généraliste directement (GPT-4 direct)",
        "base",
        0,
        50,
    ),
    GuideRow("50-200 applications", "mises à jour fréquentes ; budget limité", "RAG", "rag", 50, 200),
    GuideRow(
        "200-1000 applications",
        "style spécifique requis ; budget moyen",
        "RAG + fine-tuning (fine-tuning pour le style, RAG pour les connaissances)",
        "hybrid",
        200,
        1001,
    ),
    GuideRow(
        "> 1000 applications",
        "données stables ; latence critique ; budget élevé",
        "Fine-tuning (RAG optionnel pour les mises à jour)",
        "fine_tuned",
        1001,
        math.inf,
    ),
)
# Not a row of the guide: Dyag's own, for a catalog's factual questions (its fields), answered from the records.
GROUNDED_ROW = GuideRow(
    "Questions factuelles sur les fiches",
    "statut, acteurs, contacts, listes… : des champs du catalogue",
    "Réponses ancrées : la fiche elle-même, citée, sans modèle (Dyag, hors guide)",
    "grounded",
    0,
    math.inf,
)
_SIMPLICITY = {a: i for i, a in enumerate(APPROACHES)}


def guide_row(catalog_size: int | None) -> int | None:
    if catalog_size is None:
        return None
    return next(i for i, row in enumerate(GUIDE_DECISION_ROWS) if row.low <= catalog_size < row.high)


# ---------------------------------------------------------------- significance


def mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    if n <= 1000:  # exact integers, one rounding
        tail: float = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    else:  # the same sum in log space (big test sets): lgamma keeps it fast
        log_half = n * math.log(2)
        tail = sum(
            math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - log_half)
            for k in range(min(b, c) + 1)
        )
    return min(1.0, 2 * tail)


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    if not n1 or not n2:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if x1 / n1 == x2 / n2 else 0.0
    return math.erfc(abs(x1 / n1 - x2 / n2) / se / math.sqrt(2))


@dataclass(frozen=True, slots=True)
class Significance:
    delta: float  # accuracy of b - accuracy of a
    p_value: float
    test: str  # mcnemar | two-proportion
    significant: bool  # p < ALPHA
    ci_low: float  # the 95 % (Wald) confidence interval of delta
    ci_high: float

    @property
    def tied(self) -> bool:
        """Indistinguishable: not significant, and the confidence interval of the gap holds 0."""
        return not self.significant and self.ci_low <= 0 <= self.ci_high


def paired_gap(right_a: Mapping[str, bool], right_b: Mapping[str, bool]) -> Significance:
    """The accuracy gap b - a on the same questions (question id -> answered right in each run): McNemar's exact
    test on the questions one gets right and the other wrong, and the 95 % Wald interval of a paired difference."""
    if right_a.keys() != right_b.keys() or not right_a:
        raise EvaluationError("no_runs", "a paired comparison needs the same questions, at least one, in both runs")
    n = len(right_a)
    delta = sum(map(bool, right_b.values())) / n - sum(map(bool, right_a.values())) / n
    only_a = sum(bool(right_a[k]) and not right_b[k] for k in right_a)
    only_b = sum(bool(right_b[k]) and not right_a[k] for k in right_a)
    p = mcnemar_p(only_a, only_b)
    se = math.sqrt(max(0.0, only_a + only_b - (only_b - only_a) ** 2 / n)) / n
    return Significance(delta, p, "mcnemar", p < ALPHA, delta - Z95 * se, delta + Z95 * se)


def accuracy_gap(a: EvaluationRun, b: EvaluationRun) -> Significance:
    right_a = {r.case.id: r.correct for r in a.results}
    right_b = {r.case.id: r.correct for r in b.results}
    if a.test_set_fingerprint == b.test_set_fingerprint and right_a.keys() == right_b.keys() and right_a:
        return paired_gap(right_a, right_b)
    delta = b.accuracy - a.accuracy
    n1, n2 = a.overall.n, b.overall.n
    p = two_proportion_p(a.overall.correct, n1, b.overall.correct, n2)
    pa, pb = a.accuracy, b.accuracy
    se = math.sqrt((pa * (1 - pa) / n1 if n1 else 0.0) + (pb * (1 - pb) / n2 if n2 else 0.0))
    return Significance(delta, p, "two-proportion", p < ALPHA, delta - Z95 * se, delta + Z95 * se)


def gap_text(sig: Significance) -> str:
    verdict = "significatif" if sig.significant else "non significatif"
    return (
        f"{points(sig.delta)} (IC 95 % [{sig.ci_low * 100:+.1f} ; "
        f"{sig.ci_high * 100:+.1f}] pts, {verdict}, p = {sig.p_value:.3g}, test {sig.test})"
    )


# ---------------------------------------------------------------- the comparison


@dataclass(frozen=True, slots=True)
class MetricRow:
    key: str
    label: str
    values: tuple[float | None, ...]
    deltas: tuple[float | None, ...]  # against the baseline; None for the baseline itself


@dataclass(frozen=True, slots=True)
class ApproachRow:
    approach: str
    label: str
    run: int  # index in Comparison.runs
    target: str
    questions: int
    accuracy: float
    fact_accuracy: float | None
    hallucination_rate: float | None
    abstention_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cost_per_1000_usd: float | None
    training_cost_usd: float | None


@dataclass(frozen=True, slots=True)
class Comparison:
    runs: tuple[EvaluationRun, ...]
    baseline: int
    catalog_size: int | None
    same_test_set: bool
    table: tuple[MetricRow, ...]  # the guide's 6.2 metrics, then the evaluation's own
    latency_ms: tuple[float | None, ...]  # average_generation_time_ms per run
    latency_improvement: tuple[float | None, ...]  # the guide's (baseline - run) / baseline
    significance: tuple[Significance | None, ...]  # accuracy gap of each run against the baseline
    approaches: tuple[ApproachRow, ...]
    guide_row: int | None
    recommended: str | None  # an approach: the best measured one, even when it falls short (see success_shortfalls)
    recommendation: str
    warnings: tuple[str, ...]
    success_shortfalls: tuple[str, ...] = ()  # what the recommended approach misses of the guide's success criteria

    def approach(self, name: str) -> ApproachRow | None:
        return next((a for a in self.approaches if a.approach == name), None)

    def decision_table(self) -> list[dict[str, Any]]:
        """The guide's 7.2 rows, each with the measured figures of the approach it recommends, then grounded answering
        (not the guide's: it lists its figures when a grounded target, or RAG's auto mode, was measured)."""
        rows = []
        for i, row in enumerate((*GUIDE_DECISION_ROWS, GROUNDED_ROW)):
            measured = self.approach(row.approach)
            rows.append(
                {
                    "situation": row.situation,
                    "details": row.details,
                    "guide_advice": row.advice,
                    "approach": row.approach,
                    "this_catalog": i == self.guide_row,
                    "measured": asdict(measured) if measured else None,
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": [r.target.to_dict() for r in self.runs],
            "baseline": self.baseline,
            "catalog_size": self.catalog_size,
            "same_test_set": self.same_test_set,
            "table": [asdict(m) for m in self.table],
            "average_generation_time_ms": list(self.latency_ms),
            "latency_improvement": list(self.latency_improvement),
            "accuracy_significance": [asdict(s) | {"tied": s.tied} if s else None for s in self.significance],
            "approaches": [asdict(a) for a in self.approaches],
            "decision_table": self.decision_table(),
            "recommended": self.recommended,
            "recommendation": self.recommendation,
            "meets_success_criteria": self.recommended is not None and not self.success_shortfalls,
            "success_shortfalls": list(self.success_shortfalls),
            "warnings": list(self.warnings),
        }


def _metric(run: EvaluationRun, key: str) -> float | None:
    value = getattr(run.overall, key, None)
    return None if value is None else float(value)


def compare_runs(runs: Sequence[EvaluationRun], *, baseline: int = 0, catalog_size: int | None = None) -> Comparison:
    """Side by side; the catalog size defaults to the runs' (it picks the guide's 7.2 row)."""
    runs = tuple(runs)
    if not runs:
        raise EvaluationError("no_runs", "nothing to compare: give at least one evaluation result")
    if not 0 <= baseline < len(runs):
        raise EvaluationError("no_runs", f"baseline {baseline} is not one of the {len(runs)} runs")
    base = runs[baseline]
    warnings: list[str] = []
    same = len({r.test_set_fingerprint for r in runs}) == 1
    if not same:
        warnings.append(
            "les cibles n'ont pas été évaluées sur le même jeu de test : les écarts ne sont pas directement comparables"
        )
    sizes = {r.catalog_size for r in runs if r.catalog_size is not None}
    if catalog_size is None and sizes:
        catalog_size = max(sizes)
        if len(sizes) > 1:
            warnings.append(
                f"catalogues de tailles différentes ({', '.join(map(str, sorted(sizes)))}) : le plus grand est retenu"
            )
    table = []
    for key, label in GUIDE_METRICS + EXTRA_METRICS:
        values = tuple(_metric(r, key) for r in runs)
        b = values[baseline]
        table.append(
            MetricRow(
                key,
                label,
                values,
                tuple(None if i == baseline or v is None or b is None else v - b for i, v in enumerate(values)),
            )
        )
    latency = tuple(r.latency.mean for r in runs)
    b_ms = latency[baseline]
    improvement = tuple(
        None if i == baseline or not b_ms or v is None else (b_ms - v) / b_ms for i, v in enumerate(latency)
    )
    significance = tuple(None if i == baseline else accuracy_gap(base, r) for i, r in enumerate(runs))
    approaches = _approach_rows(runs)
    row = guide_row(catalog_size)
    recommended, sentence = _recommend(runs, approaches, catalog_size, row)
    chosen = next((a for a in approaches if a.approach == recommended), None)
    shortfalls = success_shortfalls(chosen) if chosen else ()
    if shortfalls:
        sentence = _not_good_enough(chosen, shortfalls, {a.approach for a in approaches}) + " " + sentence
    return Comparison(
        runs,
        baseline,
        catalog_size,
        same,
        tuple(table),
        latency,
        improvement,
        significance,
        approaches,
        row,
        recommended,
        sentence,
        tuple(warnings),
        shortfalls,
    )


def success_shortfalls(row: ApproachRow) -> tuple[str, ...]:
    """What an approach misses of the guide's success criteria (accuracy > 85 %, p50 < 2 s, no hallucination)."""
    missed = []
    if row.accuracy <= SUCCESS_ACCURACY:
        missed.append(f"exactitude {pct(row.accuracy)} (objectif > {SUCCESS_ACCURACY * 100:.0f} %)")
    if row.latency_p50_ms is None or row.latency_p50_ms >= SUCCESS_P50_MS:
        missed.append(f"latence p50 {ms(row.latency_p50_ms)} (objectif < {SUCCESS_P50_MS / 1000:.0f} s)")
    if row.hallucination_rate is None or row.hallucination_rate > SUCCESS_HALLUCINATION:
        missed.append(f"hallucinations {pct(row.hallucination_rate)} (objectif ≈ 0)")
    return tuple(missed)


def _not_good_enough(row: ApproachRow, shortfalls: Sequence[str], measured: set[str]) -> str:
    """The warning that comes first when even the best approach is not good enough, with the next step."""
    if row.accuracy <= SUCCESS_ACCURACY and not measured & {"rag", "grounded"}:
        step = (
            "évaluez RAG en mode auto (réponses depuis les fiches du catalogue, le modèle seulement en dernier recours)"
        )
    elif row.accuracy <= SUCCESS_ACCURACY:
        step = (
            "regardez les questions manquées par type dans le rapport "
            "et donnez au RAG un modèle plus capable (--rag-llm)"
        )
    elif row.hallucination_rate is None or row.hallucination_rate > SUCCESS_HALLUCINATION:
        step = "examinez les hallucinations du rapport avant tout déploiement"
    else:
        step = "servez-la sur une machine plus rapide (GPU) ou avec un modèle plus petit"
    return (
        f"⚠ Aucune approche mesurée ne remplit les critères de réussite du guide : la meilleure, {row.label}, manque "
        f"{' ; '.join(shortfalls)}. Étape suivante : {step}."
    )


def _approach_rows(runs: Sequence[EvaluationRun]) -> tuple[ApproachRow, ...]:
    best: dict[str, int] = {}
    for i, run in enumerate(runs):
        a = run.target.approach
        if a not in best or run.accuracy > runs[best[a]].accuracy:
            best[a] = i
    rows = []
    for a in sorted(best, key=lambda x: _SIMPLICITY.get(x, len(_SIMPLICITY))):
        r = runs[best[a]]
        rows.append(
            ApproachRow(
                a,
                approach_label(a),
                best[a],
                r.target.name,
                r.overall.n,
                r.accuracy,
                r.overall.fact_accuracy,
                r.overall.hallucination_rate,
                r.overall.abstention_rate,
                r.latency.p50,
                r.latency.p95,
                r.usage.cost_per_1000_questions_usd,
                r.target.training_cost_usd,
            )
        )
    return tuple(rows)


# Among approaches whose accuracies do not differ significantly: the cheaper wins, then the faster, unless the p50
# latencies are within this share of each other (noise, on a few dozen questions), where the simpler one wins.
LATENCY_TOLERANCE = 0.10


def _cost(row: ApproachRow) -> float:
    return math.inf if row.cost_per_1000_usd is None else row.cost_per_1000_usd


def _latency(row: ApproachRow) -> float:
    return math.inf if row.latency_p50_ms is None else row.latency_p50_ms


def _clearly_faster(a: ApproachRow, b: ApproachRow) -> bool:
    return _latency(a) * (1 + LATENCY_TOLERANCE) < _latency(b)


def _pick(tied: Sequence[ApproachRow]) -> ApproachRow:
    cheapest = min(_cost(r) for r in tied)
    pool = [r for r in tied if _cost(r) == cheapest]
    fastest = min(pool, key=_latency)
    pool = [r for r in pool if not _clearly_faster(fastest, r)]
    return min(pool, key=lambda r: (_SIMPLICITY.get(r.approach, len(_SIMPLICITY)), _latency(r)))


def _why_tie(chosen: ApproachRow, other: ApproachRow) -> str:
    """Why `chosen` wins a tie against `other` (_pick's order)."""
    if _cost(chosen) < _cost(other):
        return (
            f"moins coûteuse ({usd(chosen.cost_per_1000_usd)} contre "
            f"{usd(other.cost_per_1000_usd)} pour 1000 questions)"
        )
    if _clearly_faster(chosen, other):
        return f"plus rapide (latence p50 {ms(chosen.latency_p50_ms)} contre {ms(other.latency_p50_ms)})"
    if chosen.latency_p50_ms is not None and other.latency_p50_ms is not None:
        return (
            f"plus simple à exploiter, à coût égal et latence comparable (p50 {ms(chosen.latency_p50_ms)} contre "
            f"{ms(other.latency_p50_ms)}, moins de {LATENCY_TOLERANCE:.0%} d'écart)"
        )
    return "plus simple à exploiter, à coût et latence égaux"


def _recommend(
    runs: Sequence[EvaluationRun], rows: Sequence[ApproachRow], catalog_size: int | None, row: int | None
) -> tuple[str | None, str]:
    if len(rows) == 1:
        only = rows[0]
        return only.approach, (
            f"Seule l'approche « {only.label} » a été mesurée ({pct(only.accuracy)} d'exactitude "
            f"sur {only.questions} questions, latence p50 {ms(only.latency_p50_ms)}) : évaluez "
            "au moins une autre approche sur le même jeu de test pour pouvoir choisir."
        )
    best = max(rows, key=lambda r: (r.accuracy, -_SIMPLICITY.get(r.approach, 9)))
    gaps = {r.approach: accuracy_gap(runs[best.run], runs[r.run]) for r in rows if r is not best}
    tied = [best] + [r for r in rows if r is not best and gaps[r.approach].tied]
    chosen = _pick(tied)
    parts = [
        f"Recommandation : {chosen.label} (cible « {chosen.target} ») — "
        f"{pct(chosen.accuracy)} d'exactitude sur {chosen.questions} questions"
    ]
    parts[0] += f", latence p50 {ms(chosen.latency_p50_ms)}, coût {usd(chosen.cost_per_1000_usd)} pour 1000 questions"
    parts[0] += f", hallucinations {pct(chosen.hallucination_rate)}."
    worse = [r for r in rows if r is not best and gaps[r.approach].significant]
    unsure = [r for r in rows if r is not best and not gaps[r.approach].significant and not gaps[r.approach].tied]
    if chosen is best and worse:
        listed = ", ".join(f"{r.label} {pct(r.accuracy)} (p = {gaps[r.approach].p_value:.3g})" for r in worse)
        parts.append(f"Elle est significativement plus exacte que {listed}.")
    if chosen is best and unsure:
        listed = ", ".join(f"{r.label} {pct(r.accuracy)} (p = {gaps[r.approach].p_value:.3g})" for r in unsure)
        parts.append(
            f"Elle devance nettement {listed}, mais le jeu de test est trop petit "
            "pour que l'écart soit significatif : confirmez sur plus de questions."
        )
    if chosen is not best:
        p = gaps[chosen.approach].p_value
        parts.append(
            f"{best.label} obtient {pct(best.accuracy)}, un écart de "
            f"{points(best.accuracy - chosen.accuracy).lstrip('+')} non significatif "
            f"(p = {p:.3g}) : à exactitude équivalente, {chosen.label} est {_why_tie(chosen, best)}."
        )
    else:
        for other in (r for r in tied if r is not chosen):
            parts.append(
                f"{other.label} ({pct(other.accuracy)}) n'est pas significativement moins exacte "
                f"(p = {gaps[other.approach].p_value:.3g}) mais {chosen.label} est {_why_tie(chosen, other)}."
            )
    if row is not None and catalog_size is not None:
        guide = GUIDE_DECISION_ROWS[row]
        verdict = (
            "les mesures vont dans le même sens"
            if guide.approach == chosen.approach
            else (
                "cette approche n'a pas été mesurée ici"
                if not any(r.approach == guide.approach for r in rows)
                else f"les mesures désignent plutôt {chosen.label}"
            )
        )
        parts.append(
            f"Pour ce catalogue de {catalog_size} applications, le tableau "
            f"7.2 du guide conseille « {guide.advice} » : {verdict}."
        )
    return chosen.approach, " ".join(parts)


# ---------------------------------------------------------------- Markdown


def approach_figures(a: ApproachRow) -> list[str]:
    """An approach's measured figures, as both reports show them (plain text)."""
    return [
        pct(a.accuracy),
        pct(a.fact_accuracy),
        pct(a.hallucination_rate),
        pct(a.abstention_rate),
        ms(a.latency_p50_ms),
        ms(a.latency_p95_ms),
        usd(a.cost_per_1000_usd),
        usd(a.training_cost_usd),
    ]


def comparison_markdown(c: Comparison) -> str:
    names = [r.target.name for r in c.runs]
    others = [i for i in range(len(c.runs)) if i != c.baseline]
    lines = ["## Comparaison (étape 6.2 du guide)", ""]
    lines.append(f"Référence (baseline) : **{names[c.baseline]}**. Écarts en points de pourcentage.")
    lines += [f"> ⚠️ {w}" for w in c.warnings]
    lines.append("")
    head = ["Métrique", *names, *[f"Δ {names[i]}" for i in others]]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in c.table:
        lines.append(
            "| " + " | ".join([m.label, *[pct(v) for v in m.values], *[points(m.deltas[i]) for i in others]]) + " |"
        )
    base_ms = c.latency_ms[c.baseline]
    latency_deltas = [None if v is None or base_ms is None else v - base_ms for v in (c.latency_ms[i] for i in others)]
    lines.append(
        "| "
        + " | ".join(["Latence moyenne", *[ms(v) for v in c.latency_ms], *[ms_delta(d) for d in latency_deltas]])
        + " |"
    )
    lines.append("")
    for i in others:
        imp = c.latency_improvement[i]
        sig = c.significance[i]
        text = f"- {names[i]} : amélioration de latence {'n/d' if imp is None else f'{imp * 100:+.1f} %'}"
        if sig:
            text += f" ; écart d'exactitude {gap_text(sig)}"
        lines.append(text)
    lines += ["", "## RAG vs fine-tuning vs hybride", ""]
    head = [
        "Approche",
        "Cible",
        "Exactitude",
        "Faits clés",
        "Hallucinations",
        "Abstention",
        "Latence p50",
        "Latence p95",
        "Coût / 1000 questions",
        "Coût d'entraînement",
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for a in c.approaches:
        lines.append("| " + " | ".join([a.label, a.target, *approach_figures(a)]) + " |")
    lines += ["", "## Tableau de décision (étape 7.2 du guide), chiffres mesurés", ""]
    size = f"{c.catalog_size} applications" if c.catalog_size is not None else "taille inconnue"
    lines.append(
        f"Catalogue évalué : **{size}**. Les situations et conseils sont "
        "ceux du guide ; les chiffres sont mesurés sur ce jeu de test."
    )
    lines.append("")
    head = [
        "Situation (guide)",
        "Conseil du guide",
        "Exactitude mesurée",
        "Latence p50 / p95",
        "Coût / 1000 questions",
        "Ce catalogue",
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in c.decision_table():
        m = row["measured"]
        figures = (
            [pct(m["accuracy"]), f"{ms(m['latency_p50_ms'])} / {ms(m['latency_p95_ms'])}", usd(m["cost_per_1000_usd"])]
            if m
            else ["non mesuré"] * 3
        )
        lines.append(
            "| "
            + " | ".join(
                [
                    f"{row['situation']} ({row['details']})",
                    row["guide_advice"],
                    *figures,
                    "◀" if row["this_catalog"] else "",
                ]
            )
            + " |"
        )
    lines += ["", f"**{c.recommendation}**", ""]
    return "\n".join(lines)
