from dyag.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IngestCatalogRequest(_message.Message):
    __slots__ = ("name", "content", "filename", "roles_yaml", "reject_mojibake", "correlation_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    ROLES_YAML_FIELD_NUMBER: _ClassVar[int]
    REJECT_MOJIBAKE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: bytes
    filename: str
    roles_yaml: str
    reject_mojibake: bool
    correlation_id: str
    def __init__(self, name: _Optional[str] = ..., content: _Optional[bytes] = ..., filename: _Optional[str] = ..., roles_yaml: _Optional[str] = ..., reject_mojibake: _Optional[bool] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class CatalogVersion(_message.Message):
    __slots__ = ("name", "version", "entity_count", "added", "changed", "removed", "warnings", "artifact", "unchanged", "source_format", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTITY_COUNT_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    entity_count: int
    added: _containers.RepeatedScalarFieldContainer[str]
    changed: _containers.RepeatedScalarFieldContainer[str]
    removed: _containers.RepeatedScalarFieldContainer[str]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    artifact: _jobs_pb2.ArtifactRef
    unchanged: bool
    source_format: str
    created_at: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., entity_count: _Optional[int] = ..., added: _Optional[_Iterable[str]] = ..., changed: _Optional[_Iterable[str]] = ..., removed: _Optional[_Iterable[str]] = ..., warnings: _Optional[_Iterable[str]] = ..., artifact: _Optional[_Union[_jobs_pb2.ArtifactRef, _Mapping]] = ..., unchanged: _Optional[bool] = ..., source_format: _Optional[str] = ..., created_at: _Optional[str] = ...) -> None: ...

class FieldFill(_message.Message):
    __slots__ = ("field", "filled", "rate")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    FILLED_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    field: str
    filled: int
    rate: float
    def __init__(self, field: _Optional[str] = ..., filled: _Optional[int] = ..., rate: _Optional[float] = ...) -> None: ...

class CatalogProfile(_message.Message):
    __slots__ = ("name", "version", "entity_count", "fields", "roles", "status_distribution", "domain_distribution", "warnings")
    class StatusDistributionEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class DomainDistributionEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTITY_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    STATUS_DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    entity_count: int
    fields: _containers.RepeatedCompositeFieldContainer[FieldFill]
    roles: _containers.RepeatedCompositeFieldContainer[FieldFill]
    status_distribution: _containers.ScalarMap[str, int]
    domain_distribution: _containers.ScalarMap[str, int]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., entity_count: _Optional[int] = ..., fields: _Optional[_Iterable[_Union[FieldFill, _Mapping]]] = ..., roles: _Optional[_Iterable[_Union[FieldFill, _Mapping]]] = ..., status_distribution: _Optional[_Mapping[str, int]] = ..., domain_distribution: _Optional[_Mapping[str, int]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class GetCatalogRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ListCatalogsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCatalogsResponse(_message.Message):
    __slots__ = ("catalogs",)
    CATALOGS_FIELD_NUMBER: _ClassVar[int]
    catalogs: _containers.RepeatedCompositeFieldContainer[CatalogVersion]
    def __init__(self, catalogs: _Optional[_Iterable[_Union[CatalogVersion, _Mapping]]] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[CatalogVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[CatalogVersion, _Mapping]]] = ...) -> None: ...

class SetSourceRequest(_message.Message):
    __slots__ = ("name", "path", "url", "interval_s", "reject_mojibake", "roles_yaml", "correlation_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    REJECT_MOJIBAKE_FIELD_NUMBER: _ClassVar[int]
    ROLES_YAML_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    url: str
    interval_s: int
    reject_mojibake: bool
    roles_yaml: str
    correlation_id: str
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ..., url: _Optional[str] = ..., interval_s: _Optional[int] = ..., reject_mojibake: _Optional[bool] = ..., roles_yaml: _Optional[str] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class CatalogSourceRequest(_message.Message):
    __slots__ = ("name", "correlation_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    correlation_id: str
    def __init__(self, name: _Optional[str] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class SourceError(_message.Message):
    __slots__ = ("code", "message", "at")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    at: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., at: _Optional[str] = ...) -> None: ...

class CatalogSource(_message.Message):
    __slots__ = ("name", "kind", "path", "url", "interval_s", "reject_mojibake", "created_at", "last_checked_at", "last_changed_at", "last_version", "last_error", "consecutive_failures", "next_check_at", "etag", "last_modified", "mtime", "size", "sha256", "checks", "changes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    REJECT_MOJIBAKE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECKED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    NEXT_CHECK_AT_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_FIELD_NUMBER: _ClassVar[int]
    MTIME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    path: str
    url: str
    interval_s: int
    reject_mojibake: bool
    created_at: str
    last_checked_at: str
    last_changed_at: str
    last_version: str
    last_error: SourceError
    consecutive_failures: int
    next_check_at: str
    etag: str
    last_modified: str
    mtime: str
    size: int
    sha256: str
    checks: int
    changes: int
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., path: _Optional[str] = ..., url: _Optional[str] = ..., interval_s: _Optional[int] = ..., reject_mojibake: _Optional[bool] = ..., created_at: _Optional[str] = ..., last_checked_at: _Optional[str] = ..., last_changed_at: _Optional[str] = ..., last_version: _Optional[str] = ..., last_error: _Optional[_Union[SourceError, _Mapping]] = ..., consecutive_failures: _Optional[int] = ..., next_check_at: _Optional[str] = ..., etag: _Optional[str] = ..., last_modified: _Optional[str] = ..., mtime: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., checks: _Optional[int] = ..., changes: _Optional[int] = ...) -> None: ...

class SourcePoll(_message.Message):
    __slots__ = ("outcome", "detail", "version", "source")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    outcome: str
    detail: str
    version: CatalogVersion
    source: CatalogSource
    def __init__(self, outcome: _Optional[str] = ..., detail: _Optional[str] = ..., version: _Optional[_Union[CatalogVersion, _Mapping]] = ..., source: _Optional[_Union[CatalogSource, _Mapping]] = ...) -> None: ...

class CatalogChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...
