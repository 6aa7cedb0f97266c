"""Every service's store on both of its databases, SQLite and the real PostgreSQL (the `database` fixture): what each
keeps, two replicas writing the same records at once, migrations (a file made by the code before them is adopted
and nothing in it is lost), and the errors an operator reads when the database cannot be used."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from dyag_core.errors import DyagError
from dyag_dataset_builder.catalog_store import CatalogStore, VersionRow
from dyag_dataset_builder.catalogs import CatalogServicer
from dyag_dataset_builder.datasets import DatasetNotFound, DatasetStore
from dyag_dataset_builder.source_store import SourceRecord, SourceStore
from dyag_dataset_builder.sources import CatalogSources, SourceLimits
from dyag_evaluator.runs import RunNotFound, RunStore
from dyag_gpu_lora_trainer.registry import ModelNotFound, ModelRegistry
from dyag_model_exporter.service import ExportRegistry
from dyag_openai_trainer.store import HostedStore
from dyag_runtime.artifacts import Artifact, LocalArtifactStore
from dyag_runtime.database import Database, DatabaseUnavailable, Store, redact
from dyag_runtime.settings import ServiceSettings
from tests.conftest import POSTGRES_URL, postgres_unreachable

KEY = "applicationsia mini"
ART = Artifact(name="a", digest="sha256:" + "0" * 64, size=1, media_type="application/json")


def together(*calls):
    """Each call in its own thread, started at the same moment; their results in order."""
    barrier = threading.Barrier(len(calls))

    def go(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))


def version_row(name: str, version: str, previous: str = "") -> VersionRow:
    return VersionRow(name, version, 1.0, 1, "jsonl", ART, ART, previous, [], [], [], [])


# --- each store ----------------------------------------------------------------------------------------------------
def test_datasets_are_kept_replaced_by_id_and_listed(database):
    store = DatasetStore(database("datasets.db"))
    for i, version in enumerate(("v1", "v1", "v2")):
        store.put({"id": f"ds-{i}", "catalog": "apps", "catalog_version": version, "n": i})
    store.put({"id": "ds-0", "catalog": "apps", "catalog_version": "v1", "n": 10})  # the same id: replaced
    again = DatasetStore(database("datasets.db"))  # a restarted service, or another replica
    assert again.get("ds-0")["n"] == 10
    assert [d["id"] for d in again.list("apps")] == ["ds-0", "ds-2", "ds-1"]  # newest first
    assert again.latest_for("apps", "v1")["id"] == "ds-0" and again.latest_for("apps", "v9") is None
    assert again.list("other") == []
    with pytest.raises(DatasetNotFound):
        again.get("ds-9")


def test_runs_are_kept_updated_and_listed(database):
    run = {"id": "evaluator-1", "name": "n", "created_at": "2026-01-01T00:00:00Z", "status": "queued"}
    run |= {"target": {"kind": "rag", "collection": "col"}, "dataset_id": "ds-1"}
    store = RunStore(database("evaluator.sqlite"))
    store.insert(run)
    store.insert(run | {"name": "again"})  # kept as it was
    store.insert(run | {"id": "evaluator-2", "created_at": "2026-01-02T00:00:00Z", "target": {"kind": "lora"}})
    store.update("evaluator-1", status="succeeded", summary={"accuracy": 0.5})
    again = RunStore(database("evaluator.sqlite"))
    got = again.get("evaluator-1")
    assert got["name"] == "n" and got["status"] == "succeeded" and got["summary"] == {"accuracy": 0.5}
    assert [r["id"] for r in again.list(target_kind="rag", status="succeeded", dataset_id="ds-1")] == ["evaluator-1"]
    assert [r["id"] for r in again.list()] == ["evaluator-2", "evaluator-1"]  # newest first
    assert again.list(target_kind="hosted") == [] and again.list(status="failed") == []
    with pytest.raises(RunNotFound):
        again.update("evaluator-3", status="failed")


@pytest.mark.parametrize("registry", [ModelRegistry, ExportRegistry])
def test_a_registry_keeps_records_newest_first_and_filters_them(database, registry):
    store = registry(database("registry.db"))
    column = store.columns[0]
    for i in range(4):
        store.put({"id": f"r-{i}", "created_at": f"2026-01-0{i + 1}T00:00:00Z", column: "a" if i % 2 else "b"})
    store.put({"id": "r-0", "created_at": "2026-01-01T00:00:00Z", column: "b", "note": "replaced"})
    again = registry(database("registry.db"))
    assert again.get("r-0")["note"] == "replaced"
    assert [r["id"] for r in again.list(limit=3)] == ["r-3", "r-2", "r-1"]
    assert [r["id"] for r in again.list(**{column: "a"})] == ["r-3", "r-1"]
    with pytest.raises(DyagError) as caught:
        again.get("r-9")
    assert caught.value.code.endswith("not_found")
    if registry is ModelRegistry:
        with pytest.raises(ModelNotFound):
            again.get("r-9")


def test_hosted_uploads_plans_and_models(database):
    store = HostedStore(database("hosted.db"))
    store.put_upload("k", "file-1", "f.jsonl", 10, "sha256:x")
    store.put_upload("k", "file-2", "f.jsonl", 10, "sha256:x")
    assert store.upload("k")["file_id"] == "file-2"
    store.forget_upload("k")
    assert store.upload("k") is None

    assert store.claim_plan("p", {"base_model": "gpt", "key": "ignored"}, "job-1", lease_s=600)
    plan = store.plan("p")
    assert plan == {"key": "p", "remote_job_id": "", "remote_status": "", "model_id": "", "base_model": "gpt"}
    assert store.claim_plan("p", {}, "job-1", lease_s=600)  # its claimant again (the job restarted)
    assert not store.claim_plan("p", {}, "job-2", lease_s=600)  # another job while job-1 creates the remote job
    assert store.claim_plan("p", {}, "job-2", lease_s=-1)  # job-1's claim is older than the lease: it died
    store.update_plan("p", remote_job_id="ftjob-1", remote_status="running", ignored="x")
    assert not store.claim_plan("p", {}, "job-3", lease_s=-1)  # a live remote job is never created again
    store.update_plan("p", remote_status="failed")
    assert store.claim_plan("p", {}, "job-3", lease_s=600)  # a failed one may be: one claimant clears it
    assert store.plan("p")["remote_job_id"] == "" and not store.claim_plan("p", {}, "job-4", lease_s=600)

    store.put_model({"id": "ft:1", "base_model": "gpt", "dataset_id": "ds-1"}, "p")
    store.put_model({"id": "ft:2", "base_model": "gpt", "dataset_id": "ds-2"}, "p")
    again = HostedStore(database("hosted.db"))
    assert again.model("ft:1")["dataset_id"] == "ds-1"
    assert {m["id"] for m in again.models(base_model="gpt")} == {"ft:1", "ft:2"}
    assert [m["id"] for m in again.models(dataset_id="ds-2")] == ["ft:2"]


def test_catalog_versions_follow_one_another(database):
    store = CatalogStore(database("catalogs.db"), LocalArtifactStore(Path("/nonexistent")))
    assert store.add(version_row("b-apps", "v1"))
    assert store.add(version_row("b-apps", "v2", "v1"))
    assert not store.add(version_row("b-apps", "v2", "v1"))  # the same version again: nothing stored
    assert not store.add(version_row("b-apps", "v3", "v1"))  # v1 already has a successor (another replica's v2)
    assert not store.add(version_row("b-apps", "v1", "v2"))  # an earlier version cannot come back
    assert store.add(version_row("a-apps", "v1"))
    assert [r.version for r in store.versions("b-apps")] == ["v2", "v1"]
    assert [(r.name, r.version) for r in store.names()] == [("a-apps", "v1"), ("b-apps", "v2")]


def test_a_source_record_changes_by_compare_and_set(database):
    store = SourceStore(database("catalogs.db"))
    store.put(SourceRecord("apps", "file", "/x.json", 60, 1.0))
    first, second = store.get("apps"), SourceStore(database("catalogs.db")).get("apps")
    first.checks = 1
    assert store.replace(first) and first.revision == second.revision + 1
    second.checks = 5
    assert not store.replace(second)  # read before the first replica's change: refused
    assert store.get("apps").checks == 1
    assert store.delete("apps") and not store.replace(first) and store.get("apps") is None


# --- two replicas at once --------------------------------------------------------------------------------------------
def test_two_replicas_writing_the_same_records_leave_no_duplicate_and_lose_nothing(database):
    replicas = [ExportRegistry(database("exports.db")) for _ in range(2)]
    datasets = [DatasetStore(database("datasets.db")) for _ in range(2)]

    def write(registry, store, tag):
        def go():
            for i in range(40):
                registry.put({"id": f"exp-{i}", "created_at": f"2026-01-01T00:00:{i:02d}Z", "by": tag})
                store.put({"id": f"ds-{i}", "catalog": "apps", "catalog_version": "v1", "by": tag})

        return go

    together(*(write(replicas[i], datasets[i], f"replica-{i}") for i in range(2)))
    assert sorted(r["id"] for r in replicas[0].list(limit=1000)) == sorted(f"exp-{i}" for i in range(40))
    assert sorted(d["id"] for d in datasets[1].list()) == sorted(f"ds-{i}" for i in range(40))


def test_two_replicas_updating_one_run_lose_neither_change(database):
    stores = [RunStore(database("evaluator.sqlite")) for _ in range(2)]
    stores[0].insert({"id": "run-1", "created_at": "t", "status": "running", "target": {"kind": "rag"}})
    together(
        *(
            (lambda store=store, i=i: [store.update("run-1", **{f"field_{i}_{n}": n}) for n in range(25)])
            for i, store in enumerate(stores)
        )
    )
    run = stores[1].get("run-1")
    assert all(run[f"field_{i}_{n}"] == n for i in range(2) for n in range(25))


def test_of_two_replicas_claiming_one_plan_one_creates_its_remote_job(database):
    stores = [HostedStore(database("hosted.db")) for _ in range(4)]
    claims = together(*(lambda s=s, i=i: s.claim_plan("p", {}, f"job-{i}", 600) for i, s in enumerate(stores)))
    assert claims.count(True) == 1


def test_two_replicas_uploading_catalogs_at_once_keep_one_linear_history(database, tmp_path, sample_catalog_bytes):
    """Each replica uploads its own changes of one catalog at the same time: every new content is stored once, each
    version after the one before it (no fork, no lost version), and an upload of the same content is `unchanged`."""
    records = json.loads(sample_catalog_bytes)[KEY][:4]
    artifacts = LocalArtifactStore(tmp_path / "artifacts")

    def replica():
        rt = SimpleNamespace(bus=SimpleNamespace(emit=lambda *a, **k: asyncio.sleep(0)), artifacts=artifacts)
        return CatalogServicer(rt, CatalogStore(database("catalogs.db"), artifacts), max_bytes=200_000)

    def upload(servicer, content):
        return lambda: asyncio.run(servicer.ingest(name="apps", content=content, filename="c.json"))

    a, b = replica(), replica()
    base = json.dumps({KEY: records}).encode()
    upload(a, base)()
    contents = []
    for i in range(6):
        changed = [dict(r) for r in records]
        changed[0]["description"] = f"change {i}"
        contents.append(json.dumps({KEY: changed}).encode())
    for i in range(0, 6, 2):
        together(upload(a, contents[i]), upload(b, contents[i + 1]))
    last = json.dumps({KEY: records[:3]}).encode()
    together(upload(a, last), upload(b, last))  # the same content from both: stored once
    history = list(reversed(a.store.versions("apps")))
    assert len(history) == len({r.version for r in history}) == 8
    assert [r.previous_version for r in history] == ["", *(r.version for r in history[:-1])]
    assert [unchanged for _, unchanged in together(upload(a, last), upload(b, last))] == [True, True]
    with pytest.raises(DyagError) as caught:  # an earlier content: refused, named
        upload(b, base)()
    assert caught.value.code == "conflict" and f"as version {history[0].version}" in caught.value.message


def test_of_two_replicas_following_one_source_one_polls_it_when_due(database, tmp_path, sample_catalog_bytes):
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    source = tmp_path / "apps.json"
    source.write_bytes(sample_catalog_bytes)
    now = [1_800_000_000.0]

    def replica() -> CatalogSources:
        rt = SimpleNamespace(bus=SimpleNamespace(emit=lambda *a, **k: asyncio.sleep(0)), artifacts=artifacts)
        servicer = CatalogServicer(rt, CatalogStore(database("catalogs.db"), artifacts), max_bytes=2_000_000)
        limits = SourceLimits(max_bytes=2_000_000, min_interval_s=1, roots=(tmp_path,))
        return CatalogSources(SourceStore(database("catalogs.db")), servicer.ingest, limits, clock=lambda: now[0])

    a, b = replica(), replica()
    asyncio.run(a.set("apps", path=str(source), interval_s=60))
    now[0] += 61
    polls = together(*(lambda s=s: asyncio.run(s.poll("apps", due_only=True)) for s in (a, b)))
    assert sum(p is not None for p in polls) == 1
    assert a.get("apps").checks == 2  # the first poll (set), then one of the replicas'

    async def follows_what_the_other_sets() -> bool:
        """b runs (its scheduler and its watch) while a sets a second source: b follows it too."""
        b.sleep = lambda seconds: asyncio.sleep(0.01)  # the watch looks every 10 ms, not min_interval_s
        await b.start()
        await a.set("more", path=str(source), interval_s=60)
        for _ in range(300):
            if "more" in b._tasks:
                break
            await asyncio.sleep(0.01)
        followed = {"apps", "more"} <= set(b._tasks)
        await b.stop()
        return followed

    assert asyncio.run(follows_what_the_other_sets())


# --- migrations ------------------------------------------------------------------------------------------------------
class Notes(Store):
    component = "notes"
    migrations = ("CREATE TABLE notes (seq {serial}, id TEXT NOT NULL UNIQUE)",)


def test_migrations_are_applied_once_in_order_and_a_newer_schema_is_refused(database):
    Notes(database("notes.db"))
    db = database("notes.db")
    db.run("INSERT INTO notes (id) VALUES (?)", ("a",))
    db.run("INSERT INTO notes (id) VALUES (?)", ("b",))
    assert db.all("SELECT id, seq FROM notes ORDER BY seq") == [("a", 1), ("b", 2)]
    Notes(db)  # opened again: nothing applied again (CREATE TABLE without IF NOT EXISTS would fail)

    class Later(Notes):
        migrations = (*Notes.migrations, "ALTER TABLE notes ADD COLUMN text TEXT NOT NULL DEFAULT ''")

    Later(db)
    assert db.version("notes") == 2 and db.all("SELECT id, text FROM notes ORDER BY seq") == [("a", ""), ("b", "")]
    with pytest.raises(DyagError) as caught:
        Notes(db)  # an older release on a schema a newer one migrated
    assert caught.value.code == "database_too_new" and "schema version 2" in caught.value.message


def test_replicas_starting_together_migrate_once(database):
    """Eight replicas open their stores at the same moment on an empty database: one applies each step."""
    results = together(*(lambda: HostedStore(database("hosted.db")).db.version("hosted") for _ in range(8)))
    assert results == [len(HostedStore.migrations)] * 8


def test_a_failed_migration_changes_nothing(database):
    db = database("notes.db")

    class Broken(Notes):
        migrations = (*Notes.migrations, "THIS IS NOT SQL")

    with pytest.raises(Exception, match="(?i)syntax"):
        Broken(db)
    Notes(db)  # the first step was rolled back with the broken one (else CREATE TABLE would fail): it applies now
    assert db.version("notes") == 1


# The schemas the stores created before versioned migrations (as they were released), and a row in each: the files of
# an existing `dyag up` installation.
OLD_FILES = {
    "catalogs.db": """
