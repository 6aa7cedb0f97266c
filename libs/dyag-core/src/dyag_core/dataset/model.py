"""The dataset's typed model: a grounded question/answer example and its provenance."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_SYSTEM_PROMPT = "Tu es un assistant expert en applications du système d'information français."

# Question types, in the order reports list them.
QUESTION_TYPES = (
    "definition",
    "status",
    "domain",
    "actors",
    "sites",
    "contacts",
    "scope",
    "events",
    "related",
    "comparative",
    "listing",
    "counting",
    "negative_unknown_entity",
    "negative_empty_field",
)
NEGATIVE_TYPES = ("negative_unknown_entity", "negative_empty_field")


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where an example comes from. It travels in a sidecar manifest, never inside hosted-API formats."""

    entity_ids: tuple[str, ...]  # the entities the answer is about (empty for unknown-entity negatives)
    fields: tuple[str, ...]  # the roles the answer reads (status, actors…)
    template: str  # the template id, e.g. "status.2"
    key_facts: tuple[str, ...] = ()  # the values a correct answer must state
    negative: bool = False  # an honest "je ne sais pas" / "non renseigné" answer


@dataclass(frozen=True, slots=True)
class Example:
    id: str  # stable: a hash of type, template and entities
    qtype: str  # one of QUESTION_TYPES
    question: str
    answer: str
    provenance: Provenance
    system: str = DEFAULT_SYSTEM_PROMPT
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Example:
        prov = data["provenance"]
        return cls(
            id=data["id"],
            qtype=data["qtype"],
            question=data["question"],
            answer=data["answer"],
            provenance=Provenance(
                entity_ids=tuple(prov["entity_ids"]),
                fields=tuple(prov["fields"]),
                template=prov["template"],
                key_facts=tuple(prov.get("key_facts", ())),
                negative=bool(prov.get("negative", False)),
            ),
            system=data.get("system", DEFAULT_SYSTEM_PROMPT),
            meta=dict(data.get("meta", {})),
        )
