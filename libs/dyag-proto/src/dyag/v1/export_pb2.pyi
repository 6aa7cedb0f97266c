from google.protobuf import struct_pb2 as _struct_pb2
from dyag.v1 import jobs_pb2 as _jobs_pb2
from dyag.v1 import dataset_pb2 as _dataset_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExportProbe(_message.Message):
    __slots__ = ("id", "question", "expected_answer", "key_facts", "type", "negative")
    ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_ANSWER_FIELD_NUMBER: _ClassVar[int]
    KEY_FACTS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    id: str
    question: str
    expected_answer: str
    key_facts: _containers.RepeatedScalarFieldContainer[str]
    type: str
    negative: bool
    def __init__(self, id: _Optional[str] = ..., question: _Optional[str] = ..., expected_answer: _Optional[str] = ..., key_facts: _Optional[_Iterable[str]] = ..., type: _Optional[str] = ..., negative: _Optional[bool] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("model_id", "base_model", "adapter_dir", "quantizations", "ollama_name", "ollama_quantization", "mode", "system_prompt", "temperature", "top_p", "probe_count", "probes", "parity_threshold", "name", "correlation_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_DIR_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATIONS_FIELD_NUMBER: _ClassVar[int]
    OLLAMA_NAME_FIELD_NUMBER: _ClassVar[int]
    OLLAMA_QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    PROBE_COUNT_FIELD_NUMBER: _ClassVar[int]
    PROBES_FIELD_NUMBER: _ClassVar[int]
    PARITY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    base_model: str
    adapter_dir: str
    quantizations: _containers.RepeatedScalarFieldContainer[str]
    ollama_name: str
    ollama_quantization: str
    mode: str
    system_prompt: str
    temperature: float
    top_p: float
    probe_count: int
    probes: _containers.RepeatedCompositeFieldContainer[ExportProbe]
    parity_threshold: float
    name: str
    correlation_id: str
    def __init__(self, model_id: _Optional[str] = ..., base_model: _Optional[str] = ..., adapter_dir: _Optional[str] = ..., quantizations: _Optional[_Iterable[str]] = ..., ollama_name: _Optional[str] = ..., ollama_quantization: _Optional[str] = ..., mode: _Optional[str] = ..., system_prompt: _Optional[str] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., probe_count: _Optional[int] = ..., probes: _Optional[_Iterable[_Union[ExportProbe, _Mapping]]] = ..., parity_threshold: _Optional[float] = ..., name: _Optional[str] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class ExportFile(_message.Message):
    __slots__ = ("name", "kind", "quantization", "sha256", "size", "artifact")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    quantization: str
    sha256: str
    size: int
    artifact: _jobs_pb2.ArtifactRef
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., quantization: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ..., artifact: _Optional[_Union[_jobs_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class ParitySample(_message.Message):
    __slots__ = ("question", "hf_answer", "gguf_answer", "agree", "hf_correct", "gguf_correct")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    HF_ANSWER_FIELD_NUMBER: _ClassVar[int]
    GGUF_ANSWER_FIELD_NUMBER: _ClassVar[int]
    AGREE_FIELD_NUMBER: _ClassVar[int]
    HF_CORRECT_FIELD_NUMBER: _ClassVar[int]
    GGUF_CORRECT_FIELD_NUMBER: _ClassVar[int]
    question: str
    hf_answer: str
    gguf_answer: str
    agree: bool
    hf_correct: bool
    gguf_correct: bool
    def __init__(self, question: _Optional[str] = ..., hf_answer: _Optional[str] = ..., gguf_answer: _Optional[str] = ..., agree: _Optional[bool] = ..., hf_correct: _Optional[bool] = ..., gguf_correct: _Optional[bool] = ...) -> None: ...

class ParityLimits(_message.Message):
    __slots__ = ("max_mean_kld", "max_p99_kld", "min_top1_agreement", "max_perplexity_ratio")
    MAX_MEAN_KLD_FIELD_NUMBER: _ClassVar[int]
    MAX_P99_KLD_FIELD_NUMBER: _ClassVar[int]
    MIN_TOP1_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    MAX_PERPLEXITY_RATIO_FIELD_NUMBER: _ClassVar[int]
    max_mean_kld: float
    max_p99_kld: float
    min_top1_agreement: float
    max_perplexity_ratio: float
    def __init__(self, max_mean_kld: _Optional[float] = ..., max_p99_kld: _Optional[float] = ..., min_top1_agreement: _Optional[float] = ..., max_perplexity_ratio: _Optional[float] = ...) -> None: ...

class AdapterParity(_message.Message):
    __slots__ = ("adapter_kld", "margin", "z", "verdict")
    ADAPTER_KLD_FIELD_NUMBER: _ClassVar[int]
    MARGIN_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    adapter_kld: float
    margin: float
    z: float
    verdict: str
    def __init__(self, adapter_kld: _Optional[float] = ..., margin: _Optional[float] = ..., z: _Optional[float] = ..., verdict: _Optional[str] = ...) -> None: ...

class ParityResult(_message.Message):
    __slots__ = ("quantization", "probes", "agreement", "mean_token_f1", "hf_fact_accuracy", "gguf_fact_accuracy", "threshold", "passed", "reason", "samples", "seconds", "prompt_token_agreement", "max_accuracy_drop", "scored_tokens", "mean_kld", "p99_kld", "max_kld", "top1_agreement", "perplexity_hf", "perplexity_gguf", "perplexity_ratio", "limits", "conversations", "sequence_token_agreement", "chat_template", "adapter", "failed", "non_finite_tokens")
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    PROBES_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    MEAN_TOKEN_F1_FIELD_NUMBER: _ClassVar[int]
    HF_FACT_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    GGUF_FACT_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKEN_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    MAX_ACCURACY_DROP_FIELD_NUMBER: _ClassVar[int]
    SCORED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MEAN_KLD_FIELD_NUMBER: _ClassVar[int]
    P99_KLD_FIELD_NUMBER: _ClassVar[int]
    MAX_KLD_FIELD_NUMBER: _ClassVar[int]
    TOP1_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    PERPLEXITY_HF_FIELD_NUMBER: _ClassVar[int]
    PERPLEXITY_GGUF_FIELD_NUMBER: _ClassVar[int]
    PERPLEXITY_RATIO_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_TOKEN_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    CHAT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    NON_FINITE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    quantization: str
    probes: int
    agreement: float
    mean_token_f1: float
    hf_fact_accuracy: float
    gguf_fact_accuracy: float
    threshold: float
    passed: bool
    reason: str
    samples: _containers.RepeatedCompositeFieldContainer[ParitySample]
    seconds: float
    prompt_token_agreement: float
    max_accuracy_drop: float
    scored_tokens: int
    mean_kld: float
    p99_kld: float
    max_kld: float
    top1_agreement: float
    perplexity_hf: float
    perplexity_gguf: float
    perplexity_ratio: float
    limits: ParityLimits
    conversations: int
    sequence_token_agreement: float
    chat_template: str
    adapter: AdapterParity
    failed: _containers.RepeatedScalarFieldContainer[str]
    non_finite_tokens: int
    def __init__(self, quantization: _Optional[str] = ..., probes: _Optional[int] = ..., agreement: _Optional[float] = ..., mean_token_f1: _Optional[float] = ..., hf_fact_accuracy: _Optional[float] = ..., gguf_fact_accuracy: _Optional[float] = ..., threshold: _Optional[float] = ..., passed: _Optional[bool] = ..., reason: _Optional[str] = ..., samples: _Optional[_Iterable[_Union[ParitySample, _Mapping]]] = ..., seconds: _Optional[float] = ..., prompt_token_agreement: _Optional[float] = ..., max_accuracy_drop: _Optional[float] = ..., scored_tokens: _Optional[int] = ..., mean_kld: _Optional[float] = ..., p99_kld: _Optional[float] = ..., max_kld: _Optional[float] = ..., top1_agreement: _Optional[float] = ..., perplexity_hf: _Optional[float] = ..., perplexity_gguf: _Optional[float] = ..., perplexity_ratio: _Optional[float] = ..., limits: _Optional[_Union[ParityLimits, _Mapping]] = ..., conversations: _Optional[int] = ..., sequence_token_agreement: _Optional[float] = ..., chat_template: _Optional[str] = ..., adapter: _Optional[_Union[AdapterParity, _Mapping]] = ..., failed: _Optional[_Iterable[str]] = ..., non_finite_tokens: _Optional[int] = ...) -> None: ...

class OllamaModel(_message.Message):
    __slots__ = ("name", "created", "host", "command", "modelfile", "status")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    MODELFILE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    name: str
    created: bool
    host: str
    command: str
    modelfile: str
    status: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., created: _Optional[bool] = ..., host: _Optional[str] = ..., command: _Optional[str] = ..., modelfile: _Optional[str] = ..., status: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelExport(_message.Message):
    __slots__ = ("id", "name", "status", "error", "model_id", "base_model", "base_model_resolved", "architecture", "adapter_sha256", "dataset_id", "dataset_hash", "catalog", "catalog_version", "mode", "quantizations", "files", "parity", "ollama", "bundle_dir", "job_id", "created_at", "timings", "llama_cpp")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_SHA256_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_HASH_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATIONS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    PARITY_FIELD_NUMBER: _ClassVar[int]
    OLLAMA_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_DIR_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    LLAMA_CPP_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    status: str
    error: str
    model_id: str
    base_model: str
    base_model_resolved: str
    architecture: str
    adapter_sha256: str
    dataset_id: str
    dataset_hash: str
    catalog: str
    catalog_version: str
    mode: str
    quantizations: _containers.RepeatedScalarFieldContainer[str]
    files: _containers.RepeatedCompositeFieldContainer[ExportFile]
    parity: _containers.RepeatedCompositeFieldContainer[ParityResult]
    ollama: OllamaModel
    bundle_dir: str
    job_id: str
    created_at: str
    timings: _struct_pb2.Struct
    llama_cpp: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[str] = ..., error: _Optional[str] = ..., model_id: _Optional[str] = ..., base_model: _Optional[str] = ..., base_model_resolved: _Optional[str] = ..., architecture: _Optional[str] = ..., adapter_sha256: _Optional[str] = ..., dataset_id: _Optional[str] = ..., dataset_hash: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., mode: _Optional[str] = ..., quantizations: _Optional[_Iterable[str]] = ..., files: _Optional[_Iterable[_Union[ExportFile, _Mapping]]] = ..., parity: _Optional[_Iterable[_Union[ParityResult, _Mapping]]] = ..., ollama: _Optional[_Union[OllamaModel, _Mapping]] = ..., bundle_dir: _Optional[str] = ..., job_id: _Optional[str] = ..., created_at: _Optional[str] = ..., timings: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., llama_cpp: _Optional[str] = ...) -> None: ...

class GetExportRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListExportsRequest(_message.Message):
    __slots__ = ("model_id", "limit")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    limit: int
    def __init__(self, model_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListExportsResponse(_message.Message):
    __slots__ = ("exports",)
    EXPORTS_FIELD_NUMBER: _ClassVar[int]
    exports: _containers.RepeatedCompositeFieldContainer[ModelExport]
    def __init__(self, exports: _Optional[_Iterable[_Union[ModelExport, _Mapping]]] = ...) -> None: ...

class ReadExportFileRequest(_message.Message):
    __slots__ = ("export_id", "name")
    EXPORT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    export_id: str
    name: str
    def __init__(self, export_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ExportCompleted(_message.Message):
    __slots__ = ("export",)
    EXPORT_FIELD_NUMBER: _ClassVar[int]
    export: ModelExport
    def __init__(self, export: _Optional[_Union[ModelExport, _Mapping]] = ...) -> None: ...
