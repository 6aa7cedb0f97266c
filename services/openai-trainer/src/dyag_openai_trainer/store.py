"""The service's own database (SQLite, or its schema in PostgreSQL): uploads, training plans (the remote job each
made) and the model registry.

- uploads: one remote file per content and provider (upload_key), so the same data is never sent twice;
- plans: one remote fine-tuning job per plan key (dataset hashes + base model + hyperparameters + provider),
  so re-submitting the same plan, or a restarted service, follows the job already paid for; a replica claims a plan
  (compare-and-set) before it creates the plan's remote job, so two replicas never both pay for one;
- models: the fine-tuned models with their lineage.
"""

from __future__ import annotations

import json
import time
from typing import Any

from dyag_core.errors import DyagError
from dyag_runtime.database import Store

# Steps are only ever appended; the first three are the tables as they were before versioned migrations.
MIGRATIONS = (
    """CREATE TABLE IF NOT EXISTS uploads (
    key TEXT PRIMARY KEY,
    file_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS plans (
    key TEXT PRIMARY KEY,
    remote_job_id TEXT NOT NULL DEFAULT '',
    remote_status TEXT NOT NULL DEFAULT '',
    model_id TEXT NOT NULL DEFAULT '',
    updated_at DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL          -- the plan: provider, base model, hashes, hyperparameters, file ids
)""",
    """CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    plan_key TEXT NOT NULL,
    base_model TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL          -- the HostedModel message as JSON
)""",
    # Who is creating the plan's remote job (a job id), since when: claim_plan.
    "ALTER TABLE plans ADD COLUMN claimed_by TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE plans ADD COLUMN claimed_at DOUBLE PRECISION NOT NULL DEFAULT 0",
)
ENDED_BADLY = ("failed", "cancelled")


class ModelNotFound(DyagError):
    def __init__(self, model_id: str):
        super().__init__("model_not_found", f"model {model_id!r} not found in the registry of openai-trainer")


class HostedStore(Store):
    component = "hosted"
    migrations = MIGRATIONS
    tables = ("uploads", "plans", "models")

    # --- uploads ---------------------------------------------------------------------------------
    def upload(self, key: str) -> dict[str, Any] | None:
        row = self.db.one("SELECT file_id, filename, bytes, content_hash FROM uploads WHERE key = ?", (key,))
        return dict(zip(("file_id", "filename", "bytes", "content_hash"), row, strict=True)) if row else None

    def put_upload(self, key: str, file_id: str, filename: str, size: int, content_hash: str) -> None:
        self.db.run(
            "INSERT INTO uploads (key, file_id, filename, bytes, content_hash, created_at) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (key) DO UPDATE SET file_id = excluded.file_id, filename = excluded.filename,"
            " bytes = excluded.bytes, content_hash = excluded.content_hash, created_at = excluded.created_at",
            (key, file_id, filename, size, content_hash, time.time()),
        )

    def forget_upload(self, key: str) -> None:
        self.db.run("DELETE FROM uploads WHERE key = ?", (key,))

    # --- plans -----------------------------------------------------------------------------------
    def plan(self, key: str) -> dict[str, Any] | None:
        row = self.db.one("SELECT remote_job_id, remote_status, model_id, body FROM plans WHERE key = ?", (key,))
        if row is None:
            return None
        return {"key": key, "remote_job_id": row[0], "remote_status": row[1], "model_id": row[2], **json.loads(row[3])}

    def claim_plan(self, key: str, body: dict[str, Any], owner: str, lease_s: float) -> bool:
        """Compare-and-set: whether `owner` (a job id) may create the plan's remote job. Yes for a new plan, a plan
        whose remote job failed or was cancelled (its job id and status are cleared), a plan without a job that
        `owner` or nobody claimed, or whose claim is older than lease_s (its claimant died); no while another
        claimant is creating the job, or once the plan has a live one."""
        fields = {k: v for k, v in body.items() if k not in ("key", "remote_job_id", "remote_status", "model_id")}
        now = time.time()
        return bool(
            self.db.run(
                "INSERT INTO plans (key, remote_job_id, remote_status, model_id, updated_at, body, claimed_by,"
                " claimed_at) VALUES (?, '', '', '', ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET remote_job_id = '',"
                " remote_status = '', updated_at = excluded.updated_at, claimed_by = excluded.claimed_by,"
                " claimed_at = excluded.claimed_at"
                " WHERE plans.model_id = '' AND (plans.remote_status IN (?, ?) OR (plans.remote_job_id = ''"
                " AND (plans.claimed_by IN ('', excluded.claimed_by) OR plans.claimed_at < ?)))",
                (key, now, json.dumps(fields, ensure_ascii=False), owner, now, *ENDED_BADLY, now - lease_s),
            )
        )

    def update_plan(self, key: str, **changes: str) -> None:
        allowed = {"remote_job_id", "remote_status", "model_id"}
        sets = {k: v for k, v in changes.items() if k in allowed}
        if not sets:
            return
        self.db.run(
            f"UPDATE plans SET {', '.join(f'{k} = ?' for k in sets)}, updated_at = ? WHERE key = ?",
            (*sets.values(), time.time(), key),
        )

    # --- models ----------------------------------------------------------------------------------
    def put_model(self, model: dict[str, Any], plan_key: str) -> None:
        self.db.run(
            "INSERT INTO models (id, plan_key, base_model, dataset_id, created_at, body) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (id) DO UPDATE SET plan_key = excluded.plan_key, base_model = excluded.base_model,"
            " dataset_id = excluded.dataset_id, created_at = excluded.created_at, body = excluded.body",
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
        row = self.db.one("SELECT body FROM models WHERE id = ?", (model_id,))
        if row is None:
            raise ModelNotFound(model_id)
        return json.loads(row[0])

    def models(self, base_model: str = "", dataset_id: str = "") -> list[dict[str, Any]]:
        query, args = "SELECT body FROM models WHERE 1=1", []
        if base_model:
            query, args = query + " AND base_model = ?", [*args, base_model]
        if dataset_id:
            query, args = query + " AND dataset_id = ?", [*args, dataset_id]
        return [json.loads(r[0]) for r in self.db.all(query + " ORDER BY created_at DESC, id", args)]