CREATE TABLE IF NOT EXISTS catalog_versions (
    name TEXT NOT NULL, version TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL,
    entity_count INTEGER NOT NULL, source_format TEXT NOT NULL, artifact TEXT NOT NULL, upload TEXT NOT NULL,
    previous_version TEXT NOT NULL, added TEXT NOT NULL, changed TEXT NOT NULL, removed TEXT NOT NULL,
    warnings TEXT NOT NULL, UNIQUE (name, version));
CREATE TABLE IF NOT EXISTS catalog_sources (name TEXT PRIMARY KEY, record TEXT NOT NULL);
INSERT INTO catalog_versions (name, version, created_at, entity_count, source_format, artifact, upload,
    previous_version, added, changed, removed, warnings)
    VALUES ('apps', 'v1', 1.5, 3, 'jsonl', '{art}', '{art}', '', '["a"]', '[]', '[]', '[]');
INSERT INTO catalog_sources VALUES ('apps', '{{"name": "apps", "kind": "file", "location": "/x.json",
    "interval_s": 60, "created_at": 1.0, "checks": 7}}');
""",
    "datasets.db": """
CREATE TABLE IF NOT EXISTS datasets (id TEXT PRIMARY KEY, catalog TEXT NOT NULL, catalog_version TEXT NOT NULL,
    created_at REAL NOT NULL, body TEXT NOT NULL);
