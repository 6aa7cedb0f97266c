"""Aggregation: the metrics of a group of questions (all, a question type, an entity), latency
percentiles, tokens and the estimated cost.

- accuracy: correct questions / questions (failed calls count as incorrect);
- precision, recall, f1_score, exact_match: means of the per-question token metrics (macro averages);
- fact_accuracy: mean fact recall over the questions that have key facts;
- hallucination_rate: questions with at least one hallucination / answered questions (not failed);
- abstention_rate: negative questions whose answer abstains / negative questions;
- over_abstention_rate: answerable questions answered with an abstention and scored incorrect / answerable;
- latency: over the calls that did not fail (a failed call's time says nothing of the target's speed);
  p50 and p95 by linear interpolation between closest ranks (numpy's default, Hyndman & Fan type 7);
  `average_generation_time_ms` is the mean;
- cost: prompt and completion tokens × the injected price table (USD per 1M tokens); None when the
  table has no price for the model — never invented.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dyag_core.evaluation.model import QuestionResult


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100), linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


# ---------------------------------------------------------------- prices


@dataclass(frozen=True, slots=True)
class TokenPrice:
    """USD per 1M tokens."""

    input_per_1m: float
    output_per_1m: float


PriceTable = Mapping[str, TokenPrice | tuple[float, float] | float]  # a float: the same price in and out
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def _as_price(value: TokenPrice | tuple[float, float] | float) -> TokenPrice:
    if isinstance(value, TokenPrice):
        return value
    if isinstance(value, (int, float)):
        return TokenPrice(float(value), float(value))
    return TokenPrice(float(value[0]), float(value[1]))


def price_for(model: str, prices: PriceTable | None, provider: str = "") -> TokenPrice | None:
    """The price of a model: its exact name; a fine-tuned id ("ft:BASE:org::id") as "ft:BASE" then BASE;
    the name without its date suffix; "provider:*" (e.g. "ollama:*": 0 for local models). None if absent."""
    if not prices or not model and not provider:
        return None
    candidates = [model]
    if model.startswith("ft:"):
        base = model[3:].split(":", 1)[0]
        candidates += [f"ft:{base}", f"ft:{_DATE_SUFFIX.sub('', base)}", base, _DATE_SUFFIX.sub("", base)]
    candidates.append(_DATE_SUFFIX.sub("", model))
    prefix = model.split(":", 1)[0] if ":" in model and not model.startswith("ft:") else ""
    candidates += [f"{p}:*" for p in (provider, prefix) if p]
    for name in candidates:
        if name in prices:
            return _as_price(prices[name])
    by_base = {_DATE_SUFFIX.sub("", k): v for k, v in prices.items()}
    for name in candidates:
        if name in by_base:
            return _as_price(by_base[name])
    return None


def question_cost(prompt_tokens: int | None, completion_tokens: int | None, price: TokenPrice | None) -> float | None:
    if price is None or (prompt_tokens is None and completion_tokens is None):
        return None
    return ((prompt_tokens or 0) * price.input_per_1m + (completion_tokens or 0) * price.output_per_1m) / 1_000_000


# ---------------------------------------------------------------- groups


@dataclass(frozen=True, slots=True)
class GroupMetrics:
    n: int
    correct: int
    failed: int
    accuracy: float
    precision: float
    recall: float
    f1_score: float
    exact_match: float
    fact_accuracy: float | None
    similarity: float | None
    hallucination_rate: float | None
    hallucinated: int
    abstention_rate: float | None  # on negative questions
    negatives: int
    over_abstention_rate: float | None  # on answerable questions
    judge_score: float | None
    latency_ms_mean: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupMetrics:
        values: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__}
        return cls(**values)


def group_metrics(results: Sequence[QuestionResult]) -> GroupMetrics:
    n = len(results)
    answered = [r for r in results if not r.failed]
    negatives = [r for r in results if r.case.negative]
    positives = [r for r in results if not r.case.negative]
    hallucinated = sum(r.hallucinated for r in answered)
    return GroupMetrics(
        n=n,
        correct=sum(r.correct for r in results),
        failed=n - len(answered),
        accuracy=_rate(sum(r.correct for r in results), n) or 0.0,
        precision=_mean(r.precision for r in results) or 0.0,
        recall=_mean(r.recall for r in results) or 0.0,
        f1_score=_mean(r.f1 for r in results) or 0.0,
        exact_match=_mean(float(r.exact_match) for r in results) or 0.0,
        fact_accuracy=_mean(r.fact_recall for r in results),
        similarity=_mean(r.similarity for r in results),
        hallucination_rate=_rate(hallucinated, len(answered)),
        hallucinated=hallucinated,
        abstention_rate=_rate(sum(r.abstained for r in negatives), len(negatives)),
        negatives=len(negatives),
        over_abstention_rate=_rate(sum(r.abstained and not r.correct for r in positives), len(positives)),
        judge_score=_mean(r.judge_score for r in results),
        latency_ms_mean=_mean(r.latency_ms for r in answered),
    )


def by_key(
    results: Sequence[QuestionResult], keys: Iterable[str], key_of: Callable[[QuestionResult], Iterable[str]]
) -> dict[str, GroupMetrics]:
    """Metrics per group, groups in `keys` order first (empty ones left out), then any other key met."""
    groups: dict[str, list[QuestionResult]] = {k: [] for k in keys}
    for r in results:
        for k in key_of(r):
            groups.setdefault(k, []).append(r)
    return {k: group_metrics(v) for k, v in groups.items() if v}


# ---------------------------------------------------------------- latency, tokens, cost


@dataclass(frozen=True, slots=True)
class LatencyStats:
    n: int
    mean: float | None
    p50: float | None
    p95: float | None
    min: float | None
    max: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyStats:
        values: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__}
        return cls(**values)


def latency_stats(results: Sequence[QuestionResult]) -> LatencyStats:
    values = [float(r.latency_ms) for r in results if not r.failed and r.latency_ms is not None]
    return LatencyStats(
        n=len(values),
        mean=_mean(values),
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        min=min(values) if values else None,
        max=max(values) if values else None,
    )


@dataclass(frozen=True, slots=True)
class UsageStats:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    questions_without_counts: int
    cost_usd: float | None  # the whole run
    cost_per_1000_questions_usd: float | None
    price: TokenPrice | None  # the price used
    cost_note: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["price"] = asdict(self.price) if self.price else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageStats:
        values: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__}
        values["price"] = TokenPrice(**data["price"]) if data.get("price") else None
        values["cost_note"] = data.get("cost_note") or ""
        return cls(**values)


def usage_stats(results: Sequence[QuestionResult], price: TokenPrice | None, model: str) -> UsageStats:
    prompt = sum(r.prompt_tokens or 0 for r in results)
    completion = sum(r.completion_tokens or 0 for r in results)
    missing = sum(r.prompt_tokens is None and r.completion_tokens is None for r in results if not r.failed)
    if price is None:
        cost, note = None, f"pas de tarif pour « {model or '?'} » dans la table des prix : coût non estimé"
    else:
        cost = sum(r.cost_usd or 0.0 for r in results)
        note = f"{price.input_per_1m:g} $ / 1M tokens en entrée, {price.output_per_1m:g} $ / 1M en sortie"
        if missing:
            note += f" ; {missing} réponse(s) sans compte de tokens, comptées 0"
    per_1000 = cost / len(results) * 1000 if cost is not None and results else None
    return UsageStats(prompt, completion, prompt + completion, missing, cost, per_1000, price, note)
