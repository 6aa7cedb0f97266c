"""ChromaDB: an embedded PersistentClient in the service's data folder, or a `chroma run` server (CHROMA_URL).

One collection per catalog ("applications_ia"), cosine space, our embedding function always given.
The collection's metadata says which catalog version it holds and bumps a generation number at each
change, so every replica knows when to rebuild its in-memory BM25 index and entity linker.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb  # noqa: E402
from chromadb.api.models.Collection import Collection  # noqa: E402
from chromadb.errors import NotFoundError  # noqa: E402

from dyag_core.rag import RagError, validate_collection_name  # noqa: E402
from dyag_rag_service.embeddings import DyagEmbeddingFunction  # noqa: E402
from dyag_rag_service.settings import RagSettings  # noqa: E402

META_PREFIX = "dyag_"
PAGE = 2000  # records per get() page (a Chroma server limits batch sizes)


class CollectionNotFound(RagError):
    def __init__(self, name: str):
        super().__init__(
            "collection_not_found",
            f"collection {name!r} not found: index a catalog into "
            f"it first (dyag index_rag CATALOG --collection {name})",
        )


class VectorStore:
    def __init__(self, settings: RagSettings):
        self.settings = settings
        chroma_settings = chromadb.Settings(anonymized_telemetry=False)
        self.ef = DyagEmbeddingFunction(settings.rag_embedder, settings.rag_dense_max_chars)
        if settings.chroma_url:
            url = urlparse(settings.chroma_url if "://" in settings.chroma_url else f"http://{settings.chroma_url}")
            self.where = f"server ({settings.chroma_url})"
            try:
                self.client = chromadb.HttpClient(
                    host=url.hostname or "127.0.0.1",
                    port=url.port or (443 if url.scheme == "https" else 8000),
                    ssl=url.scheme == "https",
                    settings=chroma_settings,
                )
            except Exception as exc:  # the client checks the server at once
                raise RagError("unavailable", f"cannot reach Chroma at {settings.chroma_url}: {exc}") from None
        else:
            path = settings.data_dir / "chroma"
            path.mkdir(parents=True, exist_ok=True)
            self.where = f"embedded ({path})"
            self.client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)

    def get(self, name: str) -> Collection:
        name = validate_collection_name(name)
        try:
            return self.client.get_collection(name, embedding_function=self.ef)
        except NotFoundError:
            raise CollectionNotFound(name) from None
        except ValueError as exc:  # older servers say "does not exist" with a ValueError
            if "does not exist" in str(exc):
                raise CollectionNotFound(name) from None
            raise

    def get_or_create(self, name: str, catalog: str) -> Collection:
        name = validate_collection_name(name)
        return self.client.get_or_create_collection(
            name,
            embedding_function=self.ef,
            configuration={"hnsw": {"space": "cosine"}},
            metadata=dyag_metadata({}, catalog=catalog, generation=0),
        )

    def delete(self, name: str) -> None:
        self.get(name)
        self.client.delete_collection(name)

    def names(self) -> list[str]:
        return sorted(c.name if hasattr(c, "name") else str(c) for c in self.client.list_collections())

    def heartbeat(self) -> None:
        self.client.heartbeat()


def info(collection: Collection) -> dict[str, Any]:
    """The collection's Dyag metadata, without the prefix."""
    return {k[len(META_PREFIX) :]: v for k, v in (collection.metadata or {}).items() if k.startswith(META_PREFIX)}


def dyag_metadata(current: dict[str, Any], **changes: Any) -> dict[str, Any]:
    merged = {
        **current,
        **changes,
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    return {f"{META_PREFIX}{k}": v for k, v in merged.items() if v is not None}


def all_records(collection: Collection, include: list[str], where: dict | None = None) -> dict[str, list]:
    """Every record of a collection (paged), as {"ids": [...], "<field>": [...]}."""
    out: dict[str, list] = {"ids": [], **{field: [] for field in include}}
    offset = 0
    while True:
        page = collection.get(include=include, limit=PAGE, offset=offset, where=where)
        out["ids"] += page["ids"]
        for field in include:
            out[field] += list(page.get(field) or [])
        if len(page["ids"]) < PAGE:
            return out
        offset += PAGE
