"""Evaluation (the guide's steps 6 and 7): score a target's answers to a test set against the dataset's
gold facts and the catalog, aggregate, compare runs, and write JSON, Markdown and HTML reports.

Pure: no model is loaded here (semantic similarity takes an injected `embed(texts) -> vectors`), no
network, no framework. The service runs the targets and hands their Responses to evaluate().

    cases = read_test_set("training/test.jsonl").cases
    run = evaluate(cases, responses, target=Target("rag", "rag", "ollama:qwen2.5"), catalog=catalog,
                   embed=embedder, prices={"ollama:*": 0})
    json_text = run.to_json()  # accuracy, precision, recall, f1_score, average_generation_time_ms, errors…
    page = render_html([base_run, ft_run, rag_run])  # charts, 6.2 table with deltas, 7.2 decision table
    report = gate(champion.results, challenger.results, changed_ids, Thresholds(min_absolute=0.05))  # promote?
"""

from dyag_core.evaluation.aggregate import (
    GroupMetrics,
    LatencyStats,
    PriceTable,
    TokenPrice,
    UsageStats,
    group_metrics,
    percentile,
    price_for,
)
from dyag_core.evaluation.compare import (
    ALPHA,
    GUIDE_DECISION_ROWS,
    ApproachRow,
    Comparison,
    GuideRow,
    MetricRow,
    Significance,
    accuracy_gap,
    compare_runs,
    comparison_markdown,
    guide_row,
    mcnemar_p,
    paired_gap,
)
from dyag_core.evaluation.errors import EvaluationError
from dyag_core.evaluation.gate import GateReport, SubsetComparison, Thresholds, gate
from dyag_core.evaluation.hallucination import ALL_RULES, CatalogIndex, detect
from dyag_core.evaluation.html_report import CHART_IDS, render_html
from dyag_core.evaluation.metrics import abstains, exact_match, fact_recall, match_fact, token_prf
from dyag_core.evaluation.model import (
    APPROACHES,
    Embedder,
    EvalCase,
    Hallucination,
    QuestionResult,
    Response,
    ScoringConfig,
    Target,
)
from dyag_core.evaluation.normalize import TextView, normalize_url, view
from dyag_core.evaluation.report import render_markdown, run_markdown
from dyag_core.evaluation.results import GUIDE_FIELDS, RESULTS_FORMAT, EvaluationRun, fingerprint, load_run
from dyag_core.evaluation.scoring import evaluate, score_answer
from dyag_core.evaluation.testset import TEST_SET_FORMATS, EvalSet, cases_from_examples, read_test_set

__all__ = [
    "ALL_RULES",
    "ALPHA",
    "APPROACHES",
    "CHART_IDS",
    "GUIDE_DECISION_ROWS",
    "GUIDE_FIELDS",
    "RESULTS_FORMAT",
    "TEST_SET_FORMATS",
    "ApproachRow",
    "CatalogIndex",
    "Comparison",
    "Embedder",
    "EvalCase",
    "EvalSet",
    "EvaluationError",
    "EvaluationRun",
    "GateReport",
    "GroupMetrics",
    "GuideRow",
    "Hallucination",
    "LatencyStats",
    "MetricRow",
    "PriceTable",
    "QuestionResult",
    "Response",
    "ScoringConfig",
    "Significance",
    "SubsetComparison",
    "Target",
    "TextView",
    "Thresholds",
    "TokenPrice",
    "UsageStats",
    "abstains",
    "accuracy_gap",
    "cases_from_examples",
    "compare_runs",
    "comparison_markdown",
    "detect",
    "evaluate",
    "exact_match",
    "fact_recall",
    "fingerprint",
    "gate",
    "group_metrics",
    "guide_row",
    "load_run",
    "match_fact",
    "mcnemar_p",
    "normalize_url",
    "paired_gap",
    "percentile",
    "price_for",
    "read_test_set",
    "render_html",
    "render_markdown",
    "run_markdown",
    "score_answer",
    "token_prf",
    "view",
]