INSERT INTO datasets VALUES ('ds-1', 'apps', 'v1', 1.5, '{{"id": "ds-1", "catalog": "apps"}}');
""",
    "evaluator.sqlite": """
CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, status TEXT NOT NULL,
    target_kind TEXT NOT NULL, dataset_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at);
INSERT INTO runs VALUES ('run-1', 't', 'succeeded', 'rag', 'ds-1', '{{"id": "run-1", "status": "succeeded"}}');
""",
    "hosted.db": """
CREATE TABLE IF NOT EXISTS uploads (key TEXT PRIMARY KEY, file_id TEXT NOT NULL, filename TEXT NOT NULL,
    bytes INTEGER NOT NULL, content_hash TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS plans (key TEXT PRIMARY KEY, remote_job_id TEXT NOT NULL DEFAULT '',
    remote_status TEXT NOT NULL DEFAULT '', model_id TEXT NOT NULL DEFAULT '', updated_at REAL NOT NULL,
    body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (id TEXT PRIMARY KEY, plan_key TEXT NOT NULL, base_model TEXT NOT NULL,
    dataset_id TEXT NOT NULL, created_at REAL NOT NULL, body TEXT NOT NULL);
INSERT INTO uploads VALUES ('k', 'file-1', 'f.jsonl', 10, 'sha256:x', 1.5);
INSERT INTO plans VALUES ('p', 'ftjob-1', 'running', '', 1.5, '{{"base_model": "gpt"}}');
INSERT INTO models VALUES ('ft:1', 'p', 'gpt', 'ds-1', 1.5, '{{"id": "ft:1"}}');
""",
    "models.db": """
CREATE TABLE IF NOT EXISTS models (id TEXT PRIMARY KEY, base_model TEXT NOT NULL DEFAULT '',
    dataset_id TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, body TEXT NOT NULL);
INSERT INTO models VALUES ('lora-1', 'default', 'ds-1', 't', '{{"id": "lora-1", "base_model": "default"}}');
""",
    "exports.db": """
CREATE TABLE IF NOT EXISTS exports (id TEXT PRIMARY KEY, model_id TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, body TEXT NOT NULL);
INSERT INTO exports VALUES ('exp-1', 'lora-1', 'succeeded', 't', '{{"id": "exp-1", "status": "succeeded"}}');
""",
}


def test_files_made_before_versioned_migrations_open_with_all_their_data(tmp_path):
    for name, script in OLD_FILES.items():
        db = sqlite3.connect(tmp_path / name)
        db.executescript(script.format(art=json.dumps(ART.to_dict())))
        db.close()

    catalogs = CatalogStore(tmp_path / "catalogs.db", LocalArtifactStore(tmp_path / "artifacts"))
    row = catalogs.get("apps")
    assert (row.version, row.entity_count, row.added, row.artifact) == ("v1", 3, ["a"], ART)
    assert catalogs.add(version_row("apps", "v2", "v1")) and not catalogs.add(version_row("apps", "v3", "v1"))
    sources = SourceStore(catalogs.db)
    record = sources.get("apps")
    assert record.checks == 7 and record.revision == 0 and sources.replace(record) and record.revision == 1
    assert DatasetStore(tmp_path / "datasets.db").get("ds-1")["catalog"] == "apps"
    assert RunStore(tmp_path / "evaluator.sqlite").update("run-1", note="x")["status"] == "succeeded"
    hosted = HostedStore(tmp_path / "hosted.db")
    assert hosted.upload("k")["file_id"] == "file-1" and hosted.model("ft:1") == {"id": "ft:1"}
    assert hosted.plan("p")["remote_job_id"] == "ftjob-1" and not hosted.claim_plan("p", {}, "job-1", 600)
    assert ModelRegistry(tmp_path / "models.db").list(base_model="default")[0]["id"] == "lora-1"
    assert ExportRegistry(tmp_path / "exports.db").get("exp-1")["status"] == "succeeded"
    versions = sqlite3.connect(tmp_path / "hosted.db").execute("SELECT component, version FROM schema_version")
    assert dict(versions.fetchall()) == {"hosted": len(HostedStore.migrations)}


@pytest.fixture
def fresh_schemas():
    """`schema(service)`: a schema per service on the tests' PostgreSQL, dropped after the test."""
    if reason := postgres_unreachable():
        pytest.skip(reason)
    prefix = f"test_{uuid.uuid4().hex[:12]}"
    yield lambda service: f"{prefix}_{service}"
    admin = Database(POSTGRES_URL)
    for (schema,) in admin.all("SELECT nspname FROM pg_namespace WHERE nspname LIKE ?", (f"{prefix}%",)):
        admin.run(f'DROP SCHEMA "{schema}" CASCADE')
    admin.close()


def test_switching_to_postgresql_carries_the_sqlite_files_over_once(tmp_path, fresh_schemas):
    for name, script in OLD_FILES.items():
        db = sqlite3.connect(tmp_path / name)
        db.executescript(script.format(art=json.dumps(ART.to_dict())))
        db.close()
    CatalogStore(tmp_path / "catalogs.db", LocalArtifactStore(tmp_path)).add(version_row("apps", "v2", "v1"))

    services = {"evaluator.sqlite": "evaluator", "hosted.db": "hosted", "models.db": "lora", "exports.db": "exporter"}

    def open_(name: str) -> Database:
        schema = fresh_schemas(services.get(name, "dataset_builder"))
        return Database(POSTGRES_URL, schema=schema, sqlite_before=tmp_path / name)

    catalogs = CatalogStore(open_("catalogs.db"), LocalArtifactStore(tmp_path))
    assert [r.version for r in catalogs.versions("apps")] == ["v2", "v1"] and catalogs.get("apps", "v1").added == ["a"]
    assert catalogs.add(version_row("apps", "v3", "v2"))  # the sequence goes on after the rows carried over
    assert [r.version for r in catalogs.versions("apps")] == ["v3", "v2", "v1"]
    assert SourceStore(catalogs.db).get("apps").checks == 7
    assert DatasetStore(open_("datasets.db")).get("ds-1")["catalog"] == "apps"
    assert RunStore(open_("evaluator.sqlite")).get("run-1")["status"] == "succeeded"
    hosted = HostedStore(open_("hosted.db"))
    assert hosted.upload("k")["file_id"] == "file-1" and hosted.plan("p")["remote_job_id"] == "ftjob-1"
    assert [m["id"] for m in ModelRegistry(open_("models.db")).list()] == ["lora-1"]
    assert ExportRegistry(open_("exports.db")).get("exp-1")["status"] == "succeeded"

    (tmp_path / "datasets.db").unlink()
    db = sqlite3.connect(tmp_path / "datasets.db")  # a file with other rows: never carried over a second time
    db.executescript(OLD_FILES["datasets.db"].replace("ds-1", "ds-2"))
    db.close()
    assert [d["id"] for d in DatasetStore(open_("datasets.db")).list()] == ["ds-1"]
    assert sqlite3.connect(tmp_path / "catalogs.db").execute("SELECT COUNT(*) FROM catalog_versions").fetchone() == (2,)


# --- how a service opens its database, and what it says when it cannot ----------------------------------------------
def test_a_service_opens_sqlite_files_by_default_and_its_schema_with_a_url(tmp_path, monkeypatch):
    monkeypatch.delenv("DYAG_DATABASE_URL", raising=False)
    settings = ServiceSettings(service_name="dataset-builder", data_dir=tmp_path)
    db = settings.database("catalogs.db")
    assert db.dialect == "sqlite" and db.where == str(tmp_path / "catalogs.db")
    if postgres_unreachable():
        pytest.skip(postgres_unreachable())
    monkeypatch.setenv("DYAG_DATABASE_URL", POSTGRES_URL)
    db = ServiceSettings(service_name="dataset-builder", data_dir=tmp_path).database("catalogs.db")
    assert db.dialect == "postgresql" and db.schema == "dataset_builder"
    assert db.sqlite_before == tmp_path / "catalogs.db"  # carried over the first time (Database.migrate)
    assert db.one("SHOW search_path") == ("dataset_builder",)
    db.close()


def test_an_unreachable_database_is_named_without_its_password():
    url = "postgresql://dyag:s3cret-pw@127.0.0.1:1/dyag?sslmode=disable"
    with pytest.raises(DatabaseUnavailable) as caught:
        Database(url, schema="evaluator")
    message = caught.value.message
    assert caught.value.code == "unavailable"  # gRPC UNAVAILABLE
    assert "postgresql://dyag:***@127.0.0.1:1/dyag" in message and "(schema evaluator)" in message
    assert "s3cret" not in message and "is unreachable" in message
    assert redact("postgresql://u:p@h/d?password=p&x=1") == "postgresql://u:***@h/d?password=***&x=1"
    assert redact("postgresql://h/d") == "postgresql://h/d"


def test_a_database_url_of_another_kind_is_refused():
    with pytest.raises(DyagError) as caught:
        Database("mysql://root:pw@db/dyag")
    assert "postgresql://" in caught.value.message and "pw" not in caught.value.message


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_lost_connection_is_opened_again(database):
    store = RunStore(database("evaluator.sqlite"))
    store.insert({"id": "run-1", "created_at": "t", "status": "queued", "target": {"kind": "rag"}})
    admin = Database(POSTGRES_URL)
    admin.run("SELECT pg_terminate_backend(?)", (store.db._conn.info.backend_pid,))
    admin.close()
    assert store.get("run-1")["status"] == "queued"  # a new connection, the statement tried again
