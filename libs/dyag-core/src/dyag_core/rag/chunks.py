"""Chunks made for records: one per entity and section, each one readable on its own.

Every chunk starts with the entity's name, long name and id, so a chunk retrieved alone still says
whose facts it holds, and carries them in its metadata too (scalars only: Chroma rejects lists).
A field the record leaves empty is written "non renseigné": the model then sees that the catalog
has no value, instead of guessing one.

Chunk ids are stable: entity id, section and a hash of the content. Re-indexing a new catalog
version therefore touches only the chunks whose text changed (see the rag-service's indexer).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dyag_core.catalog.model import Catalog, Entity
from dyag_core.rag.linking import EntityNames, names_of

# Section key -> the label the chunk's text shows.
SECTIONS: dict[str, str] = {
    "overview": "fiche d'identité (statut, portée, domaines, technologie, hébergement, dates clés)",
    "description": "description",
    "organisation": "organisation (acteurs et contacts)",
    "sites": "sites web et adresses",
    "related": "applications et données liées",
}
# Short labels for the text the dense side embeds (the start of it only: embedding cost grows with length).
EMBED_LABELS = {
    "overview": "identité",
    "description": "description",
    "organisation": "acteurs et contacts",
    "sites": "sites web",
    "related": "applications et données liées",
}
MAX_SECTION_CHARS = 1200  # a longer description is cut at paragraph or sentence ends into several parts
EMPTY = "non renseigné"
_ID_SEPARATOR = "#"
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    entity_id: str
    section: str
    part: int
    text: str
    metadata: dict[str, str | int | float | bool] = field(hash=False, compare=False)
    embed_text: str = field(default="", hash=False, compare=False)  # what the dense side embeds (its start)

    @property
    def entity_name(self) -> str:
        return str(self.metadata.get("entity_name", ""))


def entity_of_chunk_id(chunk_id: str) -> str:
    """The entity a chunk id belongs to (ids are '<entity id>#<section>.<part>#<hash>')."""
    return chunk_id.rsplit(_ID_SEPARATOR, 2)[0]


def chunk_catalog(catalog: Catalog) -> list[Chunk]:
    return [chunk for entity in catalog.entities for chunk in chunk_entity(entity)]


def chunk_entity(entity: Entity) -> list[Chunk]:
    names = names_of(entity)
    header = f"{_one_line(entity.display_name)} [id {entity.id}]"
    short = _one_line(entity.display_name)
    base_meta = _base_metadata(entity, names)
    bodies: list[tuple[str, int, int, str]] = []  # section, part, parts, body
    for section, body in (
        ("overview", _overview(entity)),
        ("description", None),
        ("organisation", _organisation(entity)),
        ("sites", _sites(entity)),
        ("related", _related(entity)),
    ):
        if section == "description":
            parts = _split(entity.description) if entity.description else [f"Description : {EMPTY}."]
            bodies += [("description", i, len(parts), p) for i, p in enumerate(parts, start=1)]
        else:
            bodies.append((section, 1, 1, body))
    chunks = []
    for section, part, parts, body in bodies:
        label = SECTIONS[section] + (f", partie {part}/{parts}" if parts > 1 else "")
        text = f"{header} — {label}\n{body}"
        metadata = {**base_meta, "section": section, "part": part}
        digest = hashlib.sha256(json.dumps([text, metadata], sort_keys=True, ensure_ascii=False).encode()).hexdigest()[
            :16
        ]
        chunk_id = _ID_SEPARATOR.join((entity.id, f"{section}.{part}", digest))
        embed_body = body if section != "overview" else body.split("\n", 2)[-1]  # name lines are in the header
        embed_text = f"{short} — {EMBED_LABELS[section]} : {_one_line(embed_body)}"
        chunks.append(Chunk(chunk_id, entity.id, section, part, text, metadata, embed_text))
    return chunks


def _base_metadata(entity: Entity, names: EntityNames) -> dict[str, Any]:
    # Only what names the entity: a fact here (a status…) would change every chunk's id when it changes.
    return {
        "entity_id": entity.id,
        "entity_name": entity.name,
        "long_name": entity.long_name or "",
        **names.to_metadata(),
    }


def _overview(e: Entity) -> str:
    lines = [
        f"Nom : {e.name}",
        f"Nom long : {_one_line(e.long_name) if e.long_name else EMPTY}",
        f"Statut : {e.status or EMPTY}",
        f"Portée géographique : {e.scope or EMPTY}",
        f"Domaines métier : {_join(_domain(d) for d in e.domains)}",
    ]
    optional = (
        ("Famille d'applications", e.family),
        ("Fonctions", e.functions),
        ("Technologie principale", e.technology),
        ("Bénéficiaires", e.beneficiaries),
    )
    lines += [f"{label} : {_one_line(value)}" for label, value in optional if value]
    if e.hostings:
        lines.append("Hébergement : " + _join(_pair(h.datacenter, h.platform) for h in e.hostings))
    if e.users:
        lines.append("Utilisateurs : " + _join(f"{u.name} ({u.count})" if u.count else u.name for u in e.users))
    lines.append("Dates clés : " + _join(_event(ev) for ev in e.events))
    for key, value in e.extra.items():
        rendered = _extra(value)
        if rendered:
            lines.append(f"{key[:1].upper()}{key[1:]} : {rendered}")
    return "\n".join(lines)


def _organisation(e: Entity) -> str:
    actors = _join(_pair(a.name, a.role, template="{b} : {a}") for a in e.actors)
    contacts = []
    for c in e.contacts:
        who = c.name + (f" ({c.function})" if c.function else "") + (f", {c.service}" if c.service else "")
        contacts.append((f"{c.role} : " if c.role else "") + who + (f" — {c.email}" if c.email else ""))
    return f"Acteurs : {actors}\nContacts : {_join(contacts)}"


def _sites(e: Entity) -> str:
    return "Sites web : " + _join(_pair(s.url, s.kind, template="{b} : {a}") for s in e.sites)


def _related(e: Entity) -> str:
    apps = _join(_pair(link.target, link.flow and f"flux {link.flow.lower()}") for link in e.related_applications)
    data = _join(_pair(link.target, link.flow and f"flux {link.flow.lower()}") for link in e.related_data)
    return f"Applications liées : {apps}\nDonnées liées : {data}"


def _domain(d) -> str:
    text = d.domain + (f" > {d.subdomain}" if d.subdomain else "")
    return text + (" (obsolète)" if d.obsolete else "")


def _event(ev) -> str:
    return ev.kind + (f" le {ev.date}" if ev.date else "") + (f" (version {ev.version})" if ev.version else "")


def _pair(a: str | None, b: str | None, template: str = "{a} ({b})") -> str:
    if a and b:
        return template.format(a=_one_line(a), b=_one_line(b))
    return _one_line(a or b or "")


def _join(items: Iterable[str]) -> str:
    values = [i for i in items if i]
    return " ; ".join(values) if values else EMPTY


def _extra(value: Any) -> str:
    if isinstance(value, list):
        return " ; ".join(filter(None, (_extra(v) for v in value)))
    if isinstance(value, dict):
        parts = [_one_line(str(v)) for v in value.values() if v not in (None, "", [], {})]
        return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "") if parts else ""
    return _one_line(str(value)) if value not in (None, "") else ""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _split(text: str, limit: int = MAX_SECTION_CHARS) -> list[str]:
    """A long text cut at paragraph ends (else sentence ends) into parts of at most `limit` characters."""
    text = text.strip()
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if len(paragraph) <= limit:
            pieces.append(paragraph)
        else:
            pieces += [s for s in _SENTENCE_END.split(paragraph) if s]
    parts: list[str] = []
    for piece in pieces:
        while len(piece) > limit:  # one endless sentence: cut at a space
            cut = piece.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            parts.append(piece[:cut].strip())
            piece = piece[cut:].strip()
        if parts and len(parts[-1]) + len(piece) + 2 <= limit:
            parts[-1] += "\n\n" + piece
        elif piece:
            parts.append(piece)
    return parts
