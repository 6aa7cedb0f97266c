"""The HTML report: one self-contained page (inline CSS and SVG, no external asset, no CDN).

A Content-Security-Policy of default-src 'none' forbids the page itself from loading anything, and a
small inline script records, once loaded, how many charts hold drawn shapes and how many resources the
page fetched or failed to fetch (as data-* attributes on <html>), so a headless browser can check it.

Charts: accuracy per question type per target, the latency distribution, the hallucination rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from dyag_core.dataset.model import QUESTION_TYPES
from dyag_core.evaluation.charts import grouped_bars, histogram, horizontal_bars
from dyag_core.evaluation.compare import Comparison, approach_figures, compare_runs, gap_text
from dyag_core.evaluation.formatting import approach_label, ms, ms_delta, pct, points, score, type_label, usd
from dyag_core.evaluation.hallucination import __doc__ as HALLUCINATION_RULES
from dyag_core.evaluation.results import DEFINITIONS, EvaluationRun
from dyag_core.evaluation.scoring import __doc__ as CORRECTNESS_RULE

CHART_IDS = ("chart-accuracy-by-type", "chart-latency", "chart-hallucination")
ERRORS_SHOWN = 30
ENTITIES_SHOWN = 60
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

_CSS = (
    """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#111827;background:#f9fafb}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:0 0 4px}"""
    """h2{font-size:1.25rem;margin:32px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
h3{font-size:1.05rem;margin:20px 0 6px}
.meta{color:#4b5563;margin:0 0 16px}
.scroll{overflow-x:auto;margin:8px 0}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.82rem}
th,td{border:1px solid #e5e7eb;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.num{text-align:right;white-space:nowrap}
tr.here td{background:#eff6ff;font-weight:600}
figure{background:#fff;border:1px solid #e5e7eb;border-radius:8px;margin:12px 0;padding:8px 12px}
figcaption{color:#374151;font-size:.9rem;margin-top:4px}
.reco{background:#ecfdf5;border-left:4px solid #16a34a;padding:10px 14px;margin:12px 0}
.warn{background:#fffbeb;border-left:4px solid #d97706;padding:8px 12px;margin:8px 0}
.pos{color:#15803d}.neg{color:#b91c1c}
details{background:#fff;border:1px solid #e5e7eb;border-radius:6px;margin:8px 0;padding:6px 10px}
summary{cursor:pointer;font-weight:600}
pre{white-space:pre-wrap;font-size:.8rem;background:#fff;border:1px solid #e5e7eb;padding:10px}
.err dt{font-weight:600;margin-top:10px}.err dd{margin:2px 0 0 16px}
"""
)

_SELF_CHECK = (
    """
(function(){
  var failed=0, root=document.documentElement;
  window.addEventListener('error',function(e){if(e.target&&e.target!==window){failed++;root.setAttribute('data-resource-errors',String(failed));}},true);
  document.addEventListener('securitypolicyviolation',function(){failed++;root.setAttribute('data-resource-errors',String(failed));});
  window.addEventListener('load',function(){
    var drawn=0;
    document.querySelectorAll('figure[data-chart] svg')"""
    """.forEach(function(s){if(s.querySelector('rect,line,path,circle'))drawn++;});
    var fetched=(performance.getEntriesByType&&performance.getEntriesByType('resource'))||[];
    root.setAttribute('data-charts-drawn',String(drawn));
    root.setAttribute('data-resources-loaded',String(fetched.length));
    root.setAttribute('data-resource-errors',String(failed));
    root.setAttribute('data-self-check','done');
  });
})();
"""
)


def _e(value: object) -> str:
    return escape(str(value))


