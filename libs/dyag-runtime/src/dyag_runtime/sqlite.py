"""A service's own small SQLite index (datasets, models, runs…): one place for how it is opened.

WAL so readers never wait on the writer, autocommit (each statement is its own transaction), a busy
timeout for a second process on the same file, and one lock for the threads of the service.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class SqliteIndex:
    """Subclasses set `schema` (CREATE TABLE IF NOT EXISTS …); `db` and `lock` are theirs to use."""

    schema = ""

    def __init__(self, db_path: Path):
        db_path = Path(db_path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.path = db_path
        self.db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        if self.schema:
            self.db.executescript(self.schema)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.db.close()
