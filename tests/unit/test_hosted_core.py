"""The pure rules of hosted fine-tuning: Annex A presets, the plan key, the retry policy, secret scrubbing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from dyag_core.errors import DyagError
from dyag_core.hosted import (
    FAIL,
    PERMANENT,
    RETRY,
    RetryPolicy,
    Scrubber,
    classify,
    next_step_for,
    parse_retry_after,
    plan_key,
    preset_for,
    resolve_hyperparameters,
    scrub,
)
from dyag_core.hosted.plan import provider_identity, upload_key


# --- presets (the guide's Annex A) ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (100, (8, 3, 2.0)),
        (499, (8, 3, 2.0)),
        (500, (4, 6, 1.5)),
        (2000, (4, 6, 1.5)),
        (2001, (2, 12, 1.0)),
        (50_000, (2, 12, 1.0)),
    ],
)
def test_presets_follow_annex_a_by_dataset_size(n, expected):
    hp = preset_for(n)
    assert (hp.n_epochs, hp.batch_size, hp.learning_rate_multiplier) == expected
    assert all(source.startswith("annex A") for _, source in hp.sources)


def test_annex_a_ranges_hold():
    small, medium, large = preset_for(10), preset_for(1000), preset_for(5000)
    assert 5 <= small.n_epochs <= 10 and 2 <= small.batch_size <= 4
    assert 3 <= medium.n_epochs <= 5 and 4 <= medium.batch_size <= 8
    assert 1 <= large.n_epochs <= 3 and 8 <= large.batch_size <= 16


def test_given_values_override_the_preset_one_by_one():
    hp = resolve_hyperparameters(800, n_epochs=3, learning_rate_multiplier=2.0)
    assert hp.values() == {"n_epochs": 3, "batch_size": 6, "learning_rate_multiplier": 2.0}
    sources = dict(hp.sources)
    assert sources["n_epochs"] == "given" and sources["learning_rate_multiplier"] == "given"
    assert sources["batch_size"].startswith("annex A (medium")
    assert resolve_hyperparameters(800, n_epochs=0, batch_size=None).values() == preset_for(800).values()


@pytest.mark.parametrize(
    "bad",
    [
        {"n_epochs": 51},
        {"n_epochs": -1},
        {"batch_size": 1000},
        {"learning_rate_multiplier": -0.5},
        {"learning_rate_multiplier": 11.0},
        {"n_epochs": 2.5},
    ],
)
def test_out_of_range_hyperparameters_are_refused_with_their_name(bad):
    with pytest.raises(DyagError) as err:
        resolve_hyperparameters(100, **bad)
    assert err.value.code == "invalid_hyperparameters" and next(iter(bad)) in err.value.message


# --- the plan key ------------------------------------------------------------------------------------------------
def test_the_same_plan_gets_the_same_key_and_any_change_another():
    hp = {"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 2.0}
    key = plan_key("https://api.openai.com/v1", "gpt-4o-mini-2024-07-18", b"train", b"val", hp)
    assert key == plan_key(
        "https://API.openai.com/v1/", "gpt-4o-mini-2024-07-18", b"train", b"val", dict(reversed(hp.items()))
    )
    others = {
        plan_key("https://example.openai.azure.com/openai/v1", "gpt-4o-mini-2024-07-18", b"train", b"val", hp),
        plan_key("https://api.openai.com/v1", "gpt-3.5-turbo", b"train", b"val", hp),
        plan_key("https://api.openai.com/v1", "gpt-4o-mini-2024-07-18", b"train2", b"val", hp),
        plan_key("https://api.openai.com/v1", "gpt-4o-mini-2024-07-18", b"train", None, hp),
        plan_key("https://api.openai.com/v1", "gpt-4o-mini-2024-07-18", b"train", b"val", {**hp, "n_epochs": 4}),
        plan_key("https://api.openai.com/v1", "gpt-4o-mini-2024-07-18", b"train", b"val", hp, suffix="x"),
        plan_key("https://api.openai.com/v1", "gpt-4o-mini-2024-07-18", b"train", b"val", hp, seed=1),
    }
    assert key not in others and len(others) == 7


def test_provider_identity_drops_credentials_and_query():
    assert provider_identity("https://user:secret@Api.OpenAI.com:443/v1/?x=1") == "https://api.openai.com:443/v1"
    assert upload_key("https://api.openai.com/v1", b"a") == upload_key("https://api.openai.com/v1/", b"a")
    assert upload_key("https://api.openai.com/v1", b"a") != upload_key("https://other/v1", b"a")


# --- retries -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "message", "code", "verdict"),
    [
        (429, "Rate limit reached", "", RETRY),
        (500, "server error", "", RETRY),
        (502, "", "", RETRY),
        (503, "overloaded", "", RETRY),
        (408, "", "", RETRY),
        (None, "timed out", "timeout", RETRY),
        (401, "Incorrect API key", "invalid_api_key", PERMANENT),
        (403, "forbidden", "", PERMANENT),
        (400, "Fine-tuning is not available for your organization.", "", PERMANENT),
        (404, "", "fine_tuning_not_available", PERMANENT),
        (429, "You exceeded your current quota", "insufficient_quota", PERMANENT),
        (400, "invalid training_file", "", FAIL),
        (404, "model not found", "model_not_found", FAIL),
    ],
)
def test_classify(status, message, code, verdict):
    assert classify(status, message, code) == verdict


def test_exponential_backoff_with_jitter_is_capped():
    policy = RetryPolicy(base_s=1.0, cap_s=10.0, jitter=0.5)
    rng = random.Random(7)
    for attempt in range(1, 10):
        raw = min(10.0, 2 ** (attempt - 1))
        delays = [policy.delay(attempt, rng=rng) for _ in range(50)]
        assert all(raw * 0.5 <= d <= raw for d in delays)
        assert len(set(delays)) > 1  # jitter: retries of many clients do not line up
    assert RetryPolicy(jitter=0.0).delay(3) == 4.0


def test_retry_after_is_honoured_in_full():
    policy = RetryPolicy(base_s=0.1, max_retry_after_s=30.0)
    assert all(2.0 <= policy.delay(1, retry_after=2.0) <= 2.3 for _ in range(20))
    assert policy.delay(1, retry_after=3600) <= 30.0 + 0.2
    assert policy.should_retry(1, RETRY) and not policy.should_retry(policy.max_attempts, RETRY)
    assert not policy.should_retry(1, PERMANENT) and not policy.should_retry(1, FAIL)


def test_parse_retry_after_in_seconds_milliseconds_or_as_a_date():
    now = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert (
        parse_retry_after({"Retry-After": format_datetime(now + timedelta(seconds=30), usegmt=True)}, now=now) == 30.0
    )
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


def test_next_steps_name_what_to_do():
    assert "DYAG_OPENAI_API_KEY" in next_step_for(401)
    not_available = next_step_for(403, "Fine-tuning is not available for your organization")
    assert "Azure OpenAI" in not_available and "DYAG_OPENAI_BASE_URL" in not_available and "2027-01-06" in not_available
    assert "reused" in next_step_for(503)
    assert "credit" in next_step_for(429, "quota", "insufficient_quota")


# --- secrets -----------------------------------------------------------------------------------------------------
def test_scrubber_masks_known_secrets_and_key_like_text():
    key = "sk-proj-" + "A1b2C3d4" * 6
    scrubber = Scrubber([key, "corp-secret-42", "abc"])  # too short a value is not masked (it would mask everything)
    text = (
        f"key={key}; Authorization: Bearer {key}; token corp-secret-42; sk-othersecret1234567890; "
        "https://user:pa55word@proxy.example/v1; x-api-key: 0123456789abcdef; abc"
    )
    out = scrubber(text)
    for secret in (key, "corp-secret-42", "sk-othersecret1234567890", "pa55word", "0123456789abcdef"):
        assert secret not in out
    assert out.endswith("abc") and "proxy.example/v1" in out
    assert scrubber.data({"a": [f"x {key}", 3], "b": {"c": key}}) == {"a": ["x ***", 3], "b": {"c": "***"}}
    assert scrub("nothing here") == "nothing here"
