"""Cost estimate of a hosted fine-tuning job: billed tokens × epochs × price per 1M training tokens."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import DyagError

# USD per 1M training tokens. These are the providers' LIST prices when this table was written: they
# change, so deployments override them in settings and pass their own table to estimate_cost.
DEFAULT_PRICES: dict[str, float] = {
    "gpt-4o-mini-2024-07-18": 3.00,
    "gpt-4o-2024-08-06": 25.00,
    "gpt-3.5-turbo": 8.00,
    "gpt-4.1-mini": 5.00,
    "gpt-4.1-nano": 1.50,
}

# The guide's Annex A gives n_epochs ranges by dataset size: <500 -> 5-10, 500-2000 -> 3-5, >2000 -> 1-3.
# We take the middle of each range, rounded up, so the estimate is not optimistic.
SMALL_DATASET, LARGE_DATASET = 500, 2000
EPOCHS_SMALL, EPOCHS_MEDIUM, EPOCHS_LARGE = 8, 4, 2

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def default_epochs(n_examples: int) -> int:
    if n_examples < SMALL_DATASET:
        return EPOCHS_SMALL
    if n_examples <= LARGE_DATASET:
        return EPOCHS_MEDIUM
    return EPOCHS_LARGE


def _size_band(n_examples: int) -> str:
    if n_examples < SMALL_DATASET:
        return f"<{SMALL_DATASET} exemples"
    return f"{SMALL_DATASET}-{LARGE_DATASET} exemples" if n_examples <= LARGE_DATASET else f">{LARGE_DATASET} exemples"


def price_for(model: str, prices: Mapping[str, float]) -> float | None:
    """Exact name first, then the same model without its date suffix ("gpt-4o-mini" ~ "gpt-4o-mini-2024-07-18")."""
    if model in prices:
        return prices[model]
    base = _DATE_SUFFIX.sub("", model.removeprefix("ft:"))
    for name, price in prices.items():
        if _DATE_SUFFIX.sub("", name) == base:
            return price
    return None


@dataclass(frozen=True, slots=True)
class CostEstimate:
    model: str
    billed_tokens_per_epoch: int
    epochs: int
    epochs_source: str  # "given" or "annexe A, <500 exemples" (the size band used)
    trained_tokens: int
    price_per_million: float
    cost_usd: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_cost(
    billed_tokens_per_epoch: int,
    model: str,
    *,
    n_examples: int,
    epochs: int | None = None,
    prices: Mapping[str, float] = DEFAULT_PRICES,
) -> CostEstimate:
    price = price_for(model, prices)
    if price is None:
        raise DyagError(
            "unknown_price",
            f"Pas de prix d'entraînement connu pour {model} : passer une table de prix (USD par million de tokens)",
            {"model": model, "known": sorted(prices)},
        )
    if epochs is None:
        n_epochs, source = default_epochs(n_examples), f"annexe A, {_size_band(n_examples)}"
    else:
        n_epochs, source = epochs, "given"
    trained = billed_tokens_per_epoch * n_epochs
    return CostEstimate(model, billed_tokens_per_epoch, n_epochs, source, trained, price, trained * price / 1_000_000)
