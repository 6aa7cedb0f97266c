"""Each catalog's retraining record in the KV bucket "retraining": its policy, its champion book and its trigger state,
in one key written whole with compare-and-set (a promotion and the state that caused it change together or not at
all, whichever gateway replica writes)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from dyag_core.catalog.names import validate_catalog_name
from dyag_core.retraining import ChampionBook, RetrainingPolicy, TriggerState

BUCKET = "retraining"
T = TypeVar("T")


@dataclass
class CatalogRetraining:
    catalog: str
    policy: RetrainingPolicy | None = None  # None: no retraining, only the champion book
    book: ChampionBook = field(default_factory=lambda: ChampionBook(""))
    trigger: TriggerState = field(default_factory=TriggerState)
    updated_at: float = 0.0

    def __post_init__(self) -> None:
        if not self.book.catalog:
            self.book.catalog = self.catalog

    def to_dict(self) -> dict[str, Any]:
        return {
            "catalog": self.catalog,
            "policy": self.policy.to_dict() if self.policy else None,
            "book": self.book.to_dict(),
            "trigger": self.trigger.to_dict(),
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CatalogRetraining:
        policy = data.get("policy")
        return cls(
            data["catalog"],
            RetrainingPolicy.from_dict(policy) if policy else None,
            ChampionBook.from_dict(data["book"]),
            TriggerState.from_dict(data.get("trigger")),
            float(data.get("updated_at") or 0),
        )


class RetrainingStore:
    def __init__(self, kv: KeyValue):
        self.kv = kv

    async def get(self, catalog: str) -> CatalogRetraining:
        """The catalog's record; an empty one (no policy, no champion) when it has none yet. A name no catalog can
        have ('../x', 'é', a space…) is refused (CatalogError invalid_name: a 422) before it reaches the bucket."""
        try:
            entry = await self.kv.get(validate_catalog_name(catalog))
        except KeyNotFoundError:
            return CatalogRetraining(catalog)
        return CatalogRetraining.from_dict(json.loads(entry.value))

    async def catalogs(self) -> list[str]:
        try:
            return sorted(await self.kv.keys())
        except NoKeysError:
            return []

    async def mutate(self, catalog: str, change: Callable[[CatalogRetraining], T]) -> tuple[CatalogRetraining, T]:
        """Read, change, write with compare-and-set; again from the read when another writer came first."""
        validate_catalog_name(catalog)
        for _ in range(50):
            try:
                entry = await self.kv.get(catalog)
                record, revision = CatalogRetraining.from_dict(json.loads(entry.value)), entry.revision
            except KeyNotFoundError:
                record, revision = CatalogRetraining(catalog), 0
            outcome = change(record)
            record.updated_at = time.time()
            value = json.dumps(record.to_dict(), ensure_ascii=False).encode()
            try:
                if revision:
                    await self.kv.update(catalog, value, last=revision)
                else:
                    await self.kv.create(catalog, value)
            except KeyWrongLastSequenceError:  # another writer came first (create: it created the key)
                continue
            return record, outcome
        raise RuntimeError(f"catalog {catalog}: too much contention on its retraining record")
