"""What changed between two versions of a catalog, entity by entity."""

from __future__ import annotations

from dataclasses import dataclass

from dyag_core.catalog.model import Catalog


@dataclass(frozen=True, slots=True)
class CatalogDiff:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


def diff_catalogs(old: Catalog | None, new: Catalog) -> CatalogDiff:
    before = {e.id: e.content_hash() for e in old.entities} if old else {}
    after = {e.id: e.content_hash() for e in new.entities}
    return CatalogDiff(
        added=tuple(i for i in after if i not in before),
        changed=tuple(i for i in after if i in before and before[i] != after[i]),
        removed=tuple(i for i in before if i not in after),
    )
