"""dyag_cli.backup without a stack: what a backup takes from a home, and what a restore refuses before it writes
anything (members outside the home, a manifest that disagrees). The round trip on a real stack is
tests/integration/test_backup.py."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile

import pytest

from dyag_cli.backup import (
    HEADER,
    MANIFEST,
    BackupError,
    _summary,
    backup,
    header,
    plan,
    restore,
    safe_member_name,
    verify,
)


def make_home(root):
    home = root / "home"
    (home / "data" / "svc").mkdir(parents=True)
    (home / "artifacts" / "sha256" / "ab").mkdir(parents=True)
    (home / "artifacts" / "sha256" / "ab" / "cdef").write_bytes(b"blob")
    (home / "api-key").write_text("dyag_secret\n")
    (home / "stack.json").write_text("{}")
    (home / "logs").mkdir()
    (home / "logs" / "gateway.log").write_text("log")
    db = sqlite3.connect(home / "data" / "svc" / "index.db")
    db.execute("pragma journal_mode=wal")
    db.execute("create table t (x)")
    db.execute("insert into t values (42)")
    db.commit()  # left open: its -wal and -shm files exist, as on a running stack
    (home / "data" / "svc" / "model.bin").write_bytes(b"\0" * 100)
    return home, db


def test_plan_takes_databases_through_the_backup_api_and_leaves_their_sidecars_logs_and_state(tmp_path):
    home, db = make_home(tmp_path)
    assert (home / "data" / "svc" / "index.db-wal").exists()
    found = plan(home)
    assert [m for _, m in found.sqlite] == ["home/data/svc/index.db"]
    assert [m for _, m in found.files] == ["home/data/svc/model.bin"]
    assert [m for _, m in found.api_key] == ["home/api-key"]
    db.close()


def test_round_trip_without_nats_and_the_refusals(tmp_path):
    home, db = make_home(tmp_path)
    archive = tmp_path / "b.tar.gz"
    manifest = backup(home, archive)
    db.close()
    assert manifest["parts"]["sqlite"] == {"files": 1, "bytes": manifest["members"]["home/data/svc/index.db"]["size"]}
    assert manifest["parts"]["artifacts"]["files"] == 1 and manifest["parts"]["kv"] == {"buckets": 0, "entries": 0}
    assert oct(archive.stat().st_mode & 0o777) == "0o600"

    with pytest.raises(BackupError, match="is not empty") as refused:
        restore(archive, home)
    assert refused.value.code == 2
    target = tmp_path / "restored"
    restore(archive, target)
    assert sqlite3.connect(target / "data" / "svc" / "index.db").execute("select x from t").fetchall() == [(42,)]
    assert (target / "artifacts" / "sha256" / "ab" / "cdef").read_bytes() == b"blob"
    assert not (target / "stack.json").exists() and not (target / "logs").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tar.gz", "home", "restored"]  # nothing left beside


def test_with_postgresql_a_backup_says_it_does_not_hold_the_registries_and_names_pg_dump(tmp_path, monkeypatch):
    home, db = make_home(tmp_path)
    monkeypatch.setenv("DYAG_DATABASE_URL", "postgresql://dyag:s3cret@db.internal:5432/dyag")
    said: list[str] = []
    manifest = backup(home, tmp_path / "b.tar.gz", progress=said.append)
    db.close()
    assert manifest["parts"]["database"] == {"url": "postgresql://dyag:***@db.internal:5432/dyag", "in_backup": False}
    note = next(line for line in said if "PostgreSQL" in line)
    assert "NOT in this backup" in note and "pg_dump --format=custom" in note and "pg_restore" in note
    assert "s3cret" not in json.dumps(manifest) and "s3cret" not in note
    assert any("pg_restore" in line for line in _summary(manifest))  # repeated by backup and restore's summary


def crafted(path, members: dict[str, bytes], manifest: dict | None = None) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in [(HEADER, json.dumps(header("2025-01-01T00:00:00Z")).encode()), *members.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if manifest is not None:
            data = json.dumps(manifest).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("name", ["home/../../evil", "/etc/evil", "evil", "home/", "other/x"])
def test_a_member_outside_the_home_is_refused_and_nothing_is_written(tmp_path, name):
    archive = tmp_path / "evil.tar.gz"
    crafted(archive, {name: b"x"}, {"members": {}})
    with pytest.raises(BackupError, match="unexpected member"):
        restore(archive, tmp_path / "target")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz"]
    assert not safe_member_name(name)


def test_no_manifest_and_a_manifest_that_disagrees(tmp_path):
    archive = tmp_path / "cut.tar.gz"
    crafted(archive, {"home/api-key": b"k"})
    with pytest.raises(BackupError, match="has no manifest.json"):
        restore(archive, tmp_path / "target")
    crafted(archive, {"home/api-key": b"k"}, {"members": {"home/api-key": {"sha256": "0" * 64, "size": 1}}})
    with pytest.raises(BackupError, match="home/api-key: corrupted"):
        restore(archive, tmp_path / "target")
    assert not (tmp_path / "target").exists()
    got = {"a": {"sha256": "1", "size": 1}, "extra": {"sha256": "2", "size": 1}}
    want = {"members": {"a": {"sha256": "1", "size": 1}, "gone": {"sha256": "3", "size": 1}}}
    assert verify(got, want) == ["gone: missing from the archive", "extra: not in the manifest"]
