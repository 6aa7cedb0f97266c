"""RAG over a catalog, the pure part: chunks made for records, entity linking, rank fusion, prompts.

No vector store, no model and no numeric framework here: the rag-service puts these together with
ChromaDB, the embedder and BM25.
"""

from dyag_core.rag.chunks import SECTIONS, Chunk, chunk_catalog, chunk_entity, entity_of_chunk_id
from dyag_core.rag.errors import RagError, validate_collection_name, validate_question
from dyag_core.rag.fusion import reciprocal_rank_fusion
from dyag_core.rag.linking import EntityLinker, EntityNames, LinkedEntity, names_of, vocabularies
from dyag_core.rag.prompt import (
    COMPACT_SYSTEM_PROMPT,
    NO_ANSWER,
    SYSTEM_PROMPT,
    ContextChunk,
    abstention,
    build_messages,
    cited_entities,
    compact_chunks,
    format_context,
    is_abstention,
)
from dyag_core.rag.tokens import STOPWORDS, tokenize

__all__ = [
    "COMPACT_SYSTEM_PROMPT",
    "NO_ANSWER",
    "SECTIONS",
    "STOPWORDS",
    "SYSTEM_PROMPT",
    "Chunk",
    "ContextChunk",
    "EntityLinker",
    "EntityNames",
    "LinkedEntity",
    "RagError",
    "abstention",
    "build_messages",
    "chunk_catalog",
    "compact_chunks",
    "chunk_entity",
    "cited_entities",
    "entity_of_chunk_id",
    "format_context",
    "is_abstention",
    "names_of",
    "reciprocal_rank_fusion",
    "tokenize",
    "validate_collection_name",
    "validate_question",
    "vocabularies",
]
