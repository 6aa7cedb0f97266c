"""A service's registry of records (trained models, exports…): one table of its database, each record a JSON body
with a few indexed columns to filter on, newest first.

    registry = Registry(settings.database("models.db"), "models", ("base_model", "dataset_id"), not_found=ModelNotFound)
    registry.put({"id": "lora-…", "created_at": "…", "base_model": "default", "dataset_id": "", …})
    registry.list(base_model="default", limit=10)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dyag_core.errors import DyagError
from dyag_runtime.database import IDENT, Database, Store


class RecordNotFound(DyagError):
    def __init__(self, what: str, record_id: str):
        super().__init__(f"{what}_not_found", f"{what} {record_id!r} not found")


class Registry(Store):
    """Records keyed by "id", ordered by "created_at"; `columns` are copied out of the body to filter on. A put
    replaces the record of its id whole (an upsert: two replicas writing one id leave one row)."""

    def __init__(
        self,
        db: Database | Path,
        table: str,
        columns: Sequence[str] = (),
        *,
        not_found: Callable[[str], Exception] | None = None,
    ):
        for name in (table, *columns):
            if not IDENT.match(name):
                raise ValueError(f"not an SQL identifier: {name!r}")
        self.table, self.columns = table, tuple(columns)
        self.not_found = not_found or (lambda record_id: RecordNotFound(table.rstrip("s"), record_id))
        extra = "".join(f"    {c} TEXT NOT NULL DEFAULT '',\n" for c in self.columns)
        # The first step is the table the registry made before versioned migrations: an old file is adopted as it is.
        self.component, self.tables = table, (table,)
        self.migrations = (
            f"CREATE TABLE IF NOT EXISTS {table} (\n    id TEXT PRIMARY KEY,\n{extra}    created_at TEXT NOT NULL,\n"
            f"    body TEXT NOT NULL\n)",
            f"CREATE INDEX IF NOT EXISTS {table}_created ON {table} (created_at)",
        )
        super().__init__(db)

    def put(self, record: dict[str, Any]) -> None:
        names = ["id", *self.columns, "created_at", "body"]
        values = [
            record["id"],
            *(str(record.get(c) or "") for c in self.columns),
            record["created_at"],
            json.dumps(record),
        ]
        self.db.run(
            f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            f" ON CONFLICT (id) DO UPDATE SET {', '.join(f'{n} = excluded.{n}' for n in names[1:])}",
            values,
        )

    def get(self, record_id: str) -> dict[str, Any]:
        row = self.db.one(f"SELECT body FROM {self.table} WHERE id = ?", (record_id,))
        if row is None:
            raise self.not_found(record_id)
        return json.loads(row[0])

    def list(self, limit: int = 100, **filters: str) -> list[dict[str, Any]]:
        query, args = f"SELECT body FROM {self.table} WHERE 1=1", []
        for column, value in filters.items():
            if column not in self.columns:
                raise ValueError(f"{self.table} cannot be filtered on {column!r}")
            if value:
                query += f" AND {column} = ?"
                args.append(value)
        query += " ORDER BY created_at DESC, id LIMIT ?"
        args.append(limit or 100)
        return [json.loads(r[0]) for r in self.db.all(query, args)]
