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
