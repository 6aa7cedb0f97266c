from google.protobuf import struct_pb2 as _struct_pb2
from dyag.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DatasetSource(_message.Message):
    __slots__ = ("content", "artifact", "filename", "manifest_content", "manifest_artifact")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_CONTENT_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    artifact: _jobs_pb2.ArtifactRef
    filename: str
    manifest_content: bytes
    manifest_artifact: _jobs_pb2.ArtifactRef
    def __init__(self, content: _Optional[bytes] = ..., artifact: _Optional[_Union[_jobs_pb2.ArtifactRef, _Mapping]] = ..., filename: _Optional[str] = ..., manifest_content: _Optional[bytes] = ..., manifest_artifact: _Optional[_Union[_jobs_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class ValidateRequest(_message.Message):
    __slots__ = ("dataset", "catalog", "catalog_version", "model", "bound_for_hosted_api", "allow_pii", "epochs", "split_counts", "correlation_id")
    class SplitCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DATASET_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BOUND_FOR_HOSTED_API_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PII_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    dataset: DatasetSource
    catalog: str
    catalog_version: str
    model: str
    bound_for_hosted_api: bool
    allow_pii: bool
    epochs: int
    split_counts: _containers.ScalarMap[str, int]
    correlation_id: str
    def __init__(self, dataset: _Optional[_Union[DatasetSource, _Mapping]] = ..., catalog: _Optional[str] = ..., catalog_version: _Optional[str] = ..., model: _Optional[str] = ..., bound_for_hosted_api: _Optional[bool] = ..., allow_pii: _Optional[bool] = ..., epochs: _Optional[int] = ..., split_counts: _Optional[_Mapping[str, int]] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class ValidationResult(_message.Message):
    __slots__ = ("verdict", "blocking", "report", "text")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    BLOCKING_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    verdict: str
    blocking: _containers.RepeatedScalarFieldContainer[str]
    report: _struct_pb2.Struct
    text: str
    def __init__(self, verdict: _Optional[str] = ..., blocking: _Optional[_Iterable[str]] = ..., report: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., text: _Optional[str] = ...) -> None: ...

class CleanRequest(_message.Message):
    __slots__ = ("dataset", "drop_duplicates", "drop_near_duplicates", "redact_pii", "catalog")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    DROP_DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    DROP_NEAR_DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REDACT_PII_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    dataset: DatasetSource
    drop_duplicates: bool
    drop_near_duplicates: bool
    redact_pii: bool
    catalog: str
    def __init__(self, dataset: _Optional[_Union[DatasetSource, _Mapping]] = ..., drop_duplicates: _Optional[bool] = ..., drop_near_duplicates: _Optional[bool] = ..., redact_pii: _Optional[bool] = ..., catalog: _Optional[str] = ...) -> None: ...

class CleanResult(_message.Message):
    __slots__ = ("content", "kept", "dropped", "redacted", "notes")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    REDACTED_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    kept: int
    dropped: int
    redacted: int
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, content: _Optional[bytes] = ..., kept: _Optional[int] = ..., dropped: _Optional[int] = ..., redacted: _Optional[int] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...
