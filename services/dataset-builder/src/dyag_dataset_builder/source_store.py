"""Catalog sources (a file or an HTTP(S) URL a catalog follows) and their poll state, in dataset-builder's catalog
database: a restarted service finds them there and resumes polling. Each record has a revision, so that replicas
change it by compare-and-set (`replace`): one replica polls a source when it is due, not each of them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from dyag_runtime.database import Store

MIGRATIONS = (
    """CREATE TABLE IF NOT EXISTS catalog_sources (
    name TEXT PRIMARY KEY,   -- the catalog
    record TEXT NOT NULL     -- SourceRecord as JSON
)""",
    "ALTER TABLE catalog_sources ADD COLUMN revision BIGINT NOT NULL DEFAULT 0",
)


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
    # The store's compare-and-set counter (its own column, not part of the JSON).
    revision: int = field(default=0, compare=False)

    @property
    def next_check_at(self) -> float:
        return self.created_at if self.last_checked_at is None else self.last_checked_at + self.interval_s

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "revision"})

    @classmethod
    def from_json(cls, text: str, revision: int = 0) -> SourceRecord:
        known = {f.name for f in fields(cls)} - {"revision"}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known}, revision=revision)


class SourceStore(Store):
    component = "sources"
    migrations = MIGRATIONS
    tables = ("catalog_sources",)

    def get(self, name: str) -> SourceRecord | None:
        row = self.db.one("SELECT record, revision FROM catalog_sources WHERE name = ?", (name,))
        return SourceRecord.from_json(*row) if row else None

    def all(self) -> list[SourceRecord]:
        rows = self.db.all("SELECT record, revision FROM catalog_sources")
        return sorted((SourceRecord.from_json(*r) for r in rows), key=lambda r: r.name)

    def put(self, record: SourceRecord) -> None:
        """Store the record whatever is there (a source set anew); the stored revision moves on."""
        self.db.run(
            "INSERT INTO catalog_sources (name, record, revision) VALUES (?, ?, 1) ON CONFLICT (name)"
            " DO UPDATE SET record = excluded.record, revision = catalog_sources.revision + 1",
            (record.name, record.to_json()),
        )

    def replace(self, record: SourceRecord) -> bool:
        """Compare-and-set: store the record only if the stored one is still at record.revision (then the record's
        revision moves on); False when another writer changed or removed it since it was read."""
        changed = self.db.run(
            "UPDATE catalog_sources SET record = ?, revision = revision + 1 WHERE name = ? AND revision = ?",
            (record.to_json(), record.name, record.revision),
        )
        if changed:
            record.revision += 1
        return bool(changed)

    def delete(self, name: str) -> bool:
        return self.db.run("DELETE FROM catalog_sources WHERE name = ?", (name,)) > 0
