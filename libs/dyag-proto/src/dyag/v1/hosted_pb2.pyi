from google.protobuf import struct_pb2 as _struct_pb2
from dyag.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Hyperparameters(_message.Message):
    __slots__ = ("n_epochs", "batch_size", "learning_rate_multiplier")
    N_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    def __init__(self, n_epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate_multiplier: _Optional[float] = ...) -> None: ...

class UploadedDataset(_message.Message):
    __slots__ = ("train", "validation", "name", "catalog", "catalog_version")
    TRAIN_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    train: bytes
    validation: bytes
    name: str
    catalog: str
    catalog_version: str
    def __init__(self, train: _Optional[bytes] = ..., validation: _Optional[bytes] = ..., name: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ...) -> None: ...

class GateOverrides(_message.Message):
    __slots__ = ("allow_pii", "redact_pii", "ignore_format_errors", "ignore_budget", "budget_usd")
    ALLOW_PII_FIELD_NUMBER: _ClassVar[int]
    REDACT_PII_FIELD_NUMBER: _ClassVar[int]
    IGNORE_FORMAT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    IGNORE_BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    allow_pii: bool
    redact_pii: bool
    ignore_format_errors: bool
    ignore_budget: bool
    budget_usd: float
    def __init__(self, allow_pii: _Optional[bool] = ..., redact_pii: _Optional[bool] = ..., ignore_format_errors: _Optional[bool] = ..., ignore_budget: _Optional[bool] = ..., budget_usd: _Optional[float] = ...) -> None: ...

class TrainRequest(_message.Message):
    __slots__ = ("dataset_id", "uploaded", "base_model", "hyperparameters", "suffix", "seed", "gates", "correlation_id")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SUFFIX_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    GATES_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    uploaded: UploadedDataset
    base_model: str
    hyperparameters: Hyperparameters
    suffix: str
    seed: int
    gates: GateOverrides
    correlation_id: str
    def __init__(self, dataset_id: _Optional[str] = ..., uploaded: _Optional[_Union[UploadedDataset, _Mapping]] = ..., base_model: _Optional[str] = ..., hyperparameters: _Optional[_Union[Hyperparameters, _Mapping]] = ..., suffix: _Optional[str] = ..., seed: _Optional[int] = ..., gates: _Optional[_Union[GateOverrides, _Mapping]] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class SmokeAnswer(_message.Message):
    __slots__ = ("question", "answer", "error", "latency_ms")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    question: str
    answer: str
    error: str
    latency_ms: float
    def __init__(self, question: _Optional[str] = ..., answer: _Optional[str] = ..., error: _Optional[str] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class CostSummary(_message.Message):
    __slots__ = ("estimated_usd", "actual_usd", "billed_tokens_per_epoch", "trained_tokens", "price_per_million", "epochs")
    ESTIMATED_USD_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_USD_FIELD_NUMBER: _ClassVar[int]
    BILLED_TOKENS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TRAINED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    estimated_usd: float
    actual_usd: float
    billed_tokens_per_epoch: int
    trained_tokens: int
    price_per_million: float
    epochs: int
    def __init__(self, estimated_usd: _Optional[float] = ..., actual_usd: _Optional[float] = ..., billed_tokens_per_epoch: _Optional[int] = ..., trained_tokens: _Optional[int] = ..., price_per_million: _Optional[float] = ..., epochs: _Optional[int] = ...) -> None: ...

class HostedModel(_message.Message):
    __slots__ = ("id", "target", "base_model", "provider", "job_id", "remote_job_id", "dataset_id", "dataset_name", "catalog", "catalog_version", "train_hash", "validation_hash", "hyperparameters", "cost", "created_at", "training_seconds", "smoke_test", "card", "lineage")
    ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REMOTE_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAIN_HASH_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_HASH_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TRAINING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SMOKE_TEST_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    target: str
    base_model: str
    provider: str
    job_id: str
    remote_job_id: str
    dataset_id: str
    dataset_name: str
    catalog: str
    catalog_version: str
    train_hash: str
    validation_hash: str
    hyperparameters: Hyperparameters
    cost: CostSummary
    created_at: str
    training_seconds: float
    smoke_test: _containers.RepeatedCompositeFieldContainer[SmokeAnswer]
    card: _jobs_pb2.ArtifactRef
    lineage: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., target: _Optional[str] = ..., base_model: _Optional[str] = ..., provider: _Optional[str] = ..., job_id: _Optional[str] = ..., remote_job_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., dataset_name: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., train_hash: _Optional[str] = ..., validation_hash: _Optional[str] = ..., hyperparameters: _Optional[_Union[Hyperparameters, _Mapping]] = ..., cost: _Optional[_Union[CostSummary, _Mapping]] = ..., created_at: _Optional[str] = ..., training_seconds: _Optional[float] = ..., smoke_test: _Optional[_Iterable[_Union[SmokeAnswer, _Mapping]]] = ..., card: _Optional[_Union[_jobs_pb2.ArtifactRef, _Mapping]] = ..., lineage: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("base_model", "dataset_id")
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    base_model: str
    dataset_id: str
    def __init__(self, base_model: _Optional[str] = ..., dataset_id: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[HostedModel]
    def __init__(self, models: _Optional[_Iterable[_Union[HostedModel, _Mapping]]] = ...) -> None: ...

class TrainingProgress(_message.Message):
    __slots__ = ("job_id", "remote_job_id", "status", "step", "total_steps", "train_loss", "valid_loss", "train_mean_token_accuracy", "valid_mean_token_accuracy", "full_valid_loss", "message", "level", "remote_event_id", "created_at")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REMOTE_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    VALID_LOSS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_MEAN_TOKEN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    VALID_MEAN_TOKEN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    FULL_VALID_LOSS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    REMOTE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    remote_job_id: str
    status: str
    step: int
    total_steps: int
    train_loss: float
    valid_loss: float
    train_mean_token_accuracy: float
    valid_mean_token_accuracy: float
    full_valid_loss: float
    message: str
    level: str
    remote_event_id: str
    created_at: str
    def __init__(self, job_id: _Optional[str] = ..., remote_job_id: _Optional[str] = ..., status: _Optional[str] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., train_loss: _Optional[float] = ..., valid_loss: _Optional[float] = ..., train_mean_token_accuracy: _Optional[float] = ..., valid_mean_token_accuracy: _Optional[float] = ..., full_valid_loss: _Optional[float] = ..., message: _Optional[str] = ..., level: _Optional[str] = ..., remote_event_id: _Optional[str] = ..., created_at: _Optional[str] = ...) -> None: ...

class ModelRegistered(_message.Message):
    __slots__ = ("model_id", "target", "base_model", "job_id", "remote_job_id", "dataset_id", "catalog", "catalog_version", "train_hash", "cost_usd", "card")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REMOTE_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAIN_HASH_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    target: str
    base_model: str
    job_id: str
    remote_job_id: str
    dataset_id: str
    catalog: str
    catalog_version: str
    train_hash: str
    cost_usd: float
    card: _jobs_pb2.ArtifactRef
    def __init__(self, model_id: _Optional[str] = ..., target: _Optional[str] = ..., base_model: _Optional[str] = ..., job_id: _Optional[str] = ..., remote_job_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., train_hash: _Optional[str] = ..., cost_usd: _Optional[float] = ..., card: _Optional[_Union[_jobs_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...
