"""The identity of a training plan: the same data, base model, parameters and provider make the same key.

The openai-trainer stores the key with the upload and the remote job it made, so that re-submitting the
same plan reuses them instead of paying twice, and a restarted service finds the job it was following.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def content_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def provider_identity(base_url: str) -> str:
    """The provider a key is bound to: its base URL without credentials, query or trailing slash."""
    parts = urlsplit(base_url.strip())
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme.lower(), host.lower(), parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    provider: str  # provider_identity(base URL)
    base_model: str
    train_hash: str
    validation_hash: str  # "" without a validation file
    hyperparameters: dict[str, Any]
    suffix: str = ""
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def canonical(self) -> str:
        return json.dumps(
            {
                "provider": self.provider,
                "base_model": self.base_model,
                "train": self.train_hash,
                "validation": self.validation_hash,
                "hyperparameters": {k: self.hyperparameters[k] for k in sorted(self.hyperparameters)},
                "suffix": self.suffix,
                "seed": self.seed,
                "extra": self.extra,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @property
    def key(self) -> str:
        return "plan-" + hashlib.sha256(self.canonical().encode()).hexdigest()[:32]


def plan_key(
    base_url: str,
    base_model: str,
    train: bytes,
    validation: bytes | None,
    hyperparameters: dict[str, Any],
    *,
    suffix: str = "",
    seed: int | None = None,
) -> str:
    return TrainingPlan(
        provider_identity(base_url),
        base_model,
        content_hash(train),
        content_hash(validation) if validation else "",
        dict(hyperparameters),
        suffix,
        seed,
    ).key


def upload_key(base_url: str, data: bytes) -> str:
    """One upload per content and provider."""
    return (
        "upload-" + hashlib.sha256((provider_identity(base_url) + "\0" + content_hash(data)).encode()).hexdigest()[:32]
    )
