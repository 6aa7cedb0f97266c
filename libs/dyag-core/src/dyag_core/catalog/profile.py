"""The guide's step 1.1 figures: entity count, per-field fill rate, status and domain distributions."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from dyag_core.catalog.model import Catalog, Entity
from dyag_core.catalog.roles import ROLES
from dyag_core.text import fold


@dataclass(frozen=True, slots=True)
class FieldFill:
    field: str
    filled: int
    rate: float  # 0..1


@dataclass(frozen=True, slots=True)
class CatalogProfile:
    entity_count: int
    fields: tuple[FieldFill, ...]  # the source's own fields, most filled first
    roles: tuple[FieldFill, ...]  # the normalised roles (what the dataset can use)
    status_distribution: dict[str, int]
    domain_distribution: dict[str, int]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def profile_catalog(catalog: Catalog) -> CatalogProfile:
    total = len(catalog.entities)
    fields = sorted(
        (FieldFill(name, filled, filled / total) for name, filled in catalog.field_fill.items()),
        key=lambda f: (-f.filled, f.field),
    )
    roles = tuple(
        FieldFill(role, filled, filled / total)
        for role in ROLES
        if (filled := sum(1 for e in catalog.entities if role_filled(e, role)))
    )
    return CatalogProfile(
        entity_count=total,
        fields=tuple(fields),
        roles=roles,
        status_distribution=_distribution(e.status for e in catalog.entities),
        domain_distribution=_distribution(
            name for e in catalog.entities for name in dict.fromkeys(d.domain for d in e.domains)
        ),
        warnings=catalog.warnings,
    )


def role_filled(entity: Entity, role: str) -> bool:
    return role in ("id", "name") or bool(getattr(entity, role))


def _distribution(values) -> dict[str, int]:
    """Counts that merge spellings ('En production', 'en production'), shown in the most common one."""
    counts: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = {}
    for value in values:
        key = fold(value) if value else ""
        counts[key] += 1
        spellings.setdefault(key, Counter())[value or "(non renseigné)"] += 1
    return {spellings[key].most_common(1)[0][0]: n for key, n in counts.most_common()}
