"""Keep secrets out of logs, events, errors and files: replace known values and key-like patterns."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "***"
_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"),  # OpenAI-style keys (sk-..., sk-proj-...)
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/\-]{8,}=*"),
    re.compile(r"(?i)(\b(?:api[-_]?key|authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?)[^\"'\s,;&}]{6,}"),
    re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@"),  # credentials in a URL
]


class Scrubber:
    """Masks the given secret values (and anything that looks like a key) in text and nested data."""

    def __init__(self, secrets: Iterable[str | None] = ()):
        # Longest first, so that a secret containing another is masked whole. Short values would mask too much.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        return self.text(text)

    def text(self, text: str) -> str:
        if not text:
            return text
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(
                lambda m: (m.group(1) if m.groups() else "") + MASK + ("@" if m.group(0).endswith("@") else ""), text
            )
        return text

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)) if isinstance(k, str) else k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.data(v) for v in value)
        return value


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    return Scrubber(secrets).text(text)
