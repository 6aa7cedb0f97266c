"""The runs the evaluator kept, in its own database (data_dir/evaluator.sqlite, or its schema in PostgreSQL): one row
per run, written when the run is asked for and again when it ends, so GetRun, ListRuns and Compare work after a
restart, and from any replica."""

from __future__ import annotations

import json
from typing import Any

from dyag_core.errors import DyagError
from dyag_runtime.database import Store

MIGRATIONS = (
    """CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    body TEXT NOT NULL   -- the EvaluationRun message as JSON (proto field names)
)""",
    "CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at)",
)
FINAL = ("succeeded", "failed", "cancelled")


class RunNotFound(DyagError):
    def __init__(self, run_id: str):
        super().__init__("run_not_found", f"evaluation run {run_id!r} not found")


class RunStore(Store):
    component = "runs"
    migrations = MIGRATIONS
    tables = ("runs",)

    def insert(self, run: dict[str, Any]) -> None:
        """Store a new run; a run of that id already there is kept as it is."""
        self.db.run(
            "INSERT INTO runs (id, created_at, status, target_kind, dataset_id, body) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (id) DO NOTHING",
            (
                run["id"],
                run["created_at"],
                run["status"],
                run["target"]["kind"],
                run.get("dataset_id", ""),
                json.dumps(run, ensure_ascii=False),
            ),
        )

    def update(self, run_id: str, **changes: Any) -> dict[str, Any]:
        """The run with `changes` merged in, read and written under a row lock: two replicas updating one run (the
        worker with its results, another bringing its status up to date) lose neither's fields."""
        with self.db.transaction():
            row = self.db.one("SELECT body FROM runs WHERE id = ?" + self.db.for_update, (run_id,))
            if row is None:
                raise RunNotFound(run_id)
            run = json.loads(row[0]) | changes
            self.db.run(
                "UPDATE runs SET status = ?, body = ? WHERE id = ?",
                (run["status"], json.dumps(run, ensure_ascii=False), run_id),
            )
        return run

    def get(self, run_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT body FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise RunNotFound(run_id)
        return json.loads(row[0])

    def list(
        self, target_kind: str = "", dataset_id: str = "", status: str = "", limit: int = 100
    ) -> list[dict[str, Any]]:
        query, args = "SELECT body FROM runs WHERE 1=1", []
        for column, value in (("target_kind", target_kind), ("dataset_id", dataset_id), ("status", status)):
            if value:
                query += f" AND {column} = ?"
                args.append(value)
        query += " ORDER BY created_at DESC, id LIMIT ?"
        args.append(limit or 100)
        return [json.loads(r[0]) for r in self.db.all(query, args)]
