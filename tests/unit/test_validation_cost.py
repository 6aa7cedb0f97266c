"""Hosted training cost: billed tokens × epochs × price, epochs from the guide's Annex A."""

from __future__ import annotations

import pytest
from test_validation_support import chat

from dyag_core.errors import DyagError
from dyag_core.validation import DEFAULT_PRICES, default_epochs, estimate_cost, validate_dataset


def test_epochs_follow_annex_a_by_size() -> None:
    assert [default_epochs(n) for n in (100, 499, 500, 2000, 2001)] == [8, 8, 4, 4, 2]


def test_cost_is_tokens_times_epochs_times_price() -> None:
    cost = estimate_cost(1_000_000, "gpt-4o-mini", n_examples=1000)
    assert cost.price_per_million == DEFAULT_PRICES["gpt-4o-mini-2024-07-18"]
    assert cost.epochs == 4 and cost.trained_tokens == 4_000_000
    assert cost.cost_usd == pytest.approx(4 * DEFAULT_PRICES["gpt-4o-mini-2024-07-18"])
    custom = estimate_cost(500_000, "gpt-3.5-turbo", n_examples=10, epochs=3, prices={"gpt-3.5-turbo": 10.0})
    assert custom.cost_usd == pytest.approx(15.0) and custom.epochs_source == "given"


def test_an_unknown_model_asks_for_a_price() -> None:
    with pytest.raises(DyagError) as caught:
        estimate_cost(1000, "mistral-large", n_examples=10)
    assert caught.value.code == "unknown_price"


def test_the_report_carries_the_cost_of_its_billed_tokens() -> None:
    pytest.importorskip("tiktoken")
    report = validate_dataset([chat("Q ?", "Une réponse.")] * 3, model="gpt-4.1-nano", pii=False)
    assert report.cost.billed_tokens_per_epoch == report.tokens.billed_tokens
    assert report.cost.epochs == 8
    assert report.cost.price_per_million == DEFAULT_PRICES["gpt-4.1-nano"]
