"""Hosted fine-tuning (the guide's step 4), the pure part: hyperparameter presets (Annex A), the
idempotency key of a training plan, the retry policy for a remote API, and secret scrubbing.

No HTTP client here: the openai-trainer service drives the provider; these rules are what it decides with.
"""

from .plan import TrainingPlan, content_hash, plan_key
from .presets import (
    BATCH_SIZE_LARGE,
    BATCH_SIZE_MEDIUM,
    BATCH_SIZE_SMALL,
    LR_LARGE,
    LR_MEDIUM,
    LR_SMALL,
    Hyperparameters,
    preset_for,
    resolve_hyperparameters,
)
from .retry import (
    FAIL,
    PERMANENT,
    RETRY,
    ProviderRefusal,
    RetryPolicy,
    classify,
    next_step_for,
    parse_retry_after,
)
from .secrets import Scrubber, scrub

__all__ = [
    "BATCH_SIZE_LARGE",
    "BATCH_SIZE_MEDIUM",
    "BATCH_SIZE_SMALL",
    "FAIL",
    "Hyperparameters",
    "LR_LARGE",
    "LR_MEDIUM",
    "LR_SMALL",
    "PERMANENT",
    "ProviderRefusal",
    "RETRY",
    "RetryPolicy",
    "Scrubber",
    "TrainingPlan",
    "classify",
    "content_hash",
    "next_step_for",
    "parse_retry_after",
    "plan_key",
    "preset_for",
    "resolve_hyperparameters",
    "scrub",
]
