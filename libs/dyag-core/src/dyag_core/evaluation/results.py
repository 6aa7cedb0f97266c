"""One target's scored run: its JSON (the guide's step 6.2 / 6.3 fields at the top, the details below) and back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dyag_core.evaluation.aggregate import GroupMetrics, LatencyStats, UsageStats
from dyag_core.evaluation.errors import EvaluationError
from dyag_core.evaluation.model import EvalCase, QuestionResult, ScoringConfig, Target

RESULTS_FORMAT = "dyag.evaluation/1"
GUIDE_FIELDS = ("accuracy", "precision", "recall", "f1_score", "average_generation_time_ms", "errors")
DEFINITIONS = {
    "accuracy": "questions correctes / questions ; correcte = appel réussi, réponse non vide, aucune hallucination, "
    "et : au moins 80 % des faits clés énoncés (questions avec faits), abstention (questions négatives), "
    "ou F1 ≥ 0,5 / similarité ≥ 0,85 (questions sans faits clés). Un appel en échec compte comme incorrect.",
    "precision": "précision au niveau des mots (style SQuAD, mots fold()és "
    "sans articles ni mots outils), moyenne sur les questions",
    "recall": "rappel au niveau des mots, même normalisation, moyenne sur les questions",
    "f1_score": "F1 au niveau des mots, même normalisation, moyenne sur les questions",
    "average_generation_time_ms": "latence moyenne des appels réussis (ms)",
    "fact_accuracy": "part moyenne des faits clés (provenance du jeu de données) énoncés par la réponse",
    "exact_match": "réponse identique à la réponse attendue après normalisation",
    "semantic_similarity": "cosinus des plongements de la réponse et de la "
    "réponse attendue (si un modèle d'embedding est fourni)",
    "hallucination_rate": "réponses affirmant une valeur contraire au catalogue / réponses obtenues",
    "abstention_rate": "questions négatives où la réponse s'abstient / questions négatives",
    "latency": "p50 et p95 par interpolation linéaire, sur les appels réussis",
    "cost": "tokens × table de prix fournie ; non estimé sans tarif",
}


def fingerprint(cases: Sequence[EvalCase]) -> str:
    """The same questions (ids and texts, any order) give the same fingerprint: runs are comparable."""
    payload = json.dumps(sorted((c.id, c.question) for c in cases), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class EvaluationRun:
    target: Target
    test_set: str
    test_set_fingerprint: str
    results: tuple[QuestionResult, ...]
    overall: GroupMetrics
    by_type: dict[str, GroupMetrics]
    by_entity: dict[str, GroupMetrics]
    entity_names: dict[str, str]
    latency: LatencyStats
    usage: UsageStats
    catalog_size: int | None = None
    catalog_version: str | None = None
    rules: tuple[str, ...] = ()  # the hallucination rules that ran
    config: ScoringConfig = field(default_factory=ScoringConfig)
    has_similarity: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    # the guide's fields
    @property
    def accuracy(self) -> float:
        return self.overall.accuracy

    @property
    def average_generation_time_ms(self) -> float | None:
        return self.latency.mean

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The guide's step 6.3 list: every incorrect question, {question, expected, got, reason} first."""
        return [
            {
                "question": r.case.question,
                "expected": r.case.expected_answer,
                "got": r.answer,
                "reason": r.reason,
                "reason_code": r.reason_code,
                "id": r.case.id,
                "type": r.case.qtype,
                "entity_ids": list(r.case.entity_ids),
            }
            for r in self.results
            if not r.correct
        ]

    def to_dict(self) -> dict[str, Any]:
        o = self.overall
        return {
            "accuracy": o.accuracy,
            "precision": o.precision,
            "recall": o.recall,
            "f1_score": o.f1_score,
            "average_generation_time_ms": self.latency.mean,
            "errors": self.errors,
            "format": RESULTS_FORMAT,
            "target": self.target.to_dict(),
            "test_set": {"name": self.test_set, "fingerprint": self.test_set_fingerprint, "questions": o.n},
            "questions": o.n,
            "correct": o.correct,
            "failed": o.failed,
            "exact_match": o.exact_match,
            "fact_accuracy": o.fact_accuracy,
            "semantic_similarity": o.similarity,
            "hallucination_rate": o.hallucination_rate,
            "abstention_rate": o.abstention_rate,
            "judge_score": o.judge_score,
            "latency_p50_ms": self.latency.p50,
            "latency_p95_ms": self.latency.p95,
            "cost_usd": self.usage.cost_usd,
            "summary": o.to_dict(),
            "latency_ms": self.latency.to_dict(),
            "usage": self.usage.to_dict(),
            "by_type": {k: v.to_dict() for k, v in self.by_type.items()},
            "by_entity": {k: v.to_dict() | {"name": self.entity_names.get(k, k)} for k, v in self.by_entity.items()},
            "catalog": {"size": self.catalog_size, "version": self.catalog_version}
            if self.catalog_size is not None
            else None,
            "hallucination_rules": list(self.rules),
            "scoring": self.config.to_dict(),
            "semantic_similarity_measured": self.has_similarity,
            "definitions": DEFINITIONS,
            "meta": self.meta,
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationRun:
        if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT or "results" not in data:
            raise EvaluationError(
                "bad_results", f'not a Dyag evaluation result (expected "format": "{RESULTS_FORMAT}" and its "results")'
            )
        try:
            catalog = data.get("catalog") or {}
            by_entity = data.get("by_entity") or {}
            return cls(
                target=Target.from_dict(data["target"]),
                test_set=str(data["test_set"].get("name", "")),
                test_set_fingerprint=str(data["test_set"].get("fingerprint", "")),
                results=tuple(QuestionResult.from_dict(r) for r in data["results"]),
                overall=GroupMetrics.from_dict(data["summary"]),
                by_type={k: GroupMetrics.from_dict(v) for k, v in data["by_type"].items()},
                by_entity={k: GroupMetrics.from_dict(v) for k, v in by_entity.items()},
                entity_names={k: str(v.get("name", k)) for k, v in by_entity.items()},
                latency=LatencyStats.from_dict(data["latency_ms"]),
                usage=UsageStats.from_dict(data["usage"]),
                catalog_size=catalog.get("size"),
                catalog_version=catalog.get("version"),
                rules=tuple(data.get("hallucination_rules") or ()),
                config=ScoringConfig.from_dict(data.get("scoring")),
                has_similarity=bool(data.get("semantic_similarity_measured", False)),
                meta=dict(data.get("meta") or {}),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise EvaluationError("bad_results", f"evaluation result is incomplete or malformed: {exc!r}") from exc


def load_run(path: str | Path) -> EvaluationRun:
    """A run back from the JSON that EvaluationRun.to_json wrote (for `dyag compare` / `dyag report`)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvaluationError("bad_results", f"cannot read {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise EvaluationError("bad_results", f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    try:
        return EvaluationRun.from_dict(data)
    except EvaluationError as exc:
        raise EvaluationError(exc.code, f"{path.name}: {exc.message}") from exc
