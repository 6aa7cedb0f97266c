"""The typed catalog model: an entity (application, product, API…) and its nested facts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Domain:
    domain: str
    subdomain: str | None = None
    obsolete: bool = False  # the export prefixed it "OBSOLÈTE -"


@dataclass(frozen=True, slots=True)
class Site:
    url: str
    kind: str | None = None  # "nature de l url": Site principal, Documentation…


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    role: str | None = None  # MOA, MOE, Exploitant…


@dataclass(frozen=True, slots=True)
class Contact:
    name: str
    role: str | None = None
    email: str | None = None
    function: str | None = None  # "(chef de projet)" in "NOM Prénom (chef de projet) - SERVICE"
    service: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    date: str | None = None  # ISO yyyy-mm-dd when the export's date could be read
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A related application or data set, with the direction of the flow."""

    target: str
    flow: str | None = None


@dataclass(frozen=True, slots=True)
class UserGroup:
    """Who uses the application, and how many of them ("Agents des DREAL", "250")."""

    name: str
    count: str | None = None


@dataclass(frozen=True, slots=True)
class Hosting:
    datacenter: str | None = None
    platform: str | None = None


@dataclass(frozen=True, slots=True)
class Entity:
    """One catalog record, normalised. Empty and placeholder values are None or ()."""

    id: str
    name: str
    long_name: str | None = None
    description: str | None = None
    status: str | None = None
    scope: str | None = None
    family: str | None = None
    functions: str | None = None
    technology: str | None = None
    beneficiaries: str | None = None
    domains: tuple[Domain, ...] = ()
    sites: tuple[Site, ...] = ()
    actors: tuple[Actor, ...] = ()
    contacts: tuple[Contact, ...] = ()
    events: tuple[Event, ...] = ()
    related_applications: tuple[Link, ...] = ()
    related_data: tuple[Link, ...] = ()
    hostings: tuple[Hosting, ...] = ()
    users: tuple[UserGroup, ...] = ()
    # Fields with no role, kept by their normalised key so nothing in the source is lost.
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def display_name(self) -> str:
        return f"{self.name} ({self.long_name})" if self.long_name and self.long_name != self.name else self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entity:
        nested = {
            "domains": Domain,
            "sites": Site,
            "actors": Actor,
            "contacts": Contact,
            "events": Event,
            "related_applications": Link,
            "related_data": Link,
            "hostings": Hosting,
            "users": UserGroup,
        }
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in nested:
                value = tuple(nested[f.name](**item) for item in value)
            kwargs[f.name] = value
        return cls(**kwargs)

    def content_hash(self) -> str:
        return _hash_json(self.to_dict())


@dataclass(frozen=True, slots=True)
class Catalog:
    """A parsed catalog: its entities plus what the source looked like (for profiling)."""

    entities: tuple[Entity, ...]
    source_format: str  # keyed-json | json-list | jsonl | csv
    source_fields: tuple[str, ...]  # field names as the source spells them
    field_fill: dict[str, int]  # source field -> records where it holds a real value
    collection_key: str | None = None  # the top-level key of the guide's format
    warnings: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        """Content hash of the normalised entities, in id order: the same catalog gives the same version."""
        return _hash_json(sorted((e.id, e.content_hash()) for e in self.entities))[:16]

    def by_id(self) -> dict[str, Entity]:
        return {e.id: e for e in self.entities}

    def to_dict(self) -> dict[str, Any]:
        return {
            "entities": [e.to_dict() for e in self.entities],
            "source_format": self.source_format,
            "source_fields": list(self.source_fields),
            "field_fill": dict(self.field_fill),
            "collection_key": self.collection_key,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Catalog:
        return cls(
            entities=tuple(Entity.from_dict(e) for e in data["entities"]),
            source_format=data["source_format"],
            source_fields=tuple(data["source_fields"]),
            field_fill=dict(data["field_fill"]),
            collection_key=data.get("collection_key"),
            warnings=tuple(data.get("warnings", ())),
        )


def _hash_json(value: Any) -> str:
    payload = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()