def _table(
    head: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1, classes: Sequence[str] | None = None
) -> str:
    out = ['<div class="scroll"><table><thead><tr>', *[f"<th>{_e(h)}</th>" for h in head], "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        cells = [f'<td class="num">{c}</td>' if j >= numeric_from else f"<td>{c}</td>" for j, c in enumerate(row)]
        out.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _signed(text: str, value: float | None, higher_is_better: bool = True) -> str:
    if value is None or value == 0:
        return _e(text)
    good = (value > 0) == higher_is_better
    return f'<span class="{"pos" if good else "neg"}">{_e(text)}</span>'


def _figure(chart_id: str, caption: str, svg: str) -> str:
    return f'<figure id="{chart_id}" data-chart="{chart_id}">{svg}<figcaption>{_e(caption)}</figcaption></figure>'


def _charts(runs: Sequence[EvaluationRun]) -> str:
    names = [r.target.name for r in runs]
    types = [t for t in QUESTION_TYPES if any(t in r.by_type for r in runs)]
    types += sorted({t for r in runs for t in r.by_type} - set(types))
    accuracy = grouped_bars(
        CHART_IDS[0],
        "Exactitude par type de question et par cible",
        [type_label(t) for t in types],
        [
            (n, [r.by_type[t].accuracy if t in r.by_type else None for t in types])
            for n, r in zip(names, runs, strict=True)
        ],
    )
    latency = histogram(
        CHART_IDS[1],
        "Distribution des latences",
        [
            (
                n,
                [float(q.latency_ms) for q in r.results if not q.failed and q.latency_ms is not None],
                r.latency.p50,
                r.latency.p95,
            )
            for n, r in zip(names, runs, strict=True)
        ],
    )
    hallucination = horizontal_bars(
        CHART_IDS[2],
        "Taux d'hallucination par cible",
        [
            (n, r.overall.hallucination_rate, f"({r.overall.hallucinated}/{r.overall.n - r.overall.failed} réponses)")
            for n, r in zip(names, runs, strict=True)
        ],
    )
    return "".join(
        [
            _figure(
                CHART_IDS[0],
                "Exactitude (réponse correcte selon la règle de correction) par "
                "type de question ; un tiret : type absent pour cette cible.",
                accuracy,
            ),
            _figure(
                CHART_IDS[1],
                "Part des appels réussis par tranche de latence ; les tirets marquent p50 et p95 de chaque cible.",
                latency,
            ),
            _figure(
                CHART_IDS[2],
                "Réponses qui affirment une valeur contraire au catalogue (statut, URL, "
                "application, date, nombre…) ou qui inventent au lieu de s'abstenir.",
                hallucination,
            ),
        ]
    )


def _summary(runs: Sequence[EvaluationRun]) -> str:
    similarity = any(r.has_similarity for r in runs)
    head = [
        "Cible",
        "Approche",
        "Exactitude",
        "Précision",
        "Rappel",
        "F1",
        "Faits clés",
        *(["Similarité"] if similarity else []),
        "Hallucinations",
        "Abstention",
        "Échecs",
        "Latence moy.",
        "p50 / p95",
        "Coût / 1000 q.",
    ]
    rows = []
    for r in runs:
        o = r.overall
        sim = [score(o.similarity) if r.has_similarity else "non mesurée"] if similarity else []
        rows.append(
            [
                f"<strong>{_e(r.target.name)}</strong><br><small>{_e(r.target.model)}</small>",
                _e(approach_label(r.target.approach)),
                f"{pct(o.accuracy)}<br><small>{o.correct}/{o.n}</small>",
                pct(o.precision),
                pct(o.recall),
                pct(o.f1_score),
                pct(o.fact_accuracy),
                *sim,
                pct(o.hallucination_rate),
                pct(o.abstention_rate),
                str(o.failed),
                ms(r.latency.mean),
                f"{ms(r.latency.p50)}<br>{ms(r.latency.p95)}",
                usd(r.usage.cost_per_1000_questions_usd),
            ]
        )
    judged = [r for r in runs if r.overall.judge_score is not None]
    extra = "".join(f"<p>Score du juge LLM — {_e(r.target.name)} : {score(r.overall.judge_score)}</p>" for r in judged)
    note = (
        ""
        if similarity
        else "<p><small>Similarité sémantique non mesurée (aucun modèle d'embedding fourni).</small></p>"
    )
    return _table(head, rows, numeric_from=2) + extra + note


def _comparison(c: Comparison) -> str:
    names = [r.target.name for r in c.runs]
    others = [i for i in range(len(c.runs)) if i != c.baseline]
    out = [f"<p>Référence (baseline) : <strong>{_e(names[c.baseline])}</strong>. Écarts en points de pourcentage.</p>"]
    out += [f'<p class="warn">{_e(w)}</p>' for w in c.warnings]
    head = ["Métrique", *names, *[f"Δ {names[i]}" for i in others]]
    rows = []
    for m in c.table:
        better = m.key != "hallucination_rate"
        rows.append(
            [
                _e(m.label),
                *[pct(v) for v in m.values],
                *[_signed(points(m.deltas[i]), m.deltas[i], better) for i in others],
            ]
        )
    base_ms = c.latency_ms[c.baseline]
    deltas = [None if v is None or base_ms is None else v - base_ms for v in (c.latency_ms[i] for i in others)]
    rows.append(["Latence moyenne", *[ms(v) for v in c.latency_ms], *[_signed(ms_delta(d), d, False) for d in deltas]])
    out.append(_table(head, rows))
    items = []
    for i in others:
        sig, imp = c.significance[i], c.latency_improvement[i]
        text = f"{_e(names[i])} : amélioration de latence {'n/d' if imp is None else f'{imp * 100:+.1f} %'}"
        if sig:
            text += f" ; écart d'exactitude {_e(gap_text(sig))}"
        items.append(f"<li>{text}</li>")
    out.append(f"<ul>{''.join(items)}</ul>")
    out.append("<h3>RAG vs fine-tuning vs hybride</h3>")
    head = [
        "Approche",
        "Cible",
        "Exactitude",
        "Faits clés",
        "Hallucinations",
        "Abstention",
        "Latence p50",
        "Latence p95",
        "Coût / 1000 q.",
        "Coût d'entraînement",
    ]
    rows = [[_e(a.label), _e(a.target), *approach_figures(a)] for a in c.approaches]
    out.append(_table(head, rows, numeric_from=2))
    size = f"{c.catalog_size} applications" if c.catalog_size is not None else "taille inconnue"
    out.append("<h3>Tableau de décision (étape 7.2 du guide), chiffres mesurés</h3>")
    out.append(
        f"<p>Catalogue évalué : <strong>{_e(size)}</strong>. Situations et "
        "conseils : ceux du guide. Chiffres : mesurés sur ce jeu de test.</p>"
    )
    head = [
        "Situation (guide)",
        "Conseil du guide",
        "Exactitude mesurée",
        "Latence p50 / p95",
        "Coût / 1000 q.",
        "Ce catalogue",
    ]
    rows, classes = [], []
    for row in c.decision_table():
        m = row["measured"]
        figures = (
            [pct(m["accuracy"]), f"{ms(m['latency_p50_ms'])} / {ms(m['latency_p95_ms'])}", usd(m["cost_per_1000_usd"])]
            if m
            else ["non mesuré"] * 3
        )
        rows.append(
            [
                f"{_e(row['situation'])}<br><small>{_e(row['details'])}</small>",
                _e(row["guide_advice"]),
                *figures,
                "◀ ici" if row["this_catalog"] else "",
            ]
        )
        classes.append("here" if row["this_catalog"] else "")
    out.append(_table(head, rows, numeric_from=2, classes=classes))
    out.append(f'<p class="reco" id="recommendation">{_e(c.recommendation)}</p>')
    return "".join(out)


def _by_type(runs: Sequence[EvaluationRun]) -> str:
    types = [t for t in QUESTION_TYPES if any(t in r.by_type for r in runs)]
    types += sorted({t for r in runs for t in r.by_type} - set(types))
    head = ["Type", *[f"{r.target.name} (n)" for r in runs]]
    rows = [
        [
            _e(type_label(t)),
            *[f"{pct(r.by_type[t].accuracy)} ({r.by_type[t].n})" if t in r.by_type else "—" for r in runs],
        ]
        for t in types
    ]
    return _table(head, rows)


def _by_entity(runs: Sequence[EvaluationRun]) -> str:
    ids = list(dict.fromkeys(k for r in runs for k in r.by_entity))
    if not ids:
        return "<p>Aucune application rattachée aux questions (pas de provenance).</p>"
    names = {k: v for r in runs for k, v in r.entity_names.items()}

    def mean_accuracy(k: str) -> float:
        values = [r.by_entity[k].accuracy for r in runs if k in r.by_entity]
        return sum(values) / len(values)

    ids.sort(key=lambda k: (mean_accuracy(k), names.get(k, k)))
    shown = ids[:ENTITIES_SHOWN]
    head = ["Application", *[r.target.name for r in runs]]
    rows = [
        [
            _e(names.get(k, k)),
            *[f"{pct(r.by_entity[k].accuracy)} ({r.by_entity[k].n})" if k in r.by_entity else "—" for r in runs],
        ]
        for k in shown
    ]
    note = (
        f"<p>Les {len(shown)} applications les moins bien servies sur {len(ids)}.</p>" if len(ids) > len(shown) else ""
    )
    return note + _table(head, rows)


def _errors(runs: Sequence[EvaluationRun]) -> str:
    out = []
    for r in runs:
        errors = r.errors
        items = []
        for err in errors[:ERRORS_SHOWN]:
            items.append(
                f"<dt>{_e(err['question'])} <small>({_e(type_label(err['type']))})</small></dt>"
                f"<dd><strong>Attendu :</strong> {_e(err['expected'])}</dd><dd>"
                f"<strong>Obtenu :</strong> {_e(err['got']) or '<em>(vide)</em>'}</dd>"
                f"<dd><strong>Raison :</strong> {_e(err['reason'] or 'N/A')}</dd>"
            )
        more = f"<p>… et {len(errors) - ERRORS_SHOWN} autres dans le JSON.</p>" if len(errors) > ERRORS_SHOWN else ""
        out.append(
            f"<details><summary>{_e(r.target.name)} : {len(errors)} "
            f'erreur(s)</summary><dl class="err">{"".join(items)}</dl>{more}</details>'
        )
    return "".join(out)


def _definitions() -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in DEFINITIONS.items())
    return (
        f'<dl class="err">{items}</dl>'
        f"<details><summary>Règle de correction</summary><pre>{_e((CORRECTNESS_RULE or '').strip())}</pre></details>"
        "<details><summary>Règles de détection des hallucinations et leurs "
        f"limites</summary><pre>{_e((HALLUCINATION_RULES or '').strip())}</pre></details>"
    )


