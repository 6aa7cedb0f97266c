from dyag.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BuildDatasetRequest(_message.Message):
    __slots__ = ("catalog", "catalog_version", "num_questions", "question_types", "variations", "add_negatives", "seed", "split_strategy", "split_ratios", "formats", "system_prompt", "correlation_id", "base_dataset_id", "fit_to_catalog", "focus_entity_ids", "replay_fraction")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    NUM_QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    QUESTION_TYPES_FIELD_NUMBER: _ClassVar[int]
    VARIATIONS_FIELD_NUMBER: _ClassVar[int]
    ADD_NEGATIVES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SPLIT_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SPLIT_RATIOS_FIELD_NUMBER: _ClassVar[int]
    FORMATS_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    FIT_TO_CATALOG_FIELD_NUMBER: _ClassVar[int]
    FOCUS_ENTITY_IDS_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FRACTION_FIELD_NUMBER: _ClassVar[int]
    catalog: str
    catalog_version: str
    num_questions: int
    question_types: _containers.RepeatedScalarFieldContainer[str]
    variations: int
    add_negatives: bool
    seed: int
    split_strategy: str
    split_ratios: _containers.RepeatedScalarFieldContainer[float]
    formats: _containers.RepeatedScalarFieldContainer[str]
    system_prompt: str
    correlation_id: str
    base_dataset_id: str
    fit_to_catalog: bool
    focus_entity_ids: _containers.RepeatedScalarFieldContainer[str]
    replay_fraction: float
    def __init__(self, catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., num_questions: _Optional[int] = ..., question_types: _Optional[_Iterable[str]] = ..., variations: _Optional[int] = ..., add_negatives: _Optional[bool] = ..., seed: _Optional[int] = ..., split_strategy: _Optional[str] = ..., split_ratios: _Optional[_Iterable[float]] = ..., formats: _Optional[_Iterable[str]] = ..., system_prompt: _Optional[str] = ..., correlation_id: _Optional[str] = ..., base_dataset_id: _Optional[str] = ..., fit_to_catalog: _Optional[bool] = ..., focus_entity_ids: _Optional[_Iterable[str]] = ..., replay_fraction: _Optional[float] = ...) -> None: ...

class PlanRequest(_message.Message):
    __slots__ = ("catalog", "catalog_version", "question_types", "variations", "add_negatives")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    QUESTION_TYPES_FIELD_NUMBER: _ClassVar[int]
    VARIATIONS_FIELD_NUMBER: _ClassVar[int]
    ADD_NEGATIVES_FIELD_NUMBER: _ClassVar[int]
    catalog: str
    catalog_version: str
    question_types: _containers.RepeatedScalarFieldContainer[str]
    variations: int
    add_negatives: bool
    def __init__(self, catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., question_types: _Optional[_Iterable[str]] = ..., variations: _Optional[int] = ..., add_negatives: _Optional[bool] = ...) -> None: ...

class DatasetPlan(_message.Message):
    __slots__ = ("entities", "question_types", "variations", "max_examples", "per_type", "formula")
    class PerTypeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    QUESTION_TYPES_FIELD_NUMBER: _ClassVar[int]
    VARIATIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    PER_TYPE_FIELD_NUMBER: _ClassVar[int]
    FORMULA_FIELD_NUMBER: _ClassVar[int]
    entities: int
    question_types: int
    variations: int
    max_examples: int
    per_type: _containers.ScalarMap[str, int]
    formula: str
    def __init__(self, entities: _Optional[int] = ..., question_types: _Optional[int] = ..., variations: _Optional[int] = ..., max_examples: _Optional[int] = ..., per_type: _Optional[_Mapping[str, int]] = ..., formula: _Optional[str] = ...) -> None: ...

class DatasetFile(_message.Message):
    __slots__ = ("split", "format", "artifact")
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    split: str
    format: str
    artifact: _jobs_pb2.ArtifactRef
    def __init__(self, split: _Optional[str] = ..., format: _Optional[str] = ..., artifact: _Optional[_Union[_jobs_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("id", "catalog", "catalog_version", "split_counts", "type_counts", "files", "plan", "created_at", "base_dataset_id", "regenerated_examples", "warnings", "focus_entity_ids", "replay_fraction", "changed_entity_ids")
    class SplitCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class TypeCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    SPLIT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    TYPE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    BASE_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    REGENERATED_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    FOCUS_ENTITY_IDS_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FRACTION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_ENTITY_IDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    catalog: str
    catalog_version: str
    split_counts: _containers.ScalarMap[str, int]
    type_counts: _containers.ScalarMap[str, int]
    files: _containers.RepeatedCompositeFieldContainer[DatasetFile]
    plan: DatasetPlan
    created_at: str
    base_dataset_id: str
    regenerated_examples: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    focus_entity_ids: _containers.RepeatedScalarFieldContainer[str]
    replay_fraction: float
    changed_entity_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., split_counts: _Optional[_Mapping[str, int]] = ..., type_counts: _Optional[_Mapping[str, int]] = ..., files: _Optional[_Iterable[_Union[DatasetFile, _Mapping]]] = ..., plan: _Optional[_Union[DatasetPlan, _Mapping]] = ..., created_at: _Optional[str] = ..., base_dataset_id: _Optional[str] = ..., regenerated_examples: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ..., focus_entity_ids: _Optional[_Iterable[str]] = ..., replay_fraction: _Optional[float] = ..., changed_entity_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DatasetBuildResult(_message.Message):
    __slots__ = ("dataset_id", "split_counts", "type_counts", "warnings", "sizing", "changed_entity_ids", "regenerated_examples")
    class SplitCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class TypeCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    TYPE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    SIZING_FIELD_NUMBER: _ClassVar[int]
    CHANGED_ENTITY_IDS_FIELD_NUMBER: _ClassVar[int]
    REGENERATED_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    split_counts: _containers.ScalarMap[str, int]
    type_counts: _containers.ScalarMap[str, int]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    sizing: str
    changed_entity_ids: _containers.RepeatedScalarFieldContainer[str]
    regenerated_examples: int
    def __init__(self, dataset_id: _Optional[str] = ..., split_counts: _Optional[_Mapping[str, int]] = ..., type_counts: _Optional[_Mapping[str, int]] = ..., warnings: _Optional[_Iterable[str]] = ..., sizing: _Optional[str] = ..., changed_entity_ids: _Optional[_Iterable[str]] = ..., regenerated_examples: _Optional[int] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("catalog",)
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    catalog: str
    def __init__(self, catalog: _Optional[str] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[Dataset]
    def __init__(self, datasets: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ...) -> None: ...

class ReadFileRequest(_message.Message):
    __slots__ = ("dataset_id", "split", "format")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    split: str
    format: str
    def __init__(self, dataset_id: _Optional[str] = ..., split: _Optional[str] = ..., format: _Optional[str] = ...) -> None: ...

class FileChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...
