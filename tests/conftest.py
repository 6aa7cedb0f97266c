"""Fixtures shared by every test: the repository and its sample catalogs."""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dyag_core.errors import DyagError
from dyag_runtime.database import Database

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_catalog_path() -> Path:
    return REPO_ROOT / "examples" / "test-mygusi" / "applicationsIA_mini_normalized.json"


@pytest.fixture(scope="session")
def sample_catalog_bytes(sample_catalog_path: Path) -> bytes:
    return sample_catalog_path.read_bytes()


@pytest.fixture(scope="session")
def products_dir() -> Path:
    return REPO_ROOT / "examples" / "products"


# --- the stores' databases: every store test runs on SQLite and on the real PostgreSQL -----------------------------
# DYAG_TEST_DATABASE_URL: the PostgreSQL the tests use (each test in a fresh schema, dropped after it).
POSTGRES_URL = os.environ.get("DYAG_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@functools.cache
def postgres_unreachable() -> str:
    """Why the tests' PostgreSQL cannot be used ("" when it can)."""
    try:
        Database(POSTGRES_URL).close()
    except DyagError as exc:
        return exc.message
    return ""


@contextlib.contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """The URL of a new database on the tests' PostgreSQL, dropped afterwards; the test is skipped, saying why, where
    PostgreSQL does not answer."""
    if reason := postgres_unreachable():
        pytest.skip(f"PostgreSQL integration tests skipped: {reason}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = Database(POSTGRES_URL)
    admin.run(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(POSTGRES_URL)._replace(path=f"/{name}").geturl()
    finally:
        admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> Iterator[Callable[[str], Database]]:
    """`database("catalogs.db")` opens a store's database: a SQLite file in tmp_path, or a fresh PostgreSQL schema
    (one per test, dropped after it). Each call opens a new connection to the same place: a second replica, or the
    service restarted."""
    opened: list[Database] = []
    schema = f"test_{uuid.uuid4().hex[:12]}"
    if request.param == "postgresql" and (reason := postgres_unreachable()):
        pytest.skip(f"PostgreSQL store tests skipped: {reason} (set DYAG_TEST_DATABASE_URL)")

    def open_(name: str) -> Database:
        db = Database(tmp_path / name) if request.param == "sqlite" else Database(POSTGRES_URL, schema=schema)
        opened.append(db)
        return db

    yield open_
    for db in opened:
        db.close()
    if request.param == "postgresql":
        admin = Database(POSTGRES_URL)
        admin.run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
