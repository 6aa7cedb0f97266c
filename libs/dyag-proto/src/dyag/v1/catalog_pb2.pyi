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
