"""The RAG engine: retrieval, then an answer grounded in the catalog's records or from a chat model.

Modes (MODES): "grounded" answers from the records only (dyag_core.answering: the question understood, the
record's field rendered, every field cited); "generative" asks the chat model over the retrieved chunks;
"auto", the default, is grounded when the question is understood with confidence, and otherwise asks the
model, giving it the records the question names before the retrieved chunks.

Synchronous and thread-safe: the gRPC servicer runs it in worker threads, the benchmark and tests
call it directly.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from dyag_core.answering.grounded import GroundedAnswer, GroundedAnswerer
from dyag_core.catalog import Catalog
from dyag_core.dataset.templates import answer_summary
from dyag_core.rag import (
    NO_ANSWER,
    ContextChunk,
    RagError,
    abstention,
    build_messages,
    cited_entities,
    validate_collection_name,
    validate_question,
)
from dyag_llm import ChatModel, LLMSettings, open_chat_model
from dyag_rag_service.embeddings import open_cache
from dyag_rag_service.indexer import Indexer
from dyag_rag_service.rerank import load_reranker
from dyag_rag_service.retrieval import Retrieval, Retriever
from dyag_rag_service.settings import RagSettings
from dyag_rag_service.store import VectorStore

MODES = ("auto", "grounded", "generative")
GROUNDED_VERSIONS_KEPT = 8  # catalog versions whose answerer stays in memory (~0.3 s to build one again)
NOT_UNDERSTOOD = (
    "Je ne peux pas répondre à cette question à partir du catalogue : je n'y reconnais pas l'information demandée. "
    "Précisez l'application et ce que vous cherchez (statut, domaine, acteurs, contacts, adresse, dates…)."
)


def validate_mode(mode: str) -> str:
    mode = (mode or "auto").strip().lower()
    if mode not in MODES:
        raise RagError("invalid_mode", f"unknown answering mode {mode!r}; valid modes: {', '.join(MODES)}")
    return mode


class RagEngine:
    def __init__(self, settings: RagSettings, store: VectorStore | None = None):
        self.settings = settings
        self.store = store or VectorStore(settings)
        self.retriever = Retriever(
            self.store,
            settings.rag_embedder,
            candidates=settings.rag_candidates,
            reranker=load_reranker(settings.rag_reranker),
            dense_weight_unlinked=settings.rag_dense_weight_unlinked,
        )
        self.indexer = Indexer(
            self.store,
            settings.rag_embedder,
            settings.rag_dense_max_chars,
            settings.rag_embed_batch,
            open_cache(settings.rag_embedding_cache, settings.data_dir),
            settings.rag_dense_scope,
        )
        self.default_model = settings.rag_default_model or LLMSettings().spec()
        self._models: dict[str, ChatModel] = {}
        self._model_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._grounded: OrderedDict[tuple[str, str], GroundedAnswerer] = OrderedDict()  # the most recently used last

    # ------------------------------------------------------------------ catalogs (grounded answers)
    def register_catalog(self, name: str, version: str, catalog: Catalog) -> None:
        """The records grounded answers read, for a catalog version a collection holds (built once: ~0.3 s)."""
        if (name, version) not in self._grounded:
            answerer = GroundedAnswerer(catalog)
            with self._guard:
                self._grounded[(name, version)] = answerer
                while len(self._grounded) > GROUNDED_VERSIONS_KEPT:  # a catalog updated often: older versions go
                    self._grounded.popitem(last=False)

    def has_catalog(self, name: str, version: str) -> bool:
        with self._guard:
            if (name, version) in self._grounded:
                self._grounded.move_to_end((name, version))
                return True
        return False

    # ------------------------------------------------------------------ models
    def chat_model(self, spec: str) -> tuple[ChatModel, threading.Lock]:
        """One instance per spec, loaded on first use (a local model takes seconds to load)."""
        with self._guard:
            lock = self._model_locks.setdefault(spec, threading.Lock())
        with lock:
            if spec not in self._models:
                self._models[spec] = open_chat_model(spec)
        return self._models[spec], lock

    # ------------------------------------------------------------------ query
    def query(
        self,
        collection: str,
        question: str,
        *,
        n_chunks: int = 0,
        model: str = "",
        retrieve_only: bool = False,
        max_tokens: int = 0,
        temperature: float = 0.0,
        entity_filter: bool = True,
        dense: str = "auto",
        mode: str = "",
    ) -> dict[str, Any]:
        return self.query_batch(
            collection,
            [question],
            n_chunks=n_chunks,
            model=model,
            retrieve_only=retrieve_only,
            max_tokens=max_tokens,
            temperature=temperature,
            entity_filter=entity_filter,
            dense=dense,
            mode=mode,
        )[0]

    def query_batch(
        self,
        collection: str,
        questions: list[str],
        *,
        n_chunks: int = 0,
        model: str = "",
        retrieve_only: bool = False,
        max_tokens: int = 0,
        temperature: float = 0.0,
        entity_filter: bool = True,
        dense: str = "auto",
        mode: str = "",
    ) -> list[dict[str, Any]]:
        """Answers for many questions: each retrieved on its own, then one chat_batch call for all those that need the
        model (a local model generates them together, in groups of prompts of similar length)."""
        began = time.perf_counter()
        collection = validate_collection_name(collection)
        questions = [validate_question(q, self.settings.rag_max_question_chars) for q in questions]
        mode = validate_mode(mode or self.settings.rag_mode)
        n_chunks = n_chunks or self.settings.rag_default_n_chunks
        if not 1 <= n_chunks <= self.settings.rag_max_n_chunks:
            raise RagError(
                "invalid_n_chunks", f"n_chunks must be between 1 and {self.settings.rag_max_n_chunks}, not {n_chunks}"
            )
        responses, asking = [], []
        for question in questions:
            t = time.perf_counter()
            retrieval = self.retriever.retrieve(
                collection, question, n_chunks, entity_filter=entity_filter, dense=dense
            )
            response = _response(retrieval)
            if retrieval.abstain_reason:
                response["abstained"] = True
                response["abstain_reason"] = retrieval.abstain_reason
                response["mode"] = "grounded"  # refused without the model
                response["answer"] = (
                    abstention(retrieval.unknown)
                    if retrieval.unknown
                    else f"{NO_ANSWER} : la collection {collection} ne contient encore aucun extrait."
                )
            elif not retrieve_only:
                grounded = self._grounded_answer(retrieval, question, mode)
                if grounded is not None and (grounded.understood or mode == "grounded"):
                    _use_grounded(response, grounded)
                else:
                    if grounded is not None:  # how the question was read, even when the model answers it
                        response["confidence"], response["intents"] = (
                            round(grounded.confidence, 4),
                            list(grounded.intents),
                        )
                    asking.append((len(responses), question, retrieval, grounded))
            response["timings"]["total_ms"] = round((time.perf_counter() - t) * 1000, 3)
            responses.append(response)
        if asking:
            chat, lock = self.chat_model(model or self.default_model)
            budget = int(getattr(chat, "context_budget", 0) or 0)  # a small local model gets a compact context
            conversations = [build_messages(q, self._context(r, g), max_context_chars=budget) for _, q, r, g in asking]
            t = time.perf_counter()
            tokens = max_tokens or self.settings.rag_max_tokens
            if getattr(chat, "name", "").startswith("local:"):
                with lock:  # one generation at a time on a local model: they would only fight for the CPU
                    results = chat.chat_batch(conversations, max_tokens=tokens, temperature=temperature)
            elif len(conversations) == 1:
                results = [chat.chat(conversations[0], max_tokens=tokens, temperature=temperature)]
            else:
                results = chat.chat_batch(conversations, max_tokens=tokens, temperature=temperature)
            generate_ms = round((time.perf_counter() - t) * 1000, 3)
            for (i, _, _, _), result in zip(asking, results, strict=True):
                response = responses[i]
                response["mode"] = "generative"
                response["timings"]["generate_ms"] = generate_ms if len(asking) == 1 else round(result.latency_ms, 3)
                response["answer"] = result.text
                response["model"] = result.model
                response["tokens"] = {"prompt": result.prompt_tokens, "completion": result.completion_tokens}
                response["finish_reason"] = getattr(result, "finish_reason", "")
                cited = set(
                    cited_entities(result.text, [(s["entity_id"], s["entity_name"]) for s in response["sources"]])
                )
                for source in response["sources"]:
                    source["cited"] = source["entity_id"] in cited
                response["timings"]["total_ms"] = round(
                    response["timings"]["total_ms"] + response["timings"]["generate_ms"], 3
                )
        if len(questions) == 1:
            responses[0]["timings"]["total_ms"] = round((time.perf_counter() - began) * 1000, 3)
        return responses

    def _grounded_answer(self, retrieval: Retrieval, question: str, mode: str) -> GroundedAnswer | None:
        if mode == "generative":
            return None
        answerer = self._grounded.get((retrieval.catalog, retrieval.catalog_version))
        if answerer is None:
            if mode == "grounded":
                raise RagError(
                    "catalog_not_loaded",
                    f"grounded answers need the catalog {retrieval.catalog} version "
                    f"{retrieval.catalog_version} of collection {retrieval.collection}, which is not loaded",
                )
            return None
        return answerer.answer(question)

    def _context(self, retrieval: Retrieval, grounded: GroundedAnswer | None) -> list[ContextChunk]:
        """The model's context: the records the question names, summarised, then the retrieved chunks."""
        chunks = []
        answerer = self._grounded.get((retrieval.catalog, retrieval.catalog_version))
        if grounded is not None and grounded.entities and answerer is not None:
            for entity_id in grounded.entities[:2]:
                entity = answerer.by_id[entity_id]
                chunks.append(ContextChunk(entity.id, entity.name, answer_summary(entity).text))
        return chunks + [ContextChunk(h.entity_id, h.entity_name, h.text) for h in retrieval.hits]


