"""The evaluation's typed model: a test question, a target, what the target answered, and one question's score."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dyag_core.dataset.model import NEGATIVE_TYPES, Example

# What a target is, for the comparison (how it is reached — Ollama, an OpenAI-compatible API, the local
# runtime, the RAG service — is its provider, which does not change the approach).
# grounded: answers rendered from the catalog's records (no model); rag: retrieval, then grounded answers where the
# question is understood and the model elsewhere (rag-service's auto mode) or the model always (generative).
APPROACHES = ("base", "grounded", "rag", "fine_tuned", "hybrid")  # also the order of simplicity (compare.py)
APPROACH_LABELS = {
    "base": "Modèle de base",
    "grounded": "Réponses ancrées (fiches du catalogue)",
    "fine_tuned": "Fine-tuning",
    "rag": "RAG",
    "hybrid": "Hybride (fine-tuning + RAG)",
}

# embed(texts) -> one vector per text (lists, tuples or numpy rows). The service passes a multilingual
# embedding model; the evaluation never loads one.
Embedder = Callable[[Sequence[str]], Sequence[Sequence[float]]]


@dataclass(frozen=True, slots=True)
class EvalCase:
    """One test question, as the eval JSONL holds it (key_facts are the dataset provenance's gold facts)."""

    id: str
    question: str
    expected_answer: str
    key_facts: tuple[str, ...] = ()
    qtype: str = "unknown"
    entity_ids: tuple[str, ...] = ()
    negative: bool = False

    @classmethod
    def from_example(cls, example: Example) -> EvalCase:
        p = example.provenance
        return cls(
            example.id,
            example.question,
            example.answer,
            tuple(p.key_facts),
            example.qtype,
            tuple(p.entity_ids),
            p.negative or example.qtype in NEGATIVE_TYPES,
        )

    def to_record(self) -> dict[str, Any]:
        """The eval JSONL record (dyag_core.dataset.formats' "eval" format)."""
        return {
            "id": self.id,
            "question": self.question,
            "expected_answer": self.expected_answer,
            "key_facts": list(self.key_facts),
            "type": self.qtype,
            "entity_ids": list(self.entity_ids),
            "negative": self.negative,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EvalCase:
        qtype = str(record.get("type") or record.get("qtype") or "unknown")
        return cls(
            id=str(record.get("id") or ""),
            question=str(record.get("question") or ""),
            expected_answer=str(record.get("expected_answer") or ""),
            key_facts=tuple(str(f) for f in record.get("key_facts") or ()),
            qtype=qtype,
            entity_ids=tuple(str(e) for e in record.get("entity_ids") or ()),
            negative=bool(record.get("negative", False)) or qtype in NEGATIVE_TYPES,
        )


@dataclass(frozen=True, slots=True)
class Target:
    """What answered: a label for the reports, its approach, and the model id used to look its price up."""

    name: str
    approach: str = "base"  # one of APPROACHES
    model: str = ""  # "gpt-4o-mini", "ft:gpt-4o-mini-2024-07-18:org::id", "ollama:applications-ia", "local:default"
    provider: str = ""  # free text: openai, ollama, local, rag-service…
    training_cost_usd: float | None = None  # what training it cost, when known (fine-tuned, hybrid)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "approach": self.approach,
            "model": self.model,
            "provider": self.provider,
            "training_cost_usd": self.training_cost_usd,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        cost = data.get("training_cost_usd")
        return cls(
            str(data.get("name", "")),
            str(data.get("approach", "base")),
            str(data.get("model", "")),
            str(data.get("provider", "")),
            None if cost is None else float(cost),
        )


@dataclass(frozen=True, slots=True)
class Response:
    """What the target answered one question. A call that failed (error, timeout) sets `error`: the
    question is then scored as failed; it never stops the run."""

    text: str = ""
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    judge_score: float | None = None  # 0..1, only when an LLM judge is configured

    @classmethod
    def failed(cls, error: str, latency_ms: float | None = None) -> Response:
        return cls(text="", latency_ms=latency_ms, error=error or "échec")


@dataclass(frozen=True, slots=True)
class Hallucination:
    """A value the answer asserts that contradicts the record (see hallucination.py for the rules)."""

    kind: str  # wrong_status, invented_status, wrong_domain, wrong_scope, invented_url, other_entity_url,
    # other_entity, unrelated_entity, wrong_member, wrong_count, wrong_date, invented_answer
    value: str  # what the answer says
    detail: str  # what the record says instead, in French

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "value": self.value, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hallucination:
        return cls(str(data["kind"]), str(data.get("value", "")), str(data.get("detail", "")))


@dataclass(frozen=True, slots=True)
class QuestionResult:
    """One question, scored."""

    case: EvalCase
    answer: str
    correct: bool
    # None when correct; else failed, empty_answer, hallucination, invented_answer, abstained, missing_facts,
    # low_overlap
    reason_code: str | None
    reason: str | None  # the same, for people (French), with the missing facts and the contradicted values
    failed: bool = False
    error: str | None = None
    exact_match: bool = False
    precision: float = 0.0  # token level, SQuAD-style
    recall: float = 0.0
    f1: float = 0.0
    fact_recall: float | None = None  # None when the question has no key facts
    facts_found: tuple[str, ...] = ()
    facts_missing: tuple[str, ...] = ()
    similarity: float | None = None  # cosine of the embeddings, when an embedder is given
    abstained: bool = False
    hallucinations: tuple[Hallucination, ...] = ()
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    judge_score: float | None = None

    @property
    def answered(self) -> bool:
        return not self.failed

    @property
    def hallucinated(self) -> bool:
        return bool(self.hallucinations)

    def to_dict(self) -> dict[str, Any]:
        c = self.case
        return {
            "id": c.id,
            "question": c.question,
            "expected": c.expected_answer,
            "got": self.answer,
            "type": c.qtype,
            "entity_ids": list(c.entity_ids),
            "key_facts": list(c.key_facts),
            "negative": c.negative,
            "correct": self.correct,
            "reason_code": self.reason_code,
            "reason": self.reason,
            "failed": self.failed,
            "error": self.error,
            "exact_match": self.exact_match,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "fact_recall": self.fact_recall,
            "facts_found": list(self.facts_found),
            "facts_missing": list(self.facts_missing),
            "similarity": self.similarity,
            "abstained": self.abstained,
            "hallucinations": [h.to_dict() for h in self.hallucinations],
            "latency_ms": self.latency_ms,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "judge_score": self.judge_score,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuestionResult:
        case = EvalCase(
            str(d.get("id", "")),
            str(d.get("question", "")),
            str(d.get("expected", "")),
            tuple(d.get("key_facts") or ()),
            str(d.get("type", "unknown")),
            tuple(str(e) for e in d.get("entity_ids") or ()),
            bool(d.get("negative", False)),
        )
        return cls(
            case=case,
            answer=str(d.get("got", "")),
            correct=bool(d["correct"]),
            reason_code=d.get("reason_code"),
            reason=d.get("reason"),
            failed=bool(d.get("failed", False)),
            error=d.get("error"),
            exact_match=bool(d.get("exact_match", False)),
            precision=float(d.get("precision", 0.0)),
            recall=float(d.get("recall", 0.0)),
            f1=float(d.get("f1", 0.0)),
            fact_recall=d.get("fact_recall"),
            facts_found=tuple(d.get("facts_found") or ()),
            facts_missing=tuple(d.get("facts_missing") or ()),
            similarity=d.get("similarity"),
            abstained=bool(d.get("abstained", False)),
            hallucinations=tuple(Hallucination.from_dict(h) for h in d.get("hallucinations") or ()),
            latency_ms=d.get("latency_ms"),
            prompt_tokens=d.get("prompt_tokens"),
            completion_tokens=d.get("completion_tokens"),
            cost_usd=d.get("cost_usd"),
            judge_score=d.get("judge_score"),
        )


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    """The thresholds of the correctness rule (scoring.py) and the embedding batch size."""

    fact_threshold: float = 0.8  # share of key facts a correct answer states: all of 1-4 facts, 4 of 5, 8 of 10…
    overlap_threshold: float = 0.5  # token F1 that makes a question without key facts correct…
    similarity_threshold: float = 0.85  # …or this cosine similarity, when an embedder is given
    embed_batch: int = 64  # texts per embed() call

    def to_dict(self) -> dict[str, Any]:
        return {
            "fact_threshold": self.fact_threshold,
            "overlap_threshold": self.overlap_threshold,
            "similarity_threshold": self.similarity_threshold,
            "embed_batch": self.embed_batch,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ScoringConfig:
        data = data or {}
        return cls(
            **{
                k: data[k]
                for k in ("fact_threshold", "overlap_threshold", "similarity_threshold", "embed_batch")
                if k in data
            }
        )
