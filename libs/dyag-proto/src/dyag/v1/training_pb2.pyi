from google.protobuf import struct_pb2 as _struct_pb2
from dyag.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoraTrainingData(_message.Message):
    __slots__ = ("dataset_id", "train_content", "validation_content", "filename")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TRAIN_CONTENT_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_CONTENT_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    train_content: bytes
    validation_content: bytes
    filename: str
    def __init__(self, dataset_id: _Optional[str] = ..., train_content: _Optional[bytes] = ..., validation_content: _Optional[bytes] = ..., filename: _Optional[str] = ...) -> None: ...

class LoraConfig(_message.Message):
    __slots__ = ("base_model", "preset", "r", "lora_alpha", "lora_dropout", "target_modules", "learning_rate", "epochs", "max_steps", "batch_size", "warmup_ratio", "lr_scheduler", "weight_decay", "max_grad_norm", "seed", "max_seq_len", "packing", "precision", "load_in_4bit", "use_unsloth", "eval_steps", "checkpoint_steps", "logging_steps", "tracking", "run_name")
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    R_FIELD_NUMBER: _ClassVar[int]
    LORA_ALPHA_FIELD_NUMBER: _ClassVar[int]
    LORA_DROPOUT_FIELD_NUMBER: _ClassVar[int]
    TARGET_MODULES_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    WARMUP_RATIO_FIELD_NUMBER: _ClassVar[int]
    LR_SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    MAX_GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MAX_SEQ_LEN_FIELD_NUMBER: _ClassVar[int]
    PACKING_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    LOAD_IN_4BIT_FIELD_NUMBER: _ClassVar[int]
    USE_UNSLOTH_FIELD_NUMBER: _ClassVar[int]
    EVAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_STEPS_FIELD_NUMBER: _ClassVar[int]
    LOGGING_STEPS_FIELD_NUMBER: _ClassVar[int]
    TRACKING_FIELD_NUMBER: _ClassVar[int]
    RUN_NAME_FIELD_NUMBER: _ClassVar[int]
    base_model: str
    preset: str
    r: int
    lora_alpha: int
    lora_dropout: float
    target_modules: _containers.RepeatedScalarFieldContainer[str]
    learning_rate: float
    epochs: int
    max_steps: int
    batch_size: int
    warmup_ratio: float
    lr_scheduler: str
    weight_decay: float
    max_grad_norm: float
    seed: int
    max_seq_len: int
    packing: bool
    precision: str
    load_in_4bit: bool
    use_unsloth: bool
    eval_steps: int
    checkpoint_steps: int
    logging_steps: int
    tracking: str
    run_name: str
    def __init__(self, base_model: _Optional[str] = ..., preset: _Optional[str] = ..., r: _Optional[int] = ..., lora_alpha: _Optional[int] = ..., lora_dropout: _Optional[float] = ..., target_modules: _Optional[_Iterable[str]] = ..., learning_rate: _Optional[float] = ..., epochs: _Optional[int] = ..., max_steps: _Optional[int] = ..., batch_size: _Optional[int] = ..., warmup_ratio: _Optional[float] = ..., lr_scheduler: _Optional[str] = ..., weight_decay: _Optional[float] = ..., max_grad_norm: _Optional[float] = ..., seed: _Optional[int] = ..., max_seq_len: _Optional[int] = ..., packing: _Optional[bool] = ..., precision: _Optional[str] = ..., load_in_4bit: _Optional[bool] = ..., use_unsloth: _Optional[bool] = ..., eval_steps: _Optional[int] = ..., checkpoint_steps: _Optional[int] = ..., logging_steps: _Optional[int] = ..., tracking: _Optional[str] = ..., run_name: _Optional[str] = ...) -> None: ...

class LoraTrainRequest(_message.Message):
    __slots__ = ("data", "config", "name", "correlation_id", "init_model_id")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    INIT_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    data: LoraTrainingData
    config: LoraConfig
    name: str
    correlation_id: str
    init_model_id: str
    def __init__(self, data: _Optional[_Union[LoraTrainingData, _Mapping]] = ..., config: _Optional[_Union[LoraConfig, _Mapping]] = ..., name: _Optional[str] = ..., correlation_id: _Optional[str] = ..., init_model_id: _Optional[str] = ...) -> None: ...

