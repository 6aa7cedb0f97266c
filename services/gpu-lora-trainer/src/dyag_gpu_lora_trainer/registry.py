"""The model registry: every LoRA model this service trained, in its own SQLite database."""

from __future__ import annotations

import json
from typing import Any

from dyag_core.errors import DyagError
from dyag_runtime.sqlite import SqliteIndex

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    base_model TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL   -- the LoraModel message as JSON, plus adapter_dir
);
"""


class ModelNotFound(DyagError):
    def __init__(self, model_id: str):
        super().__init__("model_not_found", f"model {model_id!r} not found")


class ModelRegistry(SqliteIndex):
    schema = _SCHEMA

    def put(self, model: dict[str, Any]) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO models (id, base_model, dataset_id, created_at, body) VALUES (?,?,?,?,?)",
                (model["id"], model["base_model"], model.get("dataset_id", ""), model["created_at"], json.dumps(model)),
            )

    def get(self, model_id: str) -> dict[str, Any]:
        with self.lock:
            row = self.db.execute("SELECT body FROM models WHERE id = ?", (model_id,)).fetchone()
        if row is None:
            raise ModelNotFound(model_id)
        return json.loads(row[0])

    def list(self, base_model: str = "", dataset_id: str = "", limit: int = 100) -> list[dict[str, Any]]:
        query, args = "SELECT body FROM models WHERE 1=1", []
        if base_model:
            query += " AND base_model = ?"
            args.append(base_model)
        if dataset_id:
            query += " AND dataset_id = ?"
            args.append(dataset_id)
        query += " ORDER BY created_at DESC LIMIT ?"
        args.append(limit or 100)
        with self.lock:
            rows = self.db.execute(query, args).fetchall()
        return [json.loads(r[0]) for r in rows]
