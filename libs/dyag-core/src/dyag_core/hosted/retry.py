"""How to treat a remote API's failures: retry with exponential backoff and jitter (honouring
Retry-After), or stop at once when the refusal is permanent, saying what to do next.

- retried: HTTP 408, 409, 429 (rate limits), 5xx, timeouts and connection errors;
- permanent: 401, 403, "not available" (fine-tuning closed to this account), 429 insufficient_quota;
- anything else (400, 404, 422…): the request itself is wrong, not worth retrying.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ..errors import DyagError

RETRY, PERMANENT, FAIL = "retry", "permanent", "fail"

_NOT_AVAILABLE = (
    "not available",
    "not_available",
    "unavailable for your",
    "not enabled",
    "does not have access to fine-tun",
    "fine-tuning is not",
    "fine_tuning_not",
)
_NO_QUOTA = ("insufficient_quota", "exceeded your current quota", "billing")


def classify(status: int | None, message: str = "", code: str = "") -> str:
    """RETRY, PERMANENT or FAIL for an HTTP status (None: no answer: timeout, connection error)."""
    text = f"{message} {code}".lower()
    if status in (401, 403):
        return PERMANENT
    if any(p in text for p in _NOT_AVAILABLE) and status != 503:
        return PERMANENT
    if status == 429 and any(p in text for p in _NO_QUOTA):
        return PERMANENT
    if status is None or status in (408, 409, 429) or status >= 500:
        return RETRY
    return FAIL


def parse_retry_after(headers: Mapping[str, str] | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from retry-after-ms, or Retry-After in seconds or as an HTTP date; None if absent."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    if (ms := lower.get("retry-after-ms")) is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: base × 2^(attempt-1), capped, minus up to `jitter` of it at random;
    a Retry-After from the server is waited in full (up to max_retry_after), plus a little jitter."""

    base_s: float = 1.0
    cap_s: float = 60.0
    max_attempts: int = 8  # calls in all, the first included
    jitter: float = 0.5  # 0: none; 1: anywhere from 0 to the full delay
    max_retry_after_s: float = 600.0

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed call number `attempt` (1-based)."""
        rng = rng or random
        if retry_after is not None:
            wait = min(retry_after, self.max_retry_after_s)
            return wait + rng.uniform(0, min(self.base_s, wait * 0.1 + 0.05) * self.jitter)
        raw = min(self.cap_s, self.base_s * 2 ** max(attempt - 1, 0))
        return raw * (1 - self.jitter * rng.random())

    def should_retry(self, attempt: int, verdict: str) -> bool:
        return verdict == RETRY and attempt < self.max_attempts


class ProviderRefusal(DyagError):
    """The provider said no for good (or kept failing): its message, and what to do next."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider_message: str = "",
        next_step: str = "",
        code: str = "provider_refused",
    ):
        super().__init__(
            code, message, {"status": status, "provider_message": provider_message, "next_step": next_step}
        )
        self.status, self.provider_message, self.next_step = status, provider_message, next_step


def next_step_for(
    status: int | None,
    message: str = "",
    code: str = "",
    *,
    key_setting: str = "DYAG_OPENAI_API_KEY",
    url_setting: str = "DYAG_OPENAI_BASE_URL",
) -> str:
    """What the user can do about a refusal, in words."""
    text = f"{message} {code}".lower()
    if status == 401:
        return (
            f"the provider refused the API key: set {key_setting} (or "
            "OPENAI_API_KEY) to a valid key for this provider, then submit again"
        )
    if status == 403 or any(p in text for p in _NOT_AVAILABLE):
        return (
            "this account cannot fine-tune with this provider. OpenAI closed self-serve fine-tuning to "
            f"new organisations in May 2026 and ends new training jobs on 2027-01-06: point {url_setting} "
            "at Azure OpenAI or another OpenAI-compatible provider that offers fine-tuning (with its key "
            f"in {key_setting}), or train locally with the LoRA trainer (gpu-lora-trainer)"
        )
    if status == 429 and any(p in text for p in _NO_QUOTA):
        return (
            "the account has no quota left: add credit or raise its "
            "limits, then submit the same job again (the upload is reused)"
        )
    if status is None or status in (408, 409, 429) or (status and status >= 500):
        return (
            "the provider kept failing: submit the same job again later; "
            "the upload and the remote job are reused, not paid twice"
        )
    if status == 404:
        return (
            "the provider does not know this model or object: check the "
            "base model name (fine-tunable models only) and the base URL"
        )
    return "fix what the provider's message names, then submit again"
