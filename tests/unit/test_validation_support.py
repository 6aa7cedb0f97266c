"""Builders shared by the validation tests (this module holds no test)."""

from __future__ import annotations

import json

from dyag_core.catalog.model import Catalog, Contact, Entity

SYSTEM = "Tu es un assistant expert en applications du système d'information français."


def chat(question: str, answer: str, system: str | None = SYSTEM) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]
    return json.dumps({"messages": messages}, ensure_ascii=False)


def long_answer(name: str, n: int = 0) -> str:
    """A plausible answer of 25-40 words."""
    return (
        f"L'application {name} est l'outil national de dématérialisation des démarches numéro {n}. "
        "Elle est actuellement en production et permet aux entreprises d'effectuer leurs démarches en ligne."
    )


def catalog(*entities: Entity) -> Catalog:
    return Catalog(entities=tuple(entities), source_format="json-list", source_fields=(), field_fill={})


def entity(
    eid: str,
    name: str,
    description: str | None = None,
    contacts: tuple[Contact, ...] = (),
    long_name: str | None = None,
) -> Entity:
    return Entity(id=eid, name=name, long_name=long_name, description=description, contacts=contacts)
