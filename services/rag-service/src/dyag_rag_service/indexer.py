"""Indexing a catalog version into a collection: only the chunks that changed are embedded.

Chunk ids hold the entity id, the section and a hash of the content, so comparing the ids in the
collection with the ids of the new version's chunks says exactly what to embed and what to delete:
an unchanged entity costs nothing, a changed one only its changed sections. The same comparison
makes a job that was interrupted (a restart, a cancel) pick up where it stopped.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from dyag_core.catalog import Catalog
from dyag_core.rag import Chunk, chunk_catalog, entity_of_chunk_id
from dyag_rag_service.embeddings import EmbeddingCache, dense_text, open_embedder
from dyag_rag_service.store import VectorStore, all_records, dyag_metadata, info

Progress = Callable[..., None]  # (fraction, step, **metrics)
WRITE_BATCH = 512  # chunks per Chroma write


@dataclass
class IndexReport:
    collection: str
    catalog: str
    catalog_version: str
    previous_version: str
    added: list[str] = field(default_factory=list)  # entity ids
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0  # entities left as they were
    chunks_embedded: int = 0  # chunks added to the collection (new or changed content)
    vectors_computed: int = 0  # of which the embedder computed this many; the others came from the cache
    chunks_deleted: int = 0
    chunks: int = 0
    entities: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Indexer:
    def __init__(self, store: VectorStore, embedder: str, max_chars: int, batch: int = 16, cache: EmbeddingCache | None = None):
        self.store, self.embedder_kind, self.max_chars, self.batch = store, embedder, max_chars, max(1, batch)
        self.cache = cache

    def sync(
        self,
        collection_name: str,
        catalog: Catalog,
        catalog_name: str,
        catalog_version: str,
        *,
        progress: Progress | None = None,
        rebuild: bool = False,
        job_id: str = "",
    ) -> IndexReport:
        started = time.perf_counter()
        report_progress = progress or (lambda *a, **k: None)
        report_progress(0.01, "comparing the catalog with the collection")
        collection = self.store.get_or_create(collection_name, catalog_name)
        meta = info(collection)
        embedder = open_embedder(self.embedder_kind)
        if meta.get("embedder") and meta["embedder"] != embedder.name:
            rebuild = True  # vectors of another model cannot be mixed with ours
        existing = all_records(collection, include=[])["ids"]
        if rebuild and existing:
            for start in range(0, len(existing), 5000):
                collection.delete(ids=existing[start : start + 5000])
            existing = []

        chunks = chunk_catalog(catalog)
        new_ids = {c.id for c in chunks}
        old_by_entity: defaultdict[str, set[str]] = defaultdict(set)
        for chunk_id in existing:
            old_by_entity[entity_of_chunk_id(chunk_id)].add(chunk_id)
        new_by_entity: defaultdict[str, set[str]] = defaultdict(set)
        for chunk in chunks:
            new_by_entity[chunk.entity_id].add(chunk.id)
        existing_ids = set(existing)
        to_embed = [c for c in chunks if c.id not in existing_ids]
        to_delete = [i for i in existing if i not in new_ids]

        report = IndexReport(
            collection=collection.name,
            catalog=catalog_name,
            catalog_version=catalog_version,
            previous_version=str(meta.get("catalog_version", "")) if not rebuild else "",
            added=[e for e in new_by_entity if e not in old_by_entity],
            changed=[e for e in new_by_entity if e in old_by_entity and new_by_entity[e] != old_by_entity[e]],
            removed=[e for e in old_by_entity if e not in new_by_entity],
            chunks=len(chunks),
            entities=len(new_by_entity),
        )
        report.unchanged = report.entities - len(report.added) - len(report.changed)
        generation = int(meta.get("generation", 0))
        try:
            self._embed_and_add(collection, to_embed, report, report_progress)
            if to_delete:
                report_progress(0.97, "deleting the chunks of removed and changed entities")
                for start in range(0, len(to_delete), 5000):
                    collection.delete(ids=to_delete[start : start + 5000])
            report.chunks_deleted = len(to_delete)
            version = catalog_version
        except BaseException:
            version = str(meta.get("catalog_version", ""))  # partly indexed: a new run finishes the job
            raise
        finally:
            collection.modify(
                metadata=dyag_metadata(
                    meta,
                    catalog=catalog_name,
                    catalog_version=version,
                    generation=generation + 1,  # replicas rebuild their BM25 index and entity linker
                    entities=report.entities,
                    chunks=report.chunks,
                    embedder=embedder.name,
                    dimension=embedder.dimension,
                    indexed_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                    last_job=job_id or meta.get("last_job", ""),
                )
            )
        report.seconds = round(time.perf_counter() - started, 3)
        report_progress(1.0, "indexed", chunks=report.chunks, embedded=report.chunks_embedded)
        return report

    def _embed_and_add(self, collection, chunks: list[Chunk], report: IndexReport, progress: Progress) -> None:
        """Embed in small batches (progress and cancellation stay prompt), write to Chroma in large ones
        (each write is a transaction: per-batch writes cost more than the HNSW inserts)."""
        embedder = open_embedder(self.embedder_kind)
        total = len(chunks)
        embed_seconds = 0.0
        pending: list[tuple[Chunk, np.ndarray]] = []
        for start in range(0, total, self.batch):
            batch = chunks[start : start + self.batch]
            progress(0.03 + 0.93 * start / max(total, 1), f"embedding chunks {start}/{total}", embedded=start, total=total)
            texts = [dense_text(c.embed_text or c.text, self.max_chars) for c in batch]
            keys = [EmbeddingCache.key(embedder.name, t) for t in texts]
            known = self.cache.get_many(keys) if self.cache else {}
            missing = [i for i, k in enumerate(keys) if k not in known]
            if missing:
                began = time.perf_counter()
                computed = embedder.passages([texts[i] for i in missing])
                embed_seconds += time.perf_counter() - began
                fresh = {keys[i]: computed[j] for j, i in enumerate(missing)}
                if self.cache:
                    self.cache.put_many(fresh)
                known.update(fresh)
                report.vectors_computed += len(missing)
            pending += [(c, known[k]) for c, k in zip(batch, keys, strict=True)]
            if len(pending) >= WRITE_BATCH:
                self._write(collection, pending, report)
                pending = []
        if pending:
            self._write(collection, pending, report)
        report.embed_seconds = round(embed_seconds, 3)

    @staticmethod
    def _write(collection, items: list[tuple[Chunk, np.ndarray]], report: IndexReport) -> None:
        collection.upsert(
            ids=[c.id for c, _ in items],
            documents=[c.text for c, _ in items],
            metadatas=[c.metadata for c, _ in items],
            embeddings=[v for _, v in items],
        )
        report.chunks_embedded += len(items)
