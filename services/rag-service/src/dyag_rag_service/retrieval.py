"""Hybrid retrieval: entity linking, BM25 and dense search fused by reciprocal rank fusion.

1. Entity linking finds the catalog entities the question names (names, long names, aliases,
   acronyms; accents, case and typos forgiven). Their chunks are then the only candidates
   (or, with no_entity_filter, get a boost): a question about GEOVAL is answered from GEOVAL's record,
   never from a neighbour's.
2. A question that names something the catalog does not have, and nothing it has, gets no context at
   all: the answer is "je ne sais pas" without asking the model (the retrieval layer's own rule).
3. BM25 (bm25s) over the whole text of the chunks and dense search (Chroma, cosine) over their
   embeddings each rank the candidates; reciprocal rank fusion merges the two rankings. When the question
   names its entities and their chunks are few (up to twice the chunks asked for), dense search is
   skipped: it would only reorder chunks the linker already chose, and embedding the question is most
   of the latency.
4. A cross-encoder re-ranks the fused candidates when one is installed (rerank.py); otherwise not.

The BM25 index and the entity linker live in memory per collection and are rebuilt when the
collection's generation (bumped by every index job) changes, so replicas never serve stale ones.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import bm25s
import numpy as np

from dyag_core.rag import SECTIONS, EntityLinker, LinkedEntity, reciprocal_rank_fusion, tokenize, vocabularies
from dyag_llm.embeddings import open_embedder
from dyag_rag_service.rerank import Reranker
from dyag_rag_service.store import VectorStore, all_records, info

log = logging.getLogger(__name__)

_SECTION_ORDER = {name: i for i, name in enumerate(SECTIONS)}
MIN_LINK_SCORE = 0.5  # every match the linker returns clears it; weaker evidence is left to BM25 and dense search
RERANK_DEPTH = 20
# Dense search only reorders the named entities' own chunks once the linker has chosen them: with few of
# them (a comparison of two entities: 10 chunks for 5 places) it is skipped, for the latency (bench_rag.py).
DENSE_SKIP_FACTOR = 2


@dataclass
class LoadedCollection:
    """What queries need in memory: the chunks, their BM25 index and the entity linker."""

    name: str
    generation: int
    catalog: str
    catalog_version: str
    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    position: dict[str, int]
    by_entity: dict[str, list[int]]
    bm25: Any
    bm25_vocab: set[str]
    linker: EntityLinker
    vocabulary: frozenset[str]
    dense_scope: str = "chunk"  # "entity": one vector per entity, carried by all its chunks (indexer.py)
    dense_source: dict[str, int] = field(default_factory=dict)  # entity -> the chunk its vector was embedded from

    @classmethod
    def build(cls, collection) -> LoadedCollection:
        meta = info(collection)
        records = all_records(collection, include=["documents", "metadatas"])
        order = sorted(
            range(len(records["ids"])),
            key=lambda i: (
                str(records["metadatas"][i].get("entity_id", "")),
                _SECTION_ORDER.get(str(records["metadatas"][i].get("section", "")), 99),
                int(records["metadatas"][i].get("part", 0) or 0),
            ),
        )
        ids = [records["ids"][i] for i in order]
        texts = [records["documents"][i] or "" for i in order]
        metadatas = [dict(records["metadatas"][i] or {}) for i in order]
        by_entity: dict[str, list[int]] = {}
        for position, m in enumerate(metadatas):
            by_entity.setdefault(str(m.get("entity_id", "")), []).append(position)
        corpus = [tokenize(t) for t in texts]
        bm25 = None
        bm25_vocab: set[str] = set()
        if texts:
            bm25 = bm25s.BM25()
            bm25.index(corpus, show_progress=False)
            bm25_vocab = set(bm25.vocab_dict)
        vocabulary, ordinary = vocabularies(texts)
        first_of_entity = [metadatas[positions[0]] for positions in by_entity.values()]
        return cls(
            name=collection.name,
            generation=int(meta.get("generation", 0)),
            catalog=str(meta.get("catalog", "")),
            catalog_version=str(meta.get("catalog_version", "")),
            ids=ids,
            texts=texts,
            metadatas=metadatas,
            position={chunk_id: i for i, chunk_id in enumerate(ids)},
            by_entity=by_entity,
            bm25=bm25,
            bm25_vocab=bm25_vocab,
            linker=EntityLinker.from_metadatas(first_of_entity, ordinary),
            vocabulary=vocabulary,
            dense_scope=str(meta.get("dense_scope", "chunk")),
            dense_source={
                str(m.get("entity_id", "")): i
                for i, m in reversed(list(enumerate(metadatas)))
                if m.get("section") == "description" and int(m.get("part", 1) or 1) == 1
            },
        )


class CollectionCache:
    def __init__(self) -> None:
        self._loaded: dict[str, LoadedCollection] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def load(self, collection) -> LoadedCollection:
        generation = int(info(collection).get("generation", 0))
        current = self._loaded.get(collection.name)
        if current is not None and current.generation == generation:
            return current
        with self._guard:
            lock = self._locks.setdefault(collection.name, threading.Lock())
        with lock:
            current = self._loaded.get(collection.name)
            if current is None or current.generation != generation:
                began = time.perf_counter()
                current = LoadedCollection.build(collection)
                self._loaded[collection.name] = current
                log.info(
                    "collection loaded",
                    extra={
                        "collection": collection.name,
                        "chunks": len(current.ids),
                        "generation": generation,
                        "seconds": round(time.perf_counter() - began, 3),
                    },
                )
            return current

    def forget(self, name: str) -> None:
        self._loaded.pop(name, None)


@dataclass
class Hit:
    position: int
    chunk_id: str
    entity_id: str
    entity_name: str
    section: str
    part: int
    text: str
    score: float = 0.0
    bm25_rank: int = 0
    bm25_score: float = 0.0
    dense_rank: int = 0
    dense_similarity: float = 0.0
    rerank_score: float = 0.0


@dataclass
class Retrieval:
    collection: str
    catalog: str
    catalog_version: str
    hits: list[Hit]
    linked: list[LinkedEntity]
    unknown: list[str]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    abstain_reason: str = ""


class Retriever:
    def __init__(
        self,
        store: VectorStore,
        embedder: str,
        *,
        candidates: int = 50,
        reranker: Reranker | None = None,
        dense_weight_unlinked: float = 0.25,
    ):
        self.store, self.embedder_kind, self.candidates, self.reranker = store, embedder, candidates, reranker
        # The weight of dense search in the fusion when the question names no entity (BM25's is 1). Such questions
        # ask across the catalog ("the applications of the biodiversity domain"), where the chunk vectors, which
        # their entity's name dominates, rank worse than the words (bench_rag.py: recall@5 0.75 -> 0.80 at 0.25).
        self.dense_weight_unlinked = dense_weight_unlinked
        self.cache = CollectionCache()

    def retrieve(
        self,
        collection_name: str,
        question: str,
        n_chunks: int = 5,
        *,
        entity_filter: bool = True,
        dense: str = "auto",
        bm25: bool = True,
        linking: bool = True,
    ) -> Retrieval:
        """dense: "auto" (skipped when the named entities' chunks are few), "always" or "never".
        bm25=False and linking=False are for measuring what each part brings (bench/bench_rag.py)."""
        timings: dict[str, float] = {}
        began = time.perf_counter()
        collection = self.store.get(collection_name)
        loaded = self.cache.load(collection)
        result = Retrieval(loaded.name, loaded.catalog, loaded.catalog_version, [], [], [], timings)
        if not loaded.ids:
            result.abstain_reason = "empty_collection"
            result.notes.append("the collection holds no chunk")
            timings["total_ms"] = _ms(began)
            return result

        t = time.perf_counter()
        linked = (
            [m for m in loaded.linker.link(question, loaded.vocabulary) if m.score >= MIN_LINK_SCORE] if linking else []
        )
        result.linked = linked
        result.unknown = loaded.linker.unknown_mentions(question, linked, loaded.vocabulary) if linking else []
        timings["link_ms"] = _ms(t)
        if result.unknown and not linked:
            result.abstain_reason = "unknown_application"
            result.notes.append(f"the question names {', '.join(result.unknown)}, which the catalog does not have")
            timings["total_ms"] = _ms(began)
            return result

        linked_ids = [m.entity_id for m in linked]
        filtered = entity_filter and bool(linked_ids)
        candidates = sorted(p for e in linked_ids for p in loaded.by_entity.get(e, ())) if filtered else None
        mask = None
        if candidates is not None:
            mask = np.zeros(len(loaded.ids), dtype=np.float32)
            mask[candidates] = 1.0

        t = time.perf_counter()
        bm25_ranking: list[int] = []
        bm25_scores: dict[int, float] = {}
        terms = [w for w in tokenize(question) if w in loaded.bm25_vocab]
        if bm25 and terms and loaded.bm25 is not None:
            scores = loaded.bm25.get_scores(terms, weight_mask=mask)
            top = np.argsort(-scores, kind="stable")[: self.candidates]
            bm25_ranking = [int(p) for p in top if scores[p] > 0]
            bm25_scores = {p: float(scores[p]) for p in bm25_ranking}
        timings["bm25_ms"] = _ms(t)

        dense_ranking: list[int] = []
        similarities: dict[int, float] = {}
        pool = len(candidates) if candidates is not None else len(loaded.ids)
        if dense == "never" or (dense == "auto" and filtered and pool <= DENSE_SKIP_FACTOR * n_chunks):
            if dense == "auto":
                result.notes.append(
                    f"dense search skipped: the question names its entities, whose {pool} chunks BM25 and "
                    "the section order rank well enough"
                )
        else:
            t = time.perf_counter()
            vector = open_embedder(self.embedder_kind).query(question)
            timings["embed_ms"] = _ms(t)
            t = time.perf_counter()
            n_results = max(1, min(self.candidates, pool))
            if loaded.dense_scope == "entity":
                # Every chunk of an entity carries the entity's vector: ask for enough chunks to see `candidates`
                # entities, keep each entity's first (a metadata filter instead costs Chroma ~25 ms a query).
                n_results = max(1, min(pool, self.candidates * -(-len(loaded.ids) // max(1, len(loaded.by_entity)))))
            reply = collection.query(
                query_embeddings=[vector],
                n_results=n_results,
                where={"entity_id": {"$in": linked_ids}} if filtered else None,
                include=["distances"],
            )
            best_bm25: dict[str, int] = {}  # entity -> its chunk that BM25 ranks best
            if loaded.dense_scope == "entity":
                for position in bm25_ranking:
                    best_bm25.setdefault(str(loaded.metadatas[position].get("entity_id", "")), position)
            voted: set[str] = set()
            for chunk_id, distance in zip(reply["ids"][0], reply["distances"][0], strict=False):
                position = loaded.position.get(chunk_id)
                if position is None:
                    continue
                if loaded.dense_scope == "entity":
                    # One vote per entity, for its chunk that BM25 prefers, else for the chunk it was embedded from.
                    entity = str(loaded.metadatas[position].get("entity_id", ""))
                    if entity in voted or len(voted) >= self.candidates:
                        continue
                    voted.add(entity)
                    position = best_bm25.get(entity, loaded.dense_source.get(entity, position))
                dense_ranking.append(position)
                similarities[position] = 1.0 - float(distance)
            timings["dense_ms"] = _ms(t)

        t = time.perf_counter()
        weights = (1.0, 1.0) if linked_ids else (1.0, self.dense_weight_unlinked)
        fused = dict(reciprocal_rank_fusion([bm25_ranking, dense_ranking], weights=weights))
        if linked_ids and not filtered:  # a boost instead of a filter: as if first in a third ranking
            for entity_id in linked_ids:
                for position in loaded.by_entity.get(entity_id, ()):
                    fused[position] = fused.get(position, 0.0) + 1.0 / 61
        if candidates is not None:  # every chunk of a named entity stays a candidate, in section order
            for position in candidates:
                fused.setdefault(position, 0.0)
        ranked = sorted(fused, key=lambda p: (-fused[p], p))
        entities_of = [str(loaded.metadatas[p].get("entity_id")) for p in ranked]
        if filtered and len(linked_ids) > 1:
            ranked = _interleave(ranked, entities_of)
        elif not filtered:  # no entity named: one chunk per entity first ("Liste les applications du domaine…")
            ranked = _one_per_entity_first(ranked, entities_of)
        bm25_rank = {p: i for i, p in enumerate(bm25_ranking, start=1)}
        dense_rank = {p: i for i, p in enumerate(dense_ranking, start=1)}
        hits = [self._hit(loaded, p, fused[p], bm25_rank, bm25_scores, dense_rank, similarities) for p in ranked]
        timings["fusion_ms"] = _ms(t)

        if self.reranker is not None and len(hits) > 1:
            t = time.perf_counter()
            head = hits[:RERANK_DEPTH]
            for hit, score in zip(head, self.reranker.score(question, [h.text for h in head]), strict=True):
                hit.rerank_score = float(score)
            hits = sorted(head, key=lambda h: -h.rerank_score) + hits[RERANK_DEPTH:]
            timings["rerank_ms"] = _ms(t)
            result.notes.append(f"re-ranked by {self.reranker.name}")
        result.hits = hits[:n_chunks]
        timings["total_ms"] = _ms(began)
        return result

    @staticmethod
    def _hit(loaded: LoadedCollection, p: int, score, bm25_rank, bm25_scores, dense_rank, similarities) -> Hit:
        m = loaded.metadatas[p]
        return Hit(
            position=p,
            chunk_id=loaded.ids[p],
            entity_id=str(m.get("entity_id", "")),
            entity_name=str(m.get("entity_name", "")),
            section=str(m.get("section", "")),
            part=int(m.get("part", 1) or 1),
            text=loaded.texts[p],
            score=round(float(score), 6),
            bm25_rank=bm25_rank.get(p, 0),
            bm25_score=round(bm25_scores.get(p, 0.0), 4),
            dense_rank=dense_rank.get(p, 0),
            dense_similarity=round(similarities.get(p, 0.0), 4),
        )


def _interleave(ranked: list[int], entities: list[str]) -> list[int]:
    """Best chunk of each named entity first, then the second of each…: a comparison sees both sides."""
    queues: dict[str, list[int]] = {}
    for position, entity in zip(ranked, entities, strict=True):
        queues.setdefault(entity, []).append(position)
    out: list[int] = []
    while any(queues.values()):
        for queue in queues.values():
            if queue:
                out.append(queue.pop(0))
    return out


def _one_per_entity_first(ranked: list[int], entities: list[str]) -> list[int]:
    seen: set[str] = set()
    first, rest = [], []
    for position, entity in zip(ranked, entities, strict=True):
        (rest if entity in seen else first).append(position)
        seen.add(entity)
    return first + rest


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)
