from dyag.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IndexRequest(_message.Message):
    __slots__ = ("collection", "catalog", "catalog_version", "rebuild", "correlation_id")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    REBUILD_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    collection: str
    catalog: str
    catalog_version: str
    rebuild: bool
    correlation_id: str
    def __init__(self, collection: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., rebuild: _Optional[bool] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("collection", "question", "n_chunks", "model", "retrieve_only", "max_tokens", "temperature", "no_entity_filter", "correlation_id", "mode")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    N_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RETRIEVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    NO_ENTITY_FILTER_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    question: str
    n_chunks: int
    model: str
    retrieve_only: bool
    max_tokens: int
    temperature: float
    no_entity_filter: bool
    correlation_id: str
    mode: str
    def __init__(self, collection: _Optional[str] = ..., question: _Optional[str] = ..., n_chunks: _Optional[int] = ..., model: _Optional[str] = ..., retrieve_only: _Optional[bool] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., no_entity_filter: _Optional[bool] = ..., correlation_id: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class Citation(_message.Message):
    __slots__ = ("entity_id", "entity_name", "field")
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    ENTITY_NAME_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    entity_id: str
    entity_name: str
    field: str
    def __init__(self, entity_id: _Optional[str] = ..., entity_name: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class RetrievedChunk(_message.Message):
    __slots__ = ("id", "entity_id", "entity_name", "section", "part", "text", "rank", "score", "bm25_rank", "bm25_score", "dense_rank", "dense_similarity", "rerank_score")
    ID_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    ENTITY_NAME_FIELD_NUMBER: _ClassVar[int]
    SECTION_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BM25_RANK_FIELD_NUMBER: _ClassVar[int]
    BM25_SCORE_FIELD_NUMBER: _ClassVar[int]
    DENSE_RANK_FIELD_NUMBER: _ClassVar[int]
    DENSE_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    RERANK_SCORE_FIELD_NUMBER: _ClassVar[int]
    id: str
    entity_id: str
    entity_name: str
    section: str
    part: int
    text: str
    rank: int
    score: float
    bm25_rank: int
    bm25_score: float
    dense_rank: int
    dense_similarity: float
    rerank_score: float
    def __init__(self, id: _Optional[str] = ..., entity_id: _Optional[str] = ..., entity_name: _Optional[str] = ..., section: _Optional[str] = ..., part: _Optional[int] = ..., text: _Optional[str] = ..., rank: _Optional[int] = ..., score: _Optional[float] = ..., bm25_rank: _Optional[int] = ..., bm25_score: _Optional[float] = ..., dense_rank: _Optional[int] = ..., dense_similarity: _Optional[float] = ..., rerank_score: _Optional[float] = ...) -> None: ...

class Source(_message.Message):
    __slots__ = ("entity_id", "entity_name", "cited")
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    ENTITY_NAME_FIELD_NUMBER: _ClassVar[int]
    CITED_FIELD_NUMBER: _ClassVar[int]
    entity_id: str
    entity_name: str
    cited: bool
    def __init__(self, entity_id: _Optional[str] = ..., entity_name: _Optional[str] = ..., cited: _Optional[bool] = ...) -> None: ...

class LinkedEntity(_message.Message):
    __slots__ = ("entity_id", "name", "matched", "kind", "score")
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    entity_id: str
    name: str
    matched: str
    kind: str
    score: float
    def __init__(self, entity_id: _Optional[str] = ..., name: _Optional[str] = ..., matched: _Optional[str] = ..., kind: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class QueryTimings(_message.Message):
    __slots__ = ("total_ms", "link_ms", "bm25_ms", "embed_ms", "dense_ms", "fusion_ms", "rerank_ms", "generate_ms")
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    LINK_MS_FIELD_NUMBER: _ClassVar[int]
    BM25_MS_FIELD_NUMBER: _ClassVar[int]
    EMBED_MS_FIELD_NUMBER: _ClassVar[int]
    DENSE_MS_FIELD_NUMBER: _ClassVar[int]
    FUSION_MS_FIELD_NUMBER: _ClassVar[int]
    RERANK_MS_FIELD_NUMBER: _ClassVar[int]
    GENERATE_MS_FIELD_NUMBER: _ClassVar[int]
    total_ms: float
    link_ms: float
    bm25_ms: float
    embed_ms: float
    dense_ms: float
    fusion_ms: float
    rerank_ms: float
    generate_ms: float
    def __init__(self, total_ms: _Optional[float] = ..., link_ms: _Optional[float] = ..., bm25_ms: _Optional[float] = ..., embed_ms: _Optional[float] = ..., dense_ms: _Optional[float] = ..., fusion_ms: _Optional[float] = ..., rerank_ms: _Optional[float] = ..., generate_ms: _Optional[float] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ("prompt", "completion")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    prompt: int
    completion: int
    def __init__(self, prompt: _Optional[int] = ..., completion: _Optional[int] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("answer", "sources", "chunks", "timings", "tokens", "model", "linked_entities", "abstained", "abstain_reason", "unknown_mentions", "collection", "catalog", "catalog_version", "notes", "mode", "citations", "confidence", "intents", "key_facts")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LINKED_ENTITIES_FIELD_NUMBER: _ClassVar[int]
    ABSTAINED_FIELD_NUMBER: _ClassVar[int]
    ABSTAIN_REASON_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_MENTIONS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    KEY_FACTS_FIELD_NUMBER: _ClassVar[int]
    answer: str
    sources: _containers.RepeatedCompositeFieldContainer[Source]
    chunks: _containers.RepeatedCompositeFieldContainer[RetrievedChunk]
    timings: QueryTimings
    tokens: TokenUsage
    model: str
    linked_entities: _containers.RepeatedCompositeFieldContainer[LinkedEntity]
    abstained: bool
    abstain_reason: str
    unknown_mentions: _containers.RepeatedScalarFieldContainer[str]
    collection: str
    catalog: str
    catalog_version: str
    notes: _containers.RepeatedScalarFieldContainer[str]
    mode: str
    citations: _containers.RepeatedCompositeFieldContainer[Citation]
    confidence: float
    intents: _containers.RepeatedScalarFieldContainer[str]
    key_facts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, answer: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[Source, _Mapping]]] = ..., chunks: _Optional[_Iterable[_Union[RetrievedChunk, _Mapping]]] = ..., timings: _Optional[_Union[QueryTimings, _Mapping]] = ..., tokens: _Optional[_Union[TokenUsage, _Mapping]] = ..., model: _Optional[str] = ..., linked_entities: _Optional[_Iterable[_Union[LinkedEntity, _Mapping]]] = ..., abstained: _Optional[bool] = ..., abstain_reason: _Optional[str] = ..., unknown_mentions: _Optional[_Iterable[str]] = ..., collection: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., notes: _Optional[_Iterable[str]] = ..., mode: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[Citation, _Mapping]]] = ..., confidence: _Optional[float] = ..., intents: _Optional[_Iterable[str]] = ..., key_facts: _Optional[_Iterable[str]] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class CollectionStats(_message.Message):
    __slots__ = ("collection", "catalog", "catalog_version", "entities", "chunks", "sections", "embedder", "dimension", "store", "indexed_at", "last_job_id", "follows_catalog")
    class SectionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    SECTIONS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDER_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    INDEXED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOWS_CATALOG_FIELD_NUMBER: _ClassVar[int]
    collection: str
    catalog: str
    catalog_version: str
    entities: int
    chunks: int
    sections: _containers.ScalarMap[str, int]
    embedder: str
    dimension: int
    store: str
    indexed_at: str
    last_job_id: str
    follows_catalog: bool
    def __init__(self, collection: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., entities: _Optional[int] = ..., chunks: _Optional[int] = ..., sections: _Optional[_Mapping[str, int]] = ..., embedder: _Optional[str] = ..., dimension: _Optional[int] = ..., store: _Optional[str] = ..., indexed_at: _Optional[str] = ..., last_job_id: _Optional[str] = ..., follows_catalog: _Optional[bool] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[CollectionStats]
    def __init__(self, collections: _Optional[_Iterable[_Union[CollectionStats, _Mapping]]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("collection", "entity_ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ENTITY_IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    entity_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., entity_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("collection", "deleted_chunks", "deleted_entities", "collection_deleted")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DELETED_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    DELETED_ENTITIES_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_DELETED_FIELD_NUMBER: _ClassVar[int]
    collection: str
    deleted_chunks: int
    deleted_entities: int
    collection_deleted: bool
    def __init__(self, collection: _Optional[str] = ..., deleted_chunks: _Optional[int] = ..., deleted_entities: _Optional[int] = ..., collection_deleted: _Optional[bool] = ...) -> None: ...

class RagIndexed(_message.Message):
    __slots__ = ("collection", "catalog", "catalog_version", "previous_version", "added", "changed", "removed", "chunks_embedded", "chunks_deleted", "chunks", "entities", "job_id")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_EMBEDDED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_DELETED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    collection: str
    catalog: str
    catalog_version: str
    previous_version: str
    added: _containers.RepeatedScalarFieldContainer[str]
    changed: _containers.RepeatedScalarFieldContainer[str]
    removed: _containers.RepeatedScalarFieldContainer[str]
    chunks_embedded: int
    chunks_deleted: int
    chunks: int
    entities: int
    job_id: str
    def __init__(self, collection: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., previous_version: _Optional[str] = ..., added: _Optional[_Iterable[str]] = ..., changed: _Optional[_Iterable[str]] = ..., removed: _Optional[_Iterable[str]] = ..., chunks_embedded: _Optional[int] = ..., chunks_deleted: _Optional[int] = ..., chunks: _Optional[int] = ..., entities: _Optional[int] = ..., job_id: _Optional[str] = ...) -> None: ...
