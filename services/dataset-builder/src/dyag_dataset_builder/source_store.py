"""Catalog sources (a file or an HTTP(S) URL a catalog follows) and their poll state, in dataset-builder's catalog
database: a restarted service finds them there and resumes polling."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from dyag_runtime.sqlite import SqliteIndex

_SCHEMA = """
CREATE TABLE IF NOT EXISTS catalog_sources (
    name TEXT PRIMARY KEY,   -- the catalog
    record TEXT NOT NULL     -- SourceRecord as JSON
);
"""


@dataclass
class SourceRecord:
    name: str
    kind: str  # "file" | "http"
    location: str  # the absolute path, or the URL
    interval_s: int
    created_at: float
    reject_mojibake: bool = False
    roles_yaml: str = ""
    # Poll state. The validators (etag, last_modified, mtime_ns, size, sha256) always describe the last GOOD content:
    # a failed poll leaves them as they were, so the next poll reads the source again.
    last_checked_at: float | None = None
    last_changed_at: float | None = None
    last_version: str = ""
    error_code: str = ""
    error_message: str = ""
    error_at: float | None = None
    consecutive_failures: int = 0
    etag: str = ""
    last_modified: str = ""
    mtime_ns: int = 0
    size: int = 0
    sha256: str = ""
    checks: int = 0
    changes: int = 0

    @property
    def next_check_at(self) -> float:
        return self.created_at if self.last_checked_at is None else self.last_checked_at + self.interval_s

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SourceRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})


class SourceStore(SqliteIndex):
    schema = _SCHEMA

    def __init__(self, db_path: Path):
        super().__init__(db_path)

    def get(self, name: str) -> SourceRecord | None:
        with self.lock:
            row = self.db.execute("SELECT record FROM catalog_sources WHERE name = ?", (name,)).fetchone()
        return SourceRecord.from_json(row[0]) if row else None

    def all(self) -> list[SourceRecord]:
        with self.lock:
            rows = self.db.execute("SELECT record FROM catalog_sources ORDER BY name").fetchall()
        return [SourceRecord.from_json(r[0]) for r in rows]

    def put(self, record: SourceRecord) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO catalog_sources (name, record) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET record = excluded.record",
                (record.name, record.to_json()),
            )

    def delete(self, name: str) -> bool:
        with self.lock:
            return self.db.execute("DELETE FROM catalog_sources WHERE name = ?", (name,)).rowcount > 0
