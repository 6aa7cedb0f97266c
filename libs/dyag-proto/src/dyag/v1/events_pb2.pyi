from dyag.v1 import jobs_pb2 as _jobs_pb2
from dyag.v1 import dataset_pb2 as _dataset_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CatalogUpdated(_message.Message):
    __slots__ = ("name", "version", "previous_version", "added", "changed", "removed", "artifact")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    previous_version: str
    added: _containers.RepeatedScalarFieldContainer[str]
    changed: _containers.RepeatedScalarFieldContainer[str]
    removed: _containers.RepeatedScalarFieldContainer[str]
    artifact: _jobs_pb2.ArtifactRef
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., previous_version: _Optional[str] = ..., added: _Optional[_Iterable[str]] = ..., changed: _Optional[_Iterable[str]] = ..., removed: _Optional[_Iterable[str]] = ..., artifact: _Optional[_Union[_jobs_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _jobs_pb2.Job
    def __init__(self, job: _Optional[_Union[_jobs_pb2.Job, _Mapping]] = ...) -> None: ...

class JobRequested(_message.Message):
    __slots__ = ("job_id", "kind")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    kind: str
    def __init__(self, job_id: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class DatasetBuilt(_message.Message):
    __slots__ = ("dataset_id", "catalog", "catalog_version", "split_counts", "files", "base_dataset_id")
    class SplitCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    SPLIT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    BASE_DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    catalog: str
    catalog_version: str
    split_counts: _containers.ScalarMap[str, int]
    files: _containers.RepeatedCompositeFieldContainer[_dataset_pb2.DatasetFile]
    base_dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., split_counts: _Optional[_Mapping[str, int]] = ..., files: _Optional[_Iterable[_Union[_dataset_pb2.DatasetFile, _Mapping]]] = ..., base_dataset_id: _Optional[str] = ...) -> None: ...

class DatasetValidated(_message.Message):
    __slots__ = ("dataset_id", "verdict", "blocking", "summary")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    BLOCKING_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    verdict: str
    blocking: _containers.RepeatedScalarFieldContainer[str]
    summary: _struct_pb2.Struct
    def __init__(self, dataset_id: _Optional[str] = ..., verdict: _Optional[str] = ..., blocking: _Optional[_Iterable[str]] = ..., summary: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ModelRef(_message.Message):
    __slots__ = ("kind", "id", "catalog_version", "details")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    id: str
    catalog_version: str
    details: _containers.ScalarMap[str, str]
    def __init__(self, kind: _Optional[str] = ..., id: _Optional[str] = ..., catalog_version: _Optional[str] = ..., details: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RetrainingStarted(_message.Message):
    __slots__ = ("catalog", "from_version", "version", "changed_entities", "removed_entities", "pipeline_id", "reason", "approaches")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_ENTITIES_FIELD_NUMBER: _ClassVar[int]
    REMOVED_ENTITIES_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    APPROACHES_FIELD_NUMBER: _ClassVar[int]
    catalog: str
    from_version: str
    version: str
    changed_entities: _containers.RepeatedScalarFieldContainer[str]
    removed_entities: _containers.RepeatedScalarFieldContainer[str]
    pipeline_id: str
    reason: str
    approaches: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, catalog: _Optional[str] = ..., from_version: _Optional[str] = ..., version: _Optional[str] = ..., changed_entities: _Optional[_Iterable[str]] = ..., removed_entities: _Optional[_Iterable[str]] = ..., pipeline_id: _Optional[str] = ..., reason: _Optional[str] = ..., approaches: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelStale(_message.Message):
    __slots__ = ("catalog", "version", "champion", "questions", "wrong", "evaluation_run_id")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_FIELD_NUMBER: _ClassVar[int]
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    WRONG_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    catalog: str
    version: str
    champion: ModelRef
    questions: int
    wrong: int
    evaluation_run_id: str
    def __init__(self, catalog: _Optional[str] = ..., version: _Optional[str] = ..., champion: _Optional[_Union[ModelRef, _Mapping]] = ..., questions: _Optional[int] = ..., wrong: _Optional[int] = ..., evaluation_run_id: _Optional[str] = ...) -> None: ...

class GateSubset(_message.Message):
    __slots__ = ("questions", "champion_accuracy", "challenger_accuracy", "delta", "ci_low", "ci_high")
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    questions: int
    champion_accuracy: float
    challenger_accuracy: float
    delta: float
    ci_low: float
    ci_high: float
    def __init__(self, questions: _Optional[int] = ..., champion_accuracy: _Optional[float] = ..., challenger_accuracy: _Optional[float] = ..., delta: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ...) -> None: ...

class ModelDecision(_message.Message):
    __slots__ = ("catalog", "target", "replaced", "reason", "by", "log_seq", "pipeline_id", "evaluation_run_ids", "changed", "unchanged")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    LOG_SEQ_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    catalog: str
    target: ModelRef
    replaced: ModelRef
    reason: str
    by: str
    log_seq: int
    pipeline_id: str
    evaluation_run_ids: _containers.RepeatedScalarFieldContainer[str]
    changed: GateSubset
    unchanged: GateSubset
    def __init__(self, catalog: _Optional[str] = ..., target: _Optional[_Union[ModelRef, _Mapping]] = ..., replaced: _Optional[_Union[ModelRef, _Mapping]] = ..., reason: _Optional[str] = ..., by: _Optional[str] = ..., log_seq: _Optional[int] = ..., pipeline_id: _Optional[str] = ..., evaluation_run_ids: _Optional[_Iterable[str]] = ..., changed: _Optional[_Union[GateSubset, _Mapping]] = ..., unchanged: _Optional[_Union[GateSubset, _Mapping]] = ...) -> None: ...
