"""Indexing a catalog version into a collection: only the chunks that changed are embedded.

Chunk ids hold the entity id, the section and a hash of the content, so comparing the ids in the
collection with the ids of the new version's chunks says exactly what to embed and what to delete:
an unchanged entity costs nothing, a changed one only its changed sections. The same comparison
makes a job that was interrupted (a restart, a cancel) pick up where it stopped.

Dense scope (RagSettings.rag_dense_scope):
- "entity" (default): one vector per entity, embedded from the start of its description chunk (name, long name,
  description), and given to every chunk of the entity. Names, ids, statuses, people and URLs are what BM25 and
  entity linking find; the free text is what dense search is for. One embedding per entity instead of one per
  section: 5x less to compute, and on the free-text questions of bench_rag.py it ranks better, not worse.
  When an entity's description changes, its other chunks are rewritten with the new vector (no embedding).
- "chunk": one vector per chunk, from the start of each chunk's text (the former behaviour).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from dyag_core.catalog import Catalog
from dyag_core.rag import Chunk, chunk_catalog, entity_of_chunk_id
from dyag_llm.embeddings import open_embedder
from dyag_rag_service.embeddings import EmbeddingCache, dense_text
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
    chunks_revectored: int = 0  # unchanged chunks rewritten with their entity's new vector (dense scope "entity")
    chunks: int = 0
    entities: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DENSE_SCOPES = ("entity", "chunk")


def entity_dense_chunks(chunks: list[Chunk]) -> dict[str, Chunk]:
    """Per entity, the chunk its vector is embedded from: the first part of its description, else its first chunk."""
    chosen: dict[str, Chunk] = {}
    for chunk in chunks:
        current = chosen.get(chunk.entity_id)
        if current is None or (current.section != "description" and chunk.section == "description" and chunk.part == 1):
            chosen[chunk.entity_id] = chunk
    return chosen


@dataclass
class _Unit:
    """One vector to have, and the chunks to write with it."""

    text: str
    source_id: str  # the chunk the text comes from (its stored vector can be reused when it is unchanged)
    chunks: list[Chunk]
    new: int  # how many of those chunks are new content (the others are rewritten with a new vector)


class Indexer:
    def __init__(
        self,
        store: VectorStore,
        embedder: str,
        max_chars: int,
        batch: int = 64,
        cache: EmbeddingCache | None = None,
        dense_scope: str = "entity",
    ):
        self.store, self.embedder_kind, self.max_chars, self.batch = store, embedder, max_chars, max(1, batch)
        self.cache = cache
        if dense_scope not in DENSE_SCOPES:
            raise ValueError(f"dense scope {dense_scope!r}: use one of {', '.join(DENSE_SCOPES)}")
        self.dense_scope = dense_scope

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
        if meta.get("embedder") and meta.get("dense_scope", "chunk") != self.dense_scope:
            rebuild = True  # per-entity and per-chunk vectors are not comparable either
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
        units = self._units(chunks, to_embed, existing_ids)
        try:
            self._embed_and_add(collection, units, report, report_progress)
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
                    dense_scope=self.dense_scope,
                    indexed_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                    last_job=job_id or meta.get("last_job", ""),
                )
            )
        report.seconds = round(time.perf_counter() - started, 3)
        report_progress(1.0, "indexed", chunks=report.chunks, embedded=report.chunks_embedded)
        return report

    def _units(self, chunks: list[Chunk], to_embed: list[Chunk], existing_ids: set[str]) -> list[_Unit]:
        if self.dense_scope == "chunk":
            return [_Unit(dense_text(c.embed_text or c.text, self.max_chars), c.id, [c], 1) for c in to_embed]
        sources = entity_dense_chunks(chunks)
        by_entity: defaultdict[str, list[Chunk]] = defaultdict(list)
        for chunk in chunks:
            by_entity[chunk.entity_id].append(chunk)
        new_by_entity: defaultdict[str, list[Chunk]] = defaultdict(list)
        for chunk in to_embed:
            new_by_entity[chunk.entity_id].append(chunk)
        units = []
        for entity_id, new in new_by_entity.items():
            source = sources[entity_id]
            # A new vector (the source chunk changed): the entity's unchanged chunks get it too.
            rewrite = by_entity[entity_id] if source.id not in existing_ids else new
            units.append(
                _Unit(dense_text(source.embed_text or source.text, self.max_chars), source.id, rewrite, len(new))
            )
        return units

    def _embed_and_add(self, collection, units: list[_Unit], report: IndexReport, progress: Progress) -> None:
        """Embed in batches (progress and cancellation stay prompt), write to Chroma in large ones (each write is a
        transaction: per-batch writes cost more than the HNSW inserts). A write runs in the background while the next
        batch is embedded; one write at a time, in order, and the job waits for the last one."""
        embedder = open_embedder(self.embedder_kind)
        total = len(units)
        embed_seconds = 0.0
        pending: list[tuple[Chunk, np.ndarray]] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chroma-write") as writer:
            writing: Future | None = None

            def flush() -> None:
                nonlocal writing, pending
                if writing is not None:
                    writing.result()  # raises what the previous write raised
                writing = writer.submit(self._write, collection, pending) if pending else None
                pending = []

            for start in range(0, total, self.batch):
                batch = units[start : start + self.batch]
                progress(0.03 + 0.93 * start / max(total, 1), f"embedding {start}/{total}", embedded=start, total=total)
                keys = [EmbeddingCache.key(embedder.name, u.text) for u in batch]
                known = self.cache.get_many(keys) if self.cache else {}
                missing = [i for i, k in enumerate(keys) if k not in known]
                if (
                    missing and self.dense_scope == "entity"
                ):  # an unchanged source chunk: its vector is in the collection
                    stored = _stored_vectors(collection, [batch[i].source_id for i in missing])
                    for i in missing:
                        if batch[i].source_id in stored:
                            known[keys[i]] = stored[batch[i].source_id]
                    missing = [i for i in missing if keys[i] not in known]
                if missing:
                    began = time.perf_counter()
                    computed = embedder.passages([batch[i].text for i in missing])
                    embed_seconds += time.perf_counter() - began
                    fresh = {keys[i]: computed[j] for j, i in enumerate(missing)}
                    if self.cache:
                        self.cache.put_many(fresh)
                    known.update(fresh)
                    report.vectors_computed += len(missing)
                for unit, key in zip(batch, keys, strict=True):
                    pending += [(c, known[key]) for c in unit.chunks]
                    report.chunks_embedded += unit.new
                    report.chunks_revectored += len(unit.chunks) - unit.new
                if len(pending) >= WRITE_BATCH:
                    flush()
            flush()
            flush()  # waits for the last write
        report.embed_seconds = round(embed_seconds, 3)

    @staticmethod
    def _write(collection, items: list[tuple[Chunk, np.ndarray]]) -> None:
        collection.upsert(
            ids=[c.id for c, _ in items],
            documents=[c.text for c, _ in items],
            metadatas=[c.metadata for c, _ in items],
            embeddings=np.stack([v for _, v in items]),
        )


def _stored_vectors(collection, ids: list[str]) -> dict[str, np.ndarray]:
    found = collection.get(ids=ids, include=["embeddings"])
    return {i: np.asarray(v, np.float32) for i, v in zip(found["ids"], found["embeddings"], strict=True)}
