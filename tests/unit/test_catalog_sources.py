"""Catalog sources' poll logic (dataset-builder's sources.py), without NATS or gRPC: the real upload path
(CatalogServicer.ingest, the catalog database on SQLite and on PostgreSQL, the artifact store) over a bus that records
what it would emit, HTTP through httpx's MockTransport, and a fake clock for the scheduler."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from dyag_core.errors import DyagError
from dyag_dataset_builder.catalog_store import CatalogStore
from dyag_dataset_builder.catalogs import CatalogServicer, poll_proto, source_proto
from dyag_dataset_builder.source_store import SourceStore
from dyag_dataset_builder.sources import CatalogSources, SourceLimits, SourceNotFound, check_source, filename_of_url
from dyag_runtime.artifacts import LocalArtifactStore

KEY = "applicationsia mini"


class RecordingBus:
    def __init__(self):
        self.events: list[tuple[str, object]] = []

    async def emit(self, event_type, data, *, subject="", correlation_id=""):
        self.events.append((event_type, data))


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def keyed(records) -> bytes:
    return json.dumps({KEY: records}, ensure_ascii=False).encode()


@pytest.fixture
def records(sample_catalog_bytes) -> list[dict]:
    return json.loads(sample_catalog_bytes)[KEY][:6]


@pytest.fixture
def world(tmp_path, database):
    """A dataset-builder's catalogs and sources on tmp_path (and each backend); `make(transport=…)` gives the sources
    object."""
    bus = RecordingBus()
    rt = SimpleNamespace(bus=bus, artifacts=LocalArtifactStore(tmp_path / "artifacts"))
    store = CatalogStore(database("catalogs.db"), rt.artifacts)
    servicer = CatalogServicer(rt, store, max_bytes=200_000)
    clock = FakeClock()

    def make(transport=None, **limits) -> CatalogSources:
        sources = CatalogSources(
            SourceStore(database("catalogs.db")),
            servicer.ingest,
            SourceLimits(max_bytes=200_000, **limits),
            versions=servicer.version_or_none,
            clock=clock,
            transport=transport,
        )
        servicer.sources = sources
        return sources

    return SimpleNamespace(bus=bus, store=store, servicer=servicer, clock=clock, make=make, tmp=tmp_path)


def run(coro):
    return asyncio.run(coro)


def write(path: Path, content: bytes, *, mtime: float | None = None) -> None:
    path.write_bytes(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


# --- what a user may ask for -------------------------------------------------------------------------------------
def test_check_source_refuses_what_it_cannot_follow(tmp_path):
    limits = SourceLimits(min_interval_s=5)
    existing = tmp_path / "c.json"
    existing.write_text("[]")
    cases = {
        ("", "", 0): ("invalid_source", "one of them"),
        (str(existing), "http://x/c.json", 0): ("invalid_source", "not both"),
        ("catalogs/c.json", "", 0): ("relative_path", "relative"),
        (str(tmp_path / "nope.json"), "", 0): ("file_missing", "does not exist"),
        (str(tmp_path), "", 0): ("not_a_file", "not a regular file"),
        ("", "ftp://host/c.json", 0): ("invalid_url", "'ftp'"),
        ("", "file:///etc/passwd", 0): ("invalid_url", "'file'"),
        ("", "/etc/passwd", 0): ("invalid_url", "'none'"),
        ("", "http:///c.json", 0): ("invalid_url", "no host"),
        ("", "http://x/c.json", 2): ("interval_too_small", "minimum of 5 s"),
        ("", "http://x/c.json", 10**7): ("interval_too_large", "maximum"),
    }
    for (path, url, interval), (code, phrase) in cases.items():
        with pytest.raises(DyagError) as error:
            check_source(path, url, interval, limits)
        assert error.value.code == code and phrase in error.value.message, (path, url, interval, error.value.message)
    assert check_source(str(existing), "", 0, limits) == ("file", str(existing), 60)
    assert check_source("", "https://x.example/c.json", 30, limits) == ("http", "https://x.example/c.json", 30)


def test_a_file_outside_the_allowed_folders_is_refused(tmp_path):
    allowed, other = tmp_path / "allowed", tmp_path / "other"
    allowed.mkdir(), other.mkdir()
    (allowed / "c.json").write_text("[]"), (other / "c.json").write_text("[]")
    (allowed / "link.json").symlink_to(other / "c.json")
    limits = SourceLimits(roots=(allowed,))
    assert check_source(str(allowed / "c.json"), "", 0, limits)[0] == "file"
    for path in (other / "c.json", allowed / "link.json", allowed / ".." / "other" / "c.json"):
        with pytest.raises(DyagError, match="outside the folders") as error:
            check_source(str(path), "", 0, limits)
        assert error.value.code == "path_not_allowed"


def test_filename_of_url_tells_the_loader_the_format():
    assert filename_of_url("https://h/export/apps.csv?x=1") == "apps.csv"
    assert filename_of_url("https://h/api/catalog", "text/csv") == "catalog.csv"
    assert filename_of_url("https://h/api/catalog", "application/x-ndjson") == "catalog.jsonl"
    assert filename_of_url("https://h/api/catalog", "application/octet-stream") == ""


# --- a file source -----------------------------------------------------------------------------------------------
def test_a_file_source_stores_each_real_change_once(world, records):
    sources = world.make()
    path = world.tmp / "apps.json"
    write(path, keyed(records), mtime=1000)

    async def scenario():
        first = await sources.set("apps", path=str(path))
        assert first.outcome == "changed" and first.version.entity_count == 6
        assert len(world.bus.events) == 1
        v1 = first.version.version

        same = await sources.poll("apps")  # nothing touched: a stat, no read
        assert (same.outcome, same.detail) == ("unchanged", "same mtime and size")
        assert same.version.version == v1

        write(path, keyed(records), mtime=2000)  # rewritten, same bytes
        rewritten = await sources.poll("apps")
        assert (rewritten.outcome, rewritten.detail) == ("unchanged", "same sha256")
        assert rewritten.record.mtime_ns == 2000 * 10**9

        write(
            path, json.dumps({KEY: records}, ensure_ascii=False, indent=4).encode(), mtime=3000
        )  # other bytes, same catalog
        reformatted = await sources.poll("apps")
        assert (reformatted.outcome, reformatted.detail) == ("unchanged", "same catalog version")

        changed = copy.deepcopy(records)
        changed[0]["statut si"] = "En fin de vie"
        removed = changed.pop()
        write(path, keyed(changed), mtime=4000)
        second = await sources.poll("apps")
        assert second.outcome == "changed"
        assert second.version.changed == [str(changed[0]["id"])] and second.version.removed == [str(removed["id"])]
        assert second.record.last_version == second.version.version != v1
        assert second.record.changes == 2 and second.record.checks == 5
        return v1, second.version.version

    v1, v2 = run(scenario())
    assert [e[0] for e in world.bus.events] == ["catalog.updated", "catalog.updated"]
    assert [e[1].version for e in world.bus.events] == [v1, v2]
    assert world.bus.events[1][1].previous_version == v1
    assert [v.version for v in world.store.versions("apps")] == [v2, v1]


BROKEN = {
    "not_json": (b'{"applicationsia mini": [{"id": 1, "nom": "A"}', {}, "not_json", "not valid JSON"),
    "no_records": (keyed([]), {}, "empty_catalog", "no records"),
    "mojibake_refused": (
        keyed([{"id": 1, "nom": "GÃ©oval"}]),
        {"reject_mojibake": True},
        "mojibake",
        "UTF-8 read as cp1252",
    ),
    "too_large": (b"[" + b" " * 300_000 + b"]", {}, "too_large", "over the catalog limit"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_file_keeps_the_last_good_version_and_reports_the_error(world, records, case):
    content, options, code, phrase = BROKEN[case]
    sources = world.make()
    path = world.tmp / "apps.json"
    write(path, keyed(records), mtime=1000)

    async def scenario():
        good = await sources.set("apps", path=str(path), **options)
        assert good.outcome == "changed"
        write(path, content, mtime=2000)
        bad = await sources.poll("apps")
        assert bad.outcome == "failed" and phrase in bad.detail, bad.detail
        assert bad.record.error_message == bad.detail and bad.record.consecutive_failures == 1
        assert bad.record.last_version == good.version.version and bad.version.version == good.version.version
        assert bad.record.mtime_ns == 1000 * 10**9  # the validators are the good content's: the next poll reads again
        again = await sources.poll("apps")
        assert again.outcome == "failed" and again.record.consecutive_failures == 2
        message = source_proto(again.record)
        assert message.last_error.message == bad.detail and message.last_error.at

        write(path, keyed(records), mtime=3000)  # back to the good content
        healed = await sources.poll("apps")
        assert (healed.outcome, healed.detail) == ("unchanged", "same sha256")
        assert healed.record.consecutive_failures == 0 and not healed.record.error_code
        assert not source_proto(healed.record).HasField("last_error")
        return bad.record.error_code

    assert run(scenario()) == code
    assert len(world.bus.events) == 1  # only the good version's
    assert len(world.store.versions("apps")) == 1


def test_a_file_that_disappears_is_reported_and_nothing_is_lost(world, records):
    sources = world.make()
    path = world.tmp / "apps.json"
    write(path, keyed(records))

    async def scenario():
        first = await sources.set("apps", path=str(path))
        path.unlink()
        gone = await sources.poll("apps")
        assert gone.outcome == "failed" and gone.record.error_code == "file_missing"
        assert gone.version.version == first.version.version

    run(scenario())
    assert len(world.store.versions("apps")) == 1


def test_a_source_whose_first_content_is_broken_stores_no_catalog(world):
    sources = world.make()
    path = world.tmp / "apps.json"
    write(path, b"{ not json")
    result = run(sources.set("apps", path=str(path)))
    assert result.outcome == "failed" and result.version is None and result.record.last_version == ""
    assert world.store.latest("apps") is None and not world.bus.events
    reply = poll_proto(result)
    assert reply.source.last_error.code == "not_json" and not reply.HasField("version")


# --- an HTTP source ----------------------------------------------------------------------------------------------
class FakeServer:
    """Answers like a real server: an ETag and Last-Modified, 304 to a matching If-None-Match; switchable."""

    def __init__(self, body: bytes):
        self.body, self.mode, self.validators = body, "ok", True
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "500":
            return httpx.Response(500, text="boom")
        if self.mode == "html":
            return httpx.Response(200, html="<html>maintenance</html>")
        etag = '"' + str(hash(self.body) & 0xFFFFFFFF) + '"'
        headers = {"content-type": "application/json"}
        if self.validators:
            headers |= {"etag": etag, "last-modified": "Wed, 01 Jan 2031 00:00:00 GMT"}
            if request.headers.get("if-none-match") == etag:
                return httpx.Response(304, headers=headers)
        return httpx.Response(200, content=self.body, headers=headers)


def test_an_http_source_uses_etags_and_stores_each_change_once(world, records):
    server = FakeServer(keyed(records))
    sources = world.make(transport=httpx.MockTransport(server.handler))
    url = "https://catalog.example/api/applications"

    async def scenario():
        first = await sources.set("apps", url=url, interval_s=30)
        assert first.outcome == "changed" and first.record.etag and first.record.last_modified
        assert "if-none-match" not in server.requests[0].headers

        same = await sources.poll("apps")
        assert (same.outcome, same.detail) == ("unchanged", "304 Not Modified")
        assert server.requests[1].headers["if-none-match"] == first.record.etag
        assert server.requests[1].headers["if-modified-since"] == "Wed, 01 Jan 2031 00:00:00 GMT"

        for mode, code, phrase in (
            ("500", "source_http_error", "HTTP 500"),
            ("down", "source_unreachable", "connection refused"),
            ("html", "not_a_catalog", "HTML page"),
        ):
            server.mode = mode
            bad = await sources.poll("apps")
            assert bad.outcome == "failed" and bad.record.error_code == code and phrase in bad.detail, bad.detail
            assert bad.record.etag == first.record.etag and bad.version.version == first.version.version
        assert bad.record.consecutive_failures == 3

        server.mode, server.body = "ok", b'{"applicationsia mini": [{"id": 1'  # broken JSON, answered 200
        broken = await sources.poll("apps")
        assert broken.outcome == "failed" and broken.record.error_code == "not_json"
        assert broken.record.etag == first.record.etag  # the broken content's ETag is not kept
        broken_again = await sources.poll("apps")  # and so it is asked for again, and refused again
        assert broken_again.outcome == "failed" and broken_again.record.consecutive_failures == 5

        changed = copy.deepcopy(records)
        changed.append({"id": 424242, "nom": "NOUVELLE-APP"})
        server.body = keyed(changed)
        second = await sources.poll("apps")
        assert second.outcome == "changed" and second.version.added == ["424242"]
        assert second.record.consecutive_failures == 0 and second.record.etag != first.record.etag
        assert (await sources.poll("apps")).detail == "304 Not Modified"

    run(scenario())
    assert len(world.bus.events) == 2 and len(world.store.versions("apps")) == 2


def test_a_server_without_validators_is_compared_by_sha256(world, records):
    server = FakeServer(keyed(records))
    server.validators = False
    sources = world.make(transport=httpx.MockTransport(server.handler))

    async def scenario():
        assert (await sources.set("apps", url="http://catalog.example/apps.json")).outcome == "changed"
        again = await sources.poll("apps")
        assert (again.outcome, again.detail) == ("unchanged", "same sha256")
        assert "if-none-match" not in server.requests[1].headers

    run(scenario())
    assert len(world.bus.events) == 1


def test_a_download_over_the_limit_is_refused(world):
    big = b"[" + b" " * 300_000 + b"]"
    sources = world.make(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=big)))
    result = run(sources.set("apps", url="http://catalog.example/apps.json"))
    assert result.outcome == "failed" and result.record.error_code == "too_large"
    assert world.store.latest("apps") is None


# --- set, replace, remove ----------------------------------------------------------------------------------------
def test_set_again_with_another_interval_keeps_the_state_and_remove_forgets_it(world, records):
    sources = world.make()
    path = world.tmp / "apps.json"
    write(path, keyed(records))

    async def scenario():
        await sources.set("apps", path=str(path), interval_s=60)
        again = await sources.set("apps", path=str(path), interval_s=10)
        assert again.outcome == "unchanged" and again.record.interval_s == 10 and again.record.checks == 2
        removed = await sources.remove("apps")
        assert removed.location == str(path)
        with pytest.raises(SourceNotFound):
            await sources.poll("apps")
        with pytest.raises(SourceNotFound, match="dyag catalog follow apps"):
            sources.get("apps")

    run(scenario())
    assert len(world.store.versions("apps")) == 1  # the versions stay


def test_sources_survive_a_restart(world, records):
    path = world.tmp / "apps.json"
    write(path, keyed(records))
    run(world.make().set("apps", path=str(path), interval_s=15))
    restarted = world.make()
    record = restarted.get("apps")
    assert (record.kind, record.location, record.interval_s, record.checks) == ("file", str(path), 15, 1)
    assert record.sha256 and record.last_version


# --- the scheduler -----------------------------------------------------------------------------------------------
def test_the_scheduler_polls_when_due_and_sleeps_otherwise(world, records):
    path = world.tmp / "apps.json"
    write(path, keyed(records), mtime=1000)
    sleeps: list[float] = []
    sources = world.make()

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        world.clock.now += seconds
        if len(sleeps) == 3:
            changed = copy.deepcopy(records)
            changed[1]["statut si"] = "En fin de vie"
            write(path, keyed(changed), mtime=2000)
        if len(sleeps) >= 6:
            raise asyncio.CancelledError

    sources.sleep = fake_sleep

    async def scenario():
        await sources.set("apps", path=str(path), interval_s=10)  # polls once, at once
        world.clock.now += 4  # a "poll now" 4 s later moves the next poll on
        await sources.poll("apps")
        with pytest.raises(asyncio.CancelledError):
            await sources._follow("apps")

    run(scenario())
    assert sleeps[0] == 10  # due 10 s after the poll now
    record = sources.get("apps")
    assert record.checks == 2 + 6 - 1  # one poll after each sleep but the last
    assert record.changes == 2 and len(world.bus.events) == 2


def test_start_resumes_an_overdue_source_at_once(world, records):
    path = world.tmp / "apps.json"
    write(path, keyed(records))
    run(world.make().set("apps", path=str(path), interval_s=60))
    world.clock.now += 3600  # the service was down for an hour
    changed = copy.deepcopy(records)
    changed[2]["statut si"] = "En fin de vie"
    write(path, keyed(changed), mtime=time.time() + 10)

    async def scenario():
        sources = world.make()
        await sources.start()
        for _ in range(200):
            if sources.get("apps").changes == 2:
                break
            await asyncio.sleep(0.02)
        await sources.stop()
        return sources.get("apps")

    record = run(scenario())
    assert record.changes == 2 and record.last_checked_at == world.clock.now
    assert len(world.bus.events) == 2
