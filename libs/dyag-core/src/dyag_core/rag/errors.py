"""RAG input checks: each refusal names the problem and what to do."""

from __future__ import annotations

import re

from dyag_core.errors import DyagError

# ChromaDB's rule for collection names: 3-512 characters of [a-zA-Z0-9._-], starting and ending with a
# letter or digit, no "..", not an IPv4 address.
_COLLECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
DEFAULT_MAX_QUESTION_CHARS = 2000


class RagError(DyagError):
    """A RAG request that cannot be served as it is."""


def validate_collection_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise RagError("invalid_collection", "give a collection name, e.g. applications_ia")
    if not _COLLECTION.match(name) or ".." in name or _IPV4.match(name):
        raise RagError(
            "invalid_collection",
            f"invalid collection name {name[:80]!r}: use 3 to 512 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit (e.g. applications_ia)",
        )
    return name


def validate_question(question: str, max_chars: int = DEFAULT_MAX_QUESTION_CHARS) -> str:
    text = " ".join((question or "").split())
    if not text:
        raise RagError("empty_question", "the question is empty: ask something about the catalog")
    if len(text) > max_chars:
        raise RagError(
            "question_too_long",
            f"the question is {len(text):,} characters long; the limit is {max_chars:,}. Ask a shorter question.",
            {"length": len(text), "limit": max_chars},
        )
    return text