def render_html(
    runs: EvaluationRun | Sequence[EvaluationRun],
    comparison: Comparison | None = None,
    title: str = "Rapport d'évaluation Dyag",
) -> str:
    """The whole report as one HTML page that loads nothing from anywhere."""
    runs = [runs] if isinstance(runs, EvaluationRun) else list(runs)
    comparison = comparison or compare_runs(runs)
    runs = list(comparison.runs)
    first = runs[0]
    catalog = (
        f" · catalogue : {first.catalog_size} applications (version {_e(first.catalog_version)})"
        if first.catalog_size is not None
        else ""
    )
    meta = (
        f"Jeu de test : {_e(first.test_set or 'n/d')} — {first.overall.n} "
        f"questions (empreinte {_e(first.test_set_fingerprint)}){catalog}"
    )
    sections = [
        f'<h1>{_e(title)}</h1><p class="meta">{meta}</p>',
        f'<section id="summary"><h2>Résumé par cible</h2>{_summary(runs)}</section>',
        f'<section id="charts"><h2>Graphiques</h2>{_charts(runs)}</section>',
        '<section id="comparison"><h2>Comparaison (étape 6.2 du guide) '
        f"et décision (étape 7.2)</h2>{_comparison(comparison)}</section>",
        f'<section id="by-type"><h2>Exactitude par type de question</h2>{_by_type(runs)}</section>',
        f'<section id="by-entity"><h2>Exactitude par application</h2>{_by_entity(runs)}</section>',
        f'<section id="errors"><h2>Erreurs (étape 6.3 du guide)</h2>{_errors(runs)}</section>',
        f'<section id="definitions"><h2>Définitions</h2>{_definitions()}</section>',
    ]
    return (
        '<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style><script>{_SELF_CHECK}</script></head>"
        f"<body><main>{''.join(sections)}</main></body></html>\n"
    )
