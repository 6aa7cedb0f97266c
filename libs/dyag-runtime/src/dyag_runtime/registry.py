"""A service's registry of records (trained models, exports…): one SQLite table, each record a JSON body
with a few indexed columns to filter on, newest first.

    registry = Registry(data_dir / "models.db", "models", ("base_model", "dataset_id"), not_found=ModelNotFound)
    registry.put({"id": "lora-…", "created_at": "…", "base_model": "default", "dataset_id": "", …})
    registry.list(base_model="default", limit=10)
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dyag_core.errors import DyagError

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


class RecordNotFound(DyagError):
    def __init__(self, what: str, record_id: str):
        super().__init__(f"{what}_not_found", f"{what} {record_id!r} not found")


class Registry:
    """Records keyed by "id", ordered by "created_at"; `columns` are copied out of the body to filter on."""

    def __init__(
        self,
        db_path: Path,
        table: str,
        columns: Sequence[str] = (),
        *,
        not_found: Callable[[str], Exception] | None = None,
    ):
        for name in (table, *columns):
            if not _IDENT.match(name):
                raise ValueError(f"not an SQL identifier: {name!r}")
        self.table, self.columns = table, tuple(columns)
        self.not_found = not_found or (lambda record_id: RecordNotFound(table.rstrip("s"), record_id))
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        extra = "".join(f"    {c} TEXT NOT NULL DEFAULT '',\n" for c in self.columns)
        self.db.executescript(
            f"CREATE TABLE IF NOT EXISTS {table} (\n    id TEXT PRIMARY KEY,\n{extra}    created_at TEXT NOT NULL,\n"
            f"    body TEXT NOT NULL\n);\n"
        )
        self.lock = threading.Lock()

    def put(self, record: dict[str, Any]) -> None:
        names = ["id", *self.columns, "created_at", "body"]
        values = [
            record["id"],
            *(str(record.get(c) or "") for c in self.columns),
            record["created_at"],
            json.dumps(record),
        ]
        with self.lock:
            self.db.execute(
                f"INSERT OR REPLACE INTO {self.table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                values,
            )

    def get(self, record_id: str) -> dict[str, Any]:
        with self.lock:
            row = self.db.execute(f"SELECT body FROM {self.table} WHERE id = ?", (record_id,)).fetchone()
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
        query += " ORDER BY created_at DESC LIMIT ?"
        args.append(limit or 100)
        with self.lock:
            rows = self.db.execute(query, args).fetchall()
        return [json.loads(r[0]) for r in rows]
