"""The service's own SQLite database: uploads, training plans (the remote job each made) and the model registry.

- uploads: one remote file per content and provider (upload_key), so the same data is never sent twice;
- plans: one remote fine-tuning job per plan key (dataset hashes + base model + hyperparameters + provider),
  so re-submitting the same plan, or a restarted service, follows the job already paid for;
- models: the fine-tuned models with their lineage.
"""

from __future__ import annotations

import json
import time
from typing import Any

from dyag_core.errors import DyagError
from dyag_runtime.sqlite import SqliteIndex

_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    key TEXT PRIMARY KEY,
    file_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS plans (
    key TEXT PRIMARY KEY,
    remote_job_id TEXT NOT NULL DEFAULT '',
    remote_status TEXT NOT NULL DEFAULT '',
    model_id TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL,
    body TEXT NOT NULL          -- the plan: provider, base model, hashes, hyperparameters, file ids
);
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    plan_key TEXT NOT NULL,
    base_model TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    body TEXT NOT NULL          -- the HostedModel message as JSON
);
"""


class ModelNotFound(DyagError):
    def __init__(self, model_id: str):
        super().__init__("model_not_found", f"model {model_id!r} not found in the registry of openai-trainer")


class HostedStore(SqliteIndex):
    schema = _SCHEMA

    # --- uploads ---------------------------------------------------------------------------------
    def upload(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute(
                "SELECT file_id, filename, bytes, content_hash FROM uploads WHERE key = ?", (key,)
            ).fetchone()
        return dict(zip(("file_id", "filename", "bytes", "content_hash"), row, strict=True)) if row else None

    def put_upload(self, key: str, file_id: str, filename: str, size: int, content_hash: str) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO uploads VALUES (?,?,?,?,?,?)",
                (key, file_id, filename, size, content_hash, time.time()),
            )

    def forget_upload(self, key: str) -> None:
        with self.lock:
            self.db.execute("DELETE FROM uploads WHERE key = ?", (key,))

    # --- plans -----------------------------------------------------------------------------------
    def plan(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute(
                "SELECT remote_job_id, remote_status, model_id, body FROM plans WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return {"key": key, "remote_job_id": row[0], "remote_status": row[1], "model_id": row[2], **json.loads(row[3])}

    def put_plan(
        self, key: str, body: dict[str, Any], *, remote_job_id: str = "", remote_status: str = "", model_id: str = ""
    ) -> None:
        fields = {k: v for k, v in body.items() if k not in ("key", "remote_job_id", "remote_status", "model_id")}
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO plans VALUES (?,?,?,?,?,?)",
                (key, remote_job_id, remote_status, model_id, time.time(), json.dumps(fields, ensure_ascii=False)),
            )

    def update_plan(self, key: str, **changes: str) -> None:
        allowed = {"remote_job_id", "remote_status", "model_id"}
        sets = {k: v for k, v in changes.items() if k in allowed}
        if not sets:
            return
        with self.lock:
            self.db.execute(
                f"UPDATE plans SET {', '.join(f'{k} = ?' for k in sets)}, updated_at = ? WHERE key = ?",
                (*sets.values(), time.time(), key),
            )

    # --- models ----------------------------------------------------------------------------------
    def put_model(self, model: dict[str, Any], plan_key: str) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO models VALUES (?,?,?,?,?,?)",
                (
                    model["id"],
                    plan_key,
                    model.get("base_model", ""),
                    model.get("dataset_id", ""),
                    time.time(),
                    json.dumps(model, ensure_ascii=False),
                ),
            )

    def model(self, model_id: str) -> dict[str, Any]:
        with self.lock:
            row = self.db.execute("SELECT body FROM models WHERE id = ?", (model_id,)).fetchone()
        if row is None:
            raise ModelNotFound(model_id)
        return json.loads(row[0])

    def models(self, base_model: str = "", dataset_id: str = "") -> list[dict[str, Any]]:
        query, args = "SELECT body FROM models WHERE 1=1", []
        if base_model:
            query, args = query + " AND base_model = ?", [*args, base_model]
        if dataset_id:
            query, args = query + " AND dataset_id = ?", [*args, dataset_id]
        with self.lock:
            rows = self.db.execute(query + " ORDER BY created_at DESC", args).fetchall()
        return [json.loads(r[0]) for r in rows]
