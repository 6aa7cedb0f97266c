"""Catalog versions: an index in the service's database (SQLite or PostgreSQL), contents in the artifact store."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dyag_core.catalog import Catalog
from dyag_core.errors import DyagError
from dyag_runtime.artifacts import Artifact, ArtifactStore
from dyag_runtime.database import Database, Store

# Steps are only ever appended. The first is the table as it was before versioned migrations (an old file keeps it);
# the second lets a version follow one other only: two replicas storing a version after the same one cannot both
# succeed, the second sees the first's and stores its version after it (compare-and-set on the catalog's history).
MIGRATIONS = (
    """CREATE TABLE IF NOT EXISTS catalog_versions (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    seq {serial},
    created_at DOUBLE PRECISION NOT NULL,
    entity_count BIGINT NOT NULL,
    source_format TEXT NOT NULL,
    artifact TEXT NOT NULL,        -- the normalised catalog (JSON artifact)
    upload TEXT NOT NULL,          -- the bytes as uploaded, kept so nothing is lost
    previous_version TEXT NOT NULL,
    added TEXT NOT NULL, changed TEXT NOT NULL, removed TEXT NOT NULL, warnings TEXT NOT NULL,
    UNIQUE (name, version)
)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS catalog_versions_successor ON catalog_versions (name, previous_version)",
)


@dataclass(frozen=True)
class VersionRow:
    name: str
    version: str
    created_at: float
    entity_count: int
    source_format: str
    artifact: Artifact
    upload: Artifact
    previous_version: str
    added: list[str]
    changed: list[str]
    removed: list[str]
    warnings: list[str]


class CatalogNotFound(DyagError):
    def __init__(self, name: str, version: str = ""):
        what = f"catalog {name!r}" + (f" version {version!r}" if version else "")
        super().__init__(
            "catalog_not_found", f"{what} not found; upload it first (POST /catalogs or dyag catalog upload)"
        )


class CatalogStore(Store):
    component = "catalogs"
    migrations = MIGRATIONS
    tables = ("catalog_versions",)

    def __init__(self, db: Database | Path, artifacts: ArtifactStore):
        super().__init__(db)
        self.artifacts = artifacts
        self._load = lru_cache(maxsize=16)(self._load_uncached)

    def latest(self, name: str) -> VersionRow | None:
        rows = self._select("WHERE name = ? ORDER BY seq DESC LIMIT 1", name)
        return rows[0] if rows else None

    def get(self, name: str, version: str = "") -> VersionRow:
        row = (
            self.latest(name)
            if not version
            else next(iter(self._select("WHERE name = ? AND version = ?", name, version)), None)
        )
        if row is None:
            raise CatalogNotFound(name, version)
        return row

    def versions(self, name: str) -> list[VersionRow]:
        rows = self._select("WHERE name = ? ORDER BY seq DESC", name)
        if not rows:
            raise CatalogNotFound(name)
        return rows

    def names(self) -> list[VersionRow]:
        rows = self._select("WHERE seq IN (SELECT MAX(seq) FROM catalog_versions GROUP BY name)")
        return sorted(rows, key=lambda r: r.name)  # in Python: the same order whatever the database's collation

    def add(self, row: VersionRow) -> bool:
        """Store a version after row.previous_version. False, storing nothing, when the catalog already has this
        version or another version after row.previous_version (another replica stored one meanwhile)."""
        return bool(
            self.db.run(
                "INSERT INTO catalog_versions (name, version, created_at, entity_count, source_format, artifact,"
                " upload, previous_version, added, changed, removed, warnings) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT DO NOTHING",
                (
                    row.name,
                    row.version,
                    row.created_at,
                    row.entity_count,
                    row.source_format,
                    json.dumps(row.artifact.to_dict()),
                    json.dumps(row.upload.to_dict()),
                    row.previous_version,
                    json.dumps(row.added),
                    json.dumps(row.changed),
                    json.dumps(row.removed),
                    json.dumps(row.warnings),
                ),
            )
        )

    def catalog(self, row: VersionRow) -> Catalog:
        return self._load(row.artifact.digest)

    def _load_uncached(self, digest: str) -> Catalog:
        return Catalog.from_dict(json.loads(self.artifacts.get_bytes(digest)))

    def _select(self, where: str, *args) -> list[VersionRow]:
        rows = self.db.all(
            "SELECT name, version, created_at, entity_count, source_format, artifact, upload, previous_version,"
            f" added, changed, removed, warnings FROM catalog_versions {where}",
            args,
        )
        return [
            VersionRow(
                name=r[0],
                version=r[1],
                created_at=r[2],
                entity_count=r[3],
                source_format=r[4],
                artifact=Artifact(**json.loads(r[5])),
                upload=Artifact(**json.loads(r[6])),
                previous_version=r[7],
                added=json.loads(r[8]),
                changed=json.loads(r[9]),
                removed=json.loads(r[10]),
                warnings=json.loads(r[11]),
            )
            for r in rows
        ]


def now() -> float:
    return time.time()