def _use_grounded(response: dict[str, Any], g: GroundedAnswer) -> None:
    """A reply answered from the records: the answer, what it cites, how sure the reading of the question was."""
    response["answer"] = g.text or NOT_UNDERSTOOD
    response["mode"] = "grounded"
    response["model"] = ""
    response["citations"] = [
        {"entity_id": c.entity_id, "entity_name": c.entity_name, "field": c.field} for c in g.citations
    ]
    response["confidence"] = round(g.confidence, 4)
    response["intents"] = list(g.intents)
    response["key_facts"] = list(g.key_facts)
    response["abstained"] = g.kind in ("unknown_entity", "empty_field", "not_understood")
    if response["abstained"]:
        response["abstain_reason"] = g.kind
    cited = {c.entity_id for c in g.citations}
    known = {s["entity_id"] for s in response["sources"]}
    for source in response["sources"]:
        source["cited"] = source["entity_id"] in cited
    for c in g.citations:  # a listing cites records retrieval did not return
        if c.entity_id not in known:
            known.add(c.entity_id)
            response["sources"].append({"entity_id": c.entity_id, "entity_name": c.entity_name, "cited": True})


def _response(r: Retrieval) -> dict[str, Any]:
    sources: dict[str, dict[str, Any]] = {}
    for hit in r.hits:
        sources.setdefault(hit.entity_id, {"entity_id": hit.entity_id, "entity_name": hit.entity_name, "cited": False})
    return {
        "answer": "",
        "sources": list(sources.values()),
        "chunks": [
            {
                "id": h.chunk_id,
                "entity_id": h.entity_id,
                "entity_name": h.entity_name,
                "section": h.section,
                "part": h.part,
                "text": h.text,
                "rank": rank,
                "score": h.score,
                "bm25_rank": h.bm25_rank,
                "bm25_score": h.bm25_score,
                "dense_rank": h.dense_rank,
                "dense_similarity": h.dense_similarity,
                "rerank_score": h.rerank_score,
            }
            for rank, h in enumerate(r.hits, start=1)
        ],
        "timings": dict(r.timings),
        "tokens": {"prompt": 0, "completion": 0},
        "model": "",
        "linked_entities": [
            {"entity_id": m.entity_id, "name": m.name, "matched": m.matched, "kind": m.kind, "score": m.score}
            for m in r.linked
        ],
        "abstained": False,
        "abstain_reason": "",
        "unknown_mentions": list(r.unknown),
        "collection": r.collection,
        "catalog": r.catalog,
        "catalog_version": r.catalog_version,
        "notes": list(r.notes),
        "mode": "",
        "citations": [],
        "confidence": 0.0,
        "intents": [],
        "key_facts": [],
    }