class LoraModel(_message.Message):
    __slots__ = ("id", "name", "base_model", "base_model_resolved", "target", "job_id", "dataset_id", "dataset_hash", "validation_hash", "catalog", "catalog_version", "hyperparameters", "metrics", "artifacts", "created_at", "hardware", "precision", "backend", "init_model_id", "loss_history")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_HASH_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_HASH_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    INIT_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    LOSS_HISTORY_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    base_model: str
    base_model_resolved: str
    target: str
    job_id: str
    dataset_id: str
    dataset_hash: str
    validation_hash: str
    catalog: str
    catalog_version: str
    hyperparameters: _struct_pb2.Struct
    metrics: _struct_pb2.Struct
    artifacts: _containers.RepeatedCompositeFieldContainer[_jobs_pb2.ArtifactRef]
    created_at: str
    hardware: str
    precision: str
    backend: str
    init_model_id: str
    loss_history: _containers.RepeatedCompositeFieldContainer[LossPoint]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., base_model: _Optional[str] = ..., base_model_resolved: _Optional[str] = ..., target: _Optional[str] = ..., job_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., dataset_hash: _Optional[str] = ..., validation_hash: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., hyperparameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metrics: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., artifacts: _Optional[_Iterable[_Union[_jobs_pb2.ArtifactRef, _Mapping]]] = ..., created_at: _Optional[str] = ..., hardware: _Optional[str] = ..., precision: _Optional[str] = ..., backend: _Optional[str] = ..., init_model_id: _Optional[str] = ..., loss_history: _Optional[_Iterable[_Union[LossPoint, _Mapping]]] = ...) -> None: ...

class LossPoint(_message.Message):
    __slots__ = ("step", "loss", "eval_loss")
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    EVAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    step: int
    loss: float
    eval_loss: float
    def __init__(self, step: _Optional[int] = ..., loss: _Optional[float] = ..., eval_loss: _Optional[float] = ...) -> None: ...

class GetLoraModelRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListLoraModelsRequest(_message.Message):
    __slots__ = ("base_model", "dataset_id", "limit")
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    base_model: str
    dataset_id: str
    limit: int
    def __init__(self, base_model: _Optional[str] = ..., dataset_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListLoraModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[LoraModel]
    def __init__(self, models: _Optional[_Iterable[_Union[LoraModel, _Mapping]]] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class Conversation(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("model_id", "base_model", "conversations", "max_tokens", "temperature")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    base_model: str
    conversations: _containers.RepeatedCompositeFieldContainer[Conversation]
    max_tokens: int
    temperature: float
    def __init__(self, model_id: _Optional[str] = ..., base_model: _Optional[str] = ..., conversations: _Optional[_Iterable[_Union[Conversation, _Mapping]]] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ...) -> None: ...

class Generation(_message.Message):
    __slots__ = ("text", "prompt_tokens", "completion_tokens")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    text: str
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, text: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("generations", "model", "latency_ms")
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    generations: _containers.RepeatedCompositeFieldContainer[Generation]
    model: str
    latency_ms: float
    def __init__(self, generations: _Optional[_Iterable[_Union[Generation, _Mapping]]] = ..., model: _Optional[str] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class LoraTrainingProgress(_message.Message):
    __slots__ = ("job_id", "step", "total_steps", "epoch", "loss", "eval_loss", "learning_rate", "tokens_per_second", "eta_seconds")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    EVAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    step: int
    total_steps: int
    epoch: float
    loss: float
    eval_loss: float
    learning_rate: float
    tokens_per_second: float
    eta_seconds: float
    def __init__(self, job_id: _Optional[str] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., epoch: _Optional[float] = ..., loss: _Optional[float] = ..., eval_loss: _Optional[float] = ..., learning_rate: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., eta_seconds: _Optional[float] = ...) -> None: ...

class LoraModelTrained(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: LoraModel
    def __init__(self, model: _Optional[_Union[LoraModel, _Mapping]] = ...) -> None: ...
