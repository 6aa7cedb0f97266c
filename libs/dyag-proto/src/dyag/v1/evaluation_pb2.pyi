from google.protobuf import struct_pb2 as _struct_pb2
from dyag.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TestSet(_message.Message):
    __slots__ = ("dataset_id", "content", "artifact_digest", "split", "filename", "format", "manifest")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    content: bytes
    artifact_digest: str
    split: str
    filename: str
    format: str
    manifest: bytes
    def __init__(self, dataset_id: _Optional[str] = ..., content: _Optional[bytes] = ..., artifact_digest: _Optional[str] = ..., split: _Optional[str] = ..., filename: _Optional[str] = ..., format: _Optional[str] = ..., manifest: _Optional[bytes] = ...) -> None: ...

class Target(_message.Message):
    __slots__ = ("kind", "model", "base_url", "api_key_env", "host", "collection", "n_chunks", "llm", "approach", "training_cost_usd", "rag_mode", "artifact_digest")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ENV_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    N_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    LLM_FIELD_NUMBER: _ClassVar[int]
    APPROACH_FIELD_NUMBER: _ClassVar[int]
    TRAINING_COST_USD_FIELD_NUMBER: _ClassVar[int]
    RAG_MODE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    kind: str
    model: str
    base_url: str
    api_key_env: str
    host: str
    collection: str
    n_chunks: int
    llm: str
    approach: str
    training_cost_usd: float
    rag_mode: str
    artifact_digest: str
    def __init__(self, kind: _Optional[str] = ..., model: _Optional[str] = ..., base_url: _Optional[str] = ..., api_key_env: _Optional[str] = ..., host: _Optional[str] = ..., collection: _Optional[str] = ..., n_chunks: _Optional[int] = ..., llm: _Optional[str] = ..., approach: _Optional[str] = ..., training_cost_usd: _Optional[float] = ..., rag_mode: _Optional[str] = ..., artifact_digest: _Optional[str] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("test_set", "target", "name", "max_questions", "concurrency", "seed", "max_tokens", "temperature", "system_prompt", "catalog", "catalog_version", "judge_model", "skip_similarity", "correlation_id", "labels", "focus_entity_ids")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    JUDGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    SKIP_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    FOCUS_ENTITY_IDS_FIELD_NUMBER: _ClassVar[int]
    test_set: TestSet
    target: Target
    name: str
    max_questions: int
    concurrency: int
    seed: int
    max_tokens: int
    temperature: float
    system_prompt: str
    catalog: str
    catalog_version: str
    judge_model: str
    skip_similarity: bool
    correlation_id: str
    labels: _containers.ScalarMap[str, str]
    focus_entity_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, test_set: _Optional[_Union[TestSet, _Mapping]] = ..., target: _Optional[_Union[Target, _Mapping]] = ..., name: _Optional[str] = ..., max_questions: _Optional[int] = ..., concurrency: _Optional[int] = ..., seed: _Optional[int] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., system_prompt: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., judge_model: _Optional[str] = ..., skip_similarity: _Optional[bool] = ..., correlation_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., focus_entity_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class EvaluationSummary(_message.Message):
    __slots__ = ("accuracy", "precision", "recall", "f1_score", "average_generation_time_ms", "questions", "correct", "failed", "errors", "exact_match", "fact_accuracy", "semantic_similarity", "hallucination_rate", "abstention_rate", "judge_score", "latency_p50_ms", "latency_p95_ms", "prompt_tokens", "completion_tokens", "cost_usd", "cost_per_1000_questions_usd")
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_SCORE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_GENERATION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    EXACT_MATCH_FIELD_NUMBER: _ClassVar[int]
    FACT_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    HALLUCINATION_RATE_FIELD_NUMBER: _ClassVar[int]
    ABSTENTION_RATE_FIELD_NUMBER: _ClassVar[int]
    JUDGE_SCORE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    COST_PER_1000_QUESTIONS_USD_FIELD_NUMBER: _ClassVar[int]
    accuracy: float
    precision: float
    recall: float
    f1_score: float
    average_generation_time_ms: float
    questions: int
    correct: int
    failed: int
    errors: int
    exact_match: float
    fact_accuracy: float
    semantic_similarity: float
    hallucination_rate: float
    abstention_rate: float
    judge_score: float
    latency_p50_ms: float
    latency_p95_ms: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cost_per_1000_questions_usd: float
    def __init__(self, accuracy: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1_score: _Optional[float] = ..., average_generation_time_ms: _Optional[float] = ..., questions: _Optional[int] = ..., correct: _Optional[int] = ..., failed: _Optional[int] = ..., errors: _Optional[int] = ..., exact_match: _Optional[float] = ..., fact_accuracy: _Optional[float] = ..., semantic_similarity: _Optional[float] = ..., hallucination_rate: _Optional[float] = ..., abstention_rate: _Optional[float] = ..., judge_score: _Optional[float] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., cost_per_1000_questions_usd: _Optional[float] = ...) -> None: ...

class EvaluationRun(_message.Message):
    __slots__ = ("id", "name", "status", "target", "approach", "model", "test_set", "test_set_fingerprint", "dataset_id", "catalog", "catalog_version", "summary", "artifacts", "error", "created_at", "finished_at", "correlation_id", "labels", "params")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    APPROACH_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    TEST_SET_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    status: str
    target: Target
    approach: str
    model: str
    test_set: str
    test_set_fingerprint: str
    dataset_id: str
    catalog: str
    catalog_version: str
    summary: EvaluationSummary
    artifacts: _containers.RepeatedCompositeFieldContainer[_jobs_pb2.ArtifactRef]
    error: str
    created_at: str
    finished_at: str
    correlation_id: str
    labels: _containers.ScalarMap[str, str]
    params: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[str] = ..., target: _Optional[_Union[Target, _Mapping]] = ..., approach: _Optional[str] = ..., model: _Optional[str] = ..., test_set: _Optional[str] = ..., test_set_fingerprint: _Optional[str] = ..., dataset_id: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., summary: _Optional[_Union[EvaluationSummary, _Mapping]] = ..., artifacts: _Optional[_Iterable[_Union[_jobs_pb2.ArtifactRef, _Mapping]]] = ..., error: _Optional[str] = ..., created_at: _Optional[str] = ..., finished_at: _Optional[str] = ..., correlation_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("target_kind", "dataset_id", "status", "limit")
    TARGET_KIND_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    target_kind: str
    dataset_id: str
    status: str
    limit: int
    def __init__(self, target_kind: _Optional[str] = ..., dataset_id: _Optional[str] = ..., status: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[EvaluationRun]
    def __init__(self, runs: _Optional[_Iterable[_Union[EvaluationRun, _Mapping]]] = ...) -> None: ...

class GetReportRequest(_message.Message):
    __slots__ = ("id", "format")
    ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    id: str
    format: str
    def __init__(self, id: _Optional[str] = ..., format: _Optional[str] = ...) -> None: ...

class Report(_message.Message):
    __slots__ = ("run_id", "format", "media_type", "filename", "content")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    format: str
    media_type: str
    filename: str
    content: bytes
    def __init__(self, run_id: _Optional[str] = ..., format: _Optional[str] = ..., media_type: _Optional[str] = ..., filename: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class CompareRequest(_message.Message):
    __slots__ = ("run_ids", "results", "baseline", "catalog_size", "title", "notes")
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    CATALOG_SIZE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    results: _containers.RepeatedScalarFieldContainer[bytes]
    baseline: int
    catalog_size: int
    title: str
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_ids: _Optional[_Iterable[str]] = ..., results: _Optional[_Iterable[bytes]] = ..., baseline: _Optional[int] = ..., catalog_size: _Optional[int] = ..., title: _Optional[str] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("run_ids", "names", "baseline", "recommended", "recommendation", "same_test_set", "warnings", "comparison", "markdown", "artifacts", "html")
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_FIELD_NUMBER: _ClassVar[int]
    SAME_TEST_SET_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    MARKDOWN_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    HTML_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    names: _containers.RepeatedScalarFieldContainer[str]
    baseline: int
    recommended: str
    recommendation: str
    same_test_set: bool
    warnings: _containers.RepeatedScalarFieldContainer[str]
    comparison: _struct_pb2.Struct
    markdown: str
    artifacts: _containers.RepeatedCompositeFieldContainer[_jobs_pb2.ArtifactRef]
    html: str
    def __init__(self, run_ids: _Optional[_Iterable[str]] = ..., names: _Optional[_Iterable[str]] = ..., baseline: _Optional[int] = ..., recommended: _Optional[str] = ..., recommendation: _Optional[str] = ..., same_test_set: _Optional[bool] = ..., warnings: _Optional[_Iterable[str]] = ..., comparison: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., markdown: _Optional[str] = ..., artifacts: _Optional[_Iterable[_Union[_jobs_pb2.ArtifactRef, _Mapping]]] = ..., html: _Optional[str] = ...) -> None: ...

class GateThresholds(_message.Message):
    __slots__ = ("min_absolute", "min_relative", "min_accuracy")
    MIN_ABSOLUTE_FIELD_NUMBER: _ClassVar[int]
    MIN_RELATIVE_FIELD_NUMBER: _ClassVar[int]
    MIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    min_absolute: float
    min_relative: float
    min_accuracy: float
    def __init__(self, min_absolute: _Optional[float] = ..., min_relative: _Optional[float] = ..., min_accuracy: _Optional[float] = ...) -> None: ...

class GateRequest(_message.Message):
    __slots__ = ("champion_run_id", "challenger_run_id", "changed_entity_ids", "thresholds")
    CHAMPION_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGED_ENTITY_IDS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    champion_run_id: str
    challenger_run_id: str
    changed_entity_ids: _containers.RepeatedScalarFieldContainer[str]
    thresholds: GateThresholds
    def __init__(self, champion_run_id: _Optional[str] = ..., challenger_run_id: _Optional[str] = ..., changed_entity_ids: _Optional[_Iterable[str]] = ..., thresholds: _Optional[_Union[GateThresholds, _Mapping]] = ...) -> None: ...

class SubsetComparison(_message.Message):
    __slots__ = ("name", "questions", "entities", "champion_correct", "challenger_correct", "champion_accuracy", "challenger_accuracy", "delta", "ci_low", "ci_high", "p_value", "test", "significant")
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_CORRECT_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_CORRECT_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANT_FIELD_NUMBER: _ClassVar[int]
    name: str
    questions: int
    entities: int
    champion_correct: int
    challenger_correct: int
    champion_accuracy: float
    challenger_accuracy: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    significant: bool
    def __init__(self, name: _Optional[str] = ..., questions: _Optional[int] = ..., entities: _Optional[int] = ..., champion_correct: _Optional[int] = ..., challenger_correct: _Optional[int] = ..., champion_accuracy: _Optional[float] = ..., challenger_accuracy: _Optional[float] = ..., delta: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., p_value: _Optional[float] = ..., test: _Optional[str] = ..., significant: _Optional[bool] = ...) -> None: ...

class GateReport(_message.Message):
    __slots__ = ("promote", "decision", "reasons", "changed", "unchanged", "overall", "champion_run_id", "challenger_run_id", "thresholds", "changed_entity_ids", "summary")
    PROMOTE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    OVERALL_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_ENTITY_IDS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    promote: bool
    decision: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    changed: SubsetComparison
    unchanged: SubsetComparison
    overall: SubsetComparison
    champion_run_id: str
    challenger_run_id: str
    thresholds: GateThresholds
    changed_entity_ids: _containers.RepeatedScalarFieldContainer[str]
    summary: str
    def __init__(self, promote: _Optional[bool] = ..., decision: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ..., changed: _Optional[_Union[SubsetComparison, _Mapping]] = ..., unchanged: _Optional[_Union[SubsetComparison, _Mapping]] = ..., overall: _Optional[_Union[SubsetComparison, _Mapping]] = ..., champion_run_id: _Optional[str] = ..., challenger_run_id: _Optional[str] = ..., thresholds: _Optional[_Union[GateThresholds, _Mapping]] = ..., changed_entity_ids: _Optional[_Iterable[str]] = ..., summary: _Optional[str] = ...) -> None: ...

class EvaluationCompleted(_message.Message):
    __slots__ = ("run_id", "name", "target", "approach", "model", "test_set", "test_set_fingerprint", "dataset_id", "catalog", "catalog_version", "summary", "artifacts", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    APPROACH_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    TEST_SET_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    name: str
    target: Target
    approach: str
    model: str
    test_set: str
    test_set_fingerprint: str
    dataset_id: str
    catalog: str
    catalog_version: str
    summary: EvaluationSummary
    artifacts: _containers.RepeatedCompositeFieldContainer[_jobs_pb2.ArtifactRef]
    labels: _containers.ScalarMap[str, str]
    def __init__(self, run_id: _Optional[str] = ..., name: _Optional[str] = ..., target: _Optional[_Union[Target, _Mapping]] = ..., approach: _Optional[str] = ..., model: _Optional[str] = ..., test_set: _Optional[str] = ..., test_set_fingerprint: _Optional[str] = ..., dataset_id: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., summary: _Optional[_Union[EvaluationSummary, _Mapping]] = ..., artifacts: _Optional[_Iterable[_Union[_jobs_pb2.ArtifactRef, _Mapping]]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...
