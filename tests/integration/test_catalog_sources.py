"""Catalog sources against the real stack (nats-server, dataset-builder, the gateway): a watched file and an HTTP
source served by a local test server (ETag and 304, switchable to 500 or broken JSON). Each real change is one new
version and one catalog.updated; a poll that finds nothing new stores and emits nothing; a broken source never
becomes a version, reports its error, and keeps the last good version."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dyag_cli.stack import free_port
from tests.integration.conftest import read_events

pytestmark = pytest.mark.integration
KEY = "applicationsia mini"


def catalog_bytes(records: list[dict], **dump) -> bytes:
    return json.dumps({KEY: records}, ensure_ascii=False, **dump).encode()


@pytest.fixture(scope="module")
def records(sample_catalog_bytes) -> list[dict]:
    return json.loads(sample_catalog_bytes)[KEY][:8]


def changed_records(records: list[dict], status: str) -> list[dict]:
    changed = copy.deepcopy(records)
    changed[0]["statut si"] = status
    return changed


def write(path: Path, content: bytes, mtime: float) -> None:
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not after {timeout} s")


def updates(rs, name: str, expect: int) -> list[dict]:
    """The catalog.updated events of one catalog (the stream holds every test's)."""
    events = read_events(rs.nats_url, "dyag.events.catalog.updated", expect=1, timeout=5)
    mine = [e["data"] for e in events if e["data"]["name"] == name]
    if len(mine) < expect:  # published just now: give JetStream a moment
        time.sleep(0.5)
        mine = [e["data"] for e in read_events(rs.nats_url, "dyag.events.catalog.updated") if e["data"]["name"] == name]
    return mine


# --- a local HTTP server that behaves like a catalog export endpoint ---------------------------------------------
class CatalogServer:
    """GET /apps.json: the body with a strong ETag and Last-Modified, 304 to a matching If-None-Match; `mode` switches
    it to answer 500 or broken JSON. Every request is recorded (method, path, If-None-Match, status answered)."""

    def __init__(self, body: bytes):
        self.body, self.mode = body, "ok"
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                status = server.answer(self)
                server.requests.append(
                    {"path": self.path, "if_none_match": self.headers.get("If-None-Match"), "status": status}
                )

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/apps.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    def answer(self, handler: BaseHTTPRequestHandler) -> int:
        if self.mode == "500":
            return self._send(handler, 500, b"internal error", "text/plain")
        if self.mode == "broken":
            return self._send(handler, 200, b'{"applicationsia mini": [{"id": 1, "nom": ', "application/json")
        if handler.headers.get("If-None-Match") == self.etag:
            return self._send(handler, 304, b"", None)
        return self._send(handler, 200, self.body, "application/json")

    def _send(self, handler, status: int, body: bytes, media_type: str | None) -> int:
        handler.send_response(status)
        if status in (200, 304) and self.mode == "ok":
            handler.send_header("ETag", self.etag)
            handler.send_header("Last-Modified", "Sat, 01 Feb 2031 10:00:00 GMT")
        if media_type:
            handler.send_header("Content-Type", media_type)
        if status != 304:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if status != 304:
            handler.wfile.write(body)
        return status

    def __enter__(self) -> CatalogServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- a watched file ----------------------------------------------------------------------------------------------
def test_a_watched_file_becomes_one_version_per_real_change(running_stack, records, tmp_path):
    rs, name = running_stack, "followed-file"
    path = tmp_path / "apps.json"
    write(path, catalog_bytes(records), mtime=1_000_000)

    # An hour between polls while the test polls by itself ("poll now"): no scheduled poll gets in between.
    first = rs.http.put(f"/catalogs/{name}/source", json={"path": str(path), "interval_s": 3600})
    assert first.status_code == 200, first.text
    first = first.json()
    assert (
        first["outcome"] == "changed" and first["version"]["entity_count"] == 8 and len(first["version"]["added"]) == 8
    )
    assert (
        first["source"]["kind"] == "file"
        and first["source"]["path"] == str(path)
        and first["source"]["interval_s"] == 3600
    )
    v1 = first["version"]["version"]

    def poll() -> dict:
        reply = rs.http.post(f"/catalogs/{name}/source/poll")
        assert reply.status_code == 200, reply.text
        return reply.json()

    same = poll()
    assert (same["outcome"], same["detail"]) == ("unchanged", "same mtime and size")
    write(path, catalog_bytes(records), mtime=2_000_000)  # the same content, written again
    rewritten = poll()
    assert (rewritten["outcome"], rewritten["detail"]) == ("unchanged", "same sha256")
    write(path, catalog_bytes(records, indent=2), mtime=3_000_000)  # other bytes, the same catalog
    assert poll()["detail"] == "same catalog version"

    write(path, catalog_bytes(changed_records(records, "En fin de vie")), mtime=4_000_000)
    second = poll()
    assert second["outcome"] == "changed" and second["version"]["changed"] == [str(records[0]["id"])]
    v2 = second["version"]["version"]

    write(path, b'{"applicationsia mini": [{"id": 1, "nom": "A"}', mtime=5_000_000)  # broken: never a version
    broken = poll()
    assert broken["outcome"] == "failed" and "not valid JSON" in broken["detail"]
    state = rs.http.get(f"/catalogs/{name}/source").json()
    assert state["last_error"]["code"] == "not_json" and "not valid JSON" in state["last_error"]["message"]
    assert state["consecutive_failures"] == 1 and state["last_version"] == v2
    assert rs.http.get(f"/catalogs/{name}").json()["version"] == v2  # the last good version stays the catalog's

    # The scheduler, not a poll now: every 5 s (the same source set again keeps its state, and polls at once: still
    # broken), the fixed file is picked up within the interval, and the error cleared.
    again = rs.http.put(f"/catalogs/{name}/source", json={"path": str(path), "interval_s": 5}).json()
    assert (
        again["outcome"] == "failed" and again["source"]["consecutive_failures"] == 2 and again["source"]["checks"] == 7
    )
    write(path, catalog_bytes(changed_records(records, "En projet")), mtime=6_000_000)
    v3 = wait_until(
        lambda: (v := rs.http.get(f"/catalogs/{name}").json()["version"]) != v2 and v, 20, "the scheduled poll"
    )
    state = rs.http.get(f"/catalogs/{name}/source").json()
    assert "last_error" not in state and state["consecutive_failures"] == 0 and state["last_version"] == v3
    assert state["changes"] == 3 and state["last_changed_at"] and state["mtime"].startswith("1970-03-11")

    assert [e["version"] for e in updates(rs, name, 3)] == [v1, v2, v3]  # one event per real change, none for the rest
    versions = rs.http.get(f"/catalogs/{name}/versions").json()["versions"]
    assert [v["version"] for v in versions] == [v3, v2, v1]

    removed = rs.http.delete(f"/catalogs/{name}/source")
    assert removed.status_code == 200 and removed.json()["path"] == str(path)
    gone = rs.http.get(f"/catalogs/{name}/source")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "source_not_found"
    assert len(rs.http.get(f"/catalogs/{name}/versions").json()["versions"]) == 3  # the versions stay


def test_polling_resumes_after_a_restart_of_dataset_builder(running_stack, records, tmp_path):
    rs, name = running_stack, "followed-restart"
    path = tmp_path / "apps.json"
    write(path, catalog_bytes(records), mtime=1_000_000)
    first = rs.http.put(f"/catalogs/{name}/source", json={"path": str(path), "interval_s": 5}).json()
    assert first["outcome"] == "changed", first

    rs.stack.kill("dataset-builder")
    write(
        path, catalog_bytes(changed_records(records, "Décommissionnée")), mtime=2_000_000
    )  # changed while it was down
    rs.stack.restart("dataset-builder")
    rs.stack.wait_ready(60)
    state = rs.http.get(f"/catalogs/{name}/source").json()
    assert state["path"] == str(path) and state["interval_s"] == 5  # the source was kept
    v2 = wait_until(
        lambda: (v := rs.http.get(f"/catalogs/{name}").json()["version"]) != first["version"]["version"] and v,
        20,
        "a poll after the restart",
    )
    assert rs.http.get(f"/catalogs/{name}/source").json()["last_version"] == v2
    assert rs.http.delete(f"/catalogs/{name}/source").status_code == 200


# --- an HTTP source ----------------------------------------------------------------------------------------------
def test_an_http_source_with_etags_errors_and_broken_json(running_stack, records):
    rs, name = running_stack, "followed-http"
    with CatalogServer(catalog_bytes(records)) as server:
        first = rs.http.put(f"/catalogs/{name}/source", json={"url": server.url, "interval_s": 3600}).json()
        assert first["outcome"] == "changed", first
        assert first["source"]["kind"] == "http" and first["source"]["etag"] == server.etag
        assert first["source"]["last_modified"] == "Sat, 01 Feb 2031 10:00:00 GMT"
        v1 = first["version"]["version"]

        def poll() -> dict:
            return rs.http.post(f"/catalogs/{name}/source/poll").json()

        same = poll()
        assert (same["outcome"], same["detail"]) == ("unchanged", "304 Not Modified")
        assert server.requests[-1] == {"path": "/apps.json", "if_none_match": server.etag, "status": 304}

        server.mode = "500"
        failed = poll()
        assert failed["outcome"] == "failed" and failed["source"]["last_error"]["code"] == "source_http_error"
        assert "HTTP 500" in failed["source"]["last_error"]["message"] and failed["version"]["version"] == v1

        server.mode = "broken"
        broken = poll()
        assert broken["outcome"] == "failed" and broken["source"]["last_error"]["code"] == "not_json"
        assert broken["source"]["consecutive_failures"] == 2 and broken["source"]["etag"] == server.etag
        assert rs.http.get(f"/catalogs/{name}").json()["version"] == v1

        server.mode = "ok"  # back, unchanged: a 304 again, and the error is cleared
        healed = poll()
        assert (healed["outcome"], healed["detail"]) == ("unchanged", "304 Not Modified")
        assert "last_error" not in healed["source"] and healed["source"]["consecutive_failures"] == 0

        more = copy.deepcopy(records) + [{"id": 777001, "nom": "SUIVIE-HTTP", "statut si": "En projet"}]
        server.body = catalog_bytes(more)
        second = poll()
        assert second["outcome"] == "changed" and second["version"]["added"] == ["777001"]
        assert second["source"]["etag"] == server.etag and server.requests[-1]["status"] == 200
        v2 = second["version"]["version"]
        assert poll()["detail"] == "304 Not Modified"

    # The server is gone: unreachable, reported, the last good version kept.
    gone = rs.http.post(f"/catalogs/{name}/source/poll").json()
    assert gone["outcome"] == "failed" and gone["source"]["last_error"]["code"] == "source_unreachable"
    assert gone["version"]["version"] == v2

    assert [e["version"] for e in updates(rs, name, 2)] == [v1, v2]
    assert [v["version"] for v in rs.http.get(f"/catalogs/{name}/versions").json()["versions"]] == [v2, v1]
    assert rs.http.delete(f"/catalogs/{name}/source").status_code == 200


def test_an_unreachable_first_source_stores_no_catalog(running_stack):
    rs = running_stack
    url = f"http://127.0.0.1:{free_port()}/apps.json"  # nothing listens there
    reply = rs.http.put("/catalogs/followed-nowhere/source", json={"url": url})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["outcome"] == "failed" and body["source"]["last_error"]["code"] == "source_unreachable"
    assert body["source"]["interval_s"] == 60 and "version" not in body  # the default interval; no version
    assert rs.http.get("/catalogs/followed-nowhere").status_code == 404
    assert rs.http.delete("/catalogs/followed-nowhere/source").status_code == 200


# --- bad requests: a 4xx that names the problem --------------------------------------------------------------------
def test_bad_source_requests_are_refused_with_the_problem_named(running_stack, tmp_path):
    rs = running_stack
    existing = tmp_path / "c.json"
    existing.write_text("[]")
    cases = [
        ({}, 422, "invalid_source", "give either path"),
        ({"path": str(existing), "url": "http://127.0.0.1/c.json"}, 422, "invalid_source", "not both"),
        ({"path": "catalogs/c.json"}, 422, "relative_path", "is relative"),
        ({"path": str(tmp_path / "missing.json")}, 422, "file_missing", "does not exist"),
        ({"path": str(tmp_path)}, 422, "not_a_file", "not a regular file"),
        ({"url": "ftp://example.org/c.json"}, 422, "invalid_url", "only http:// and https://"),
        ({"url": "file:///etc/passwd"}, 422, "invalid_url", "'file'"),
        ({"url": "http://127.0.0.1/c.json", "interval_s": 1}, 422, "interval_too_small", "minimum of 5 s"),
        ({"path": str(existing), "every": 10}, 422, "invalid_request", "every"),
    ]
    for body, status, code, phrase in cases:
        reply = rs.http.put("/catalogs/followed-bad/source", json=body)
        assert reply.status_code == status, (body, reply.text)
        error = reply.json()["error"]
        assert error["code"] == code and phrase in error["message"], (body, error)
    name = rs.http.put("/catalogs/bad!name/source", json={"path": str(existing)})
    assert name.status_code == 422 and name.json()["error"]["code"] == "invalid_name"
    for method, path in (("GET", "source"), ("DELETE", "source"), ("POST", "source/poll")):
        reply = rs.http.request(method, f"/catalogs/followed-bad/{path}")
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "source_not_found", (method, reply.text)
        assert "dyag catalog follow followed-bad" in reply.json()["error"]["message"]


def test_source_writes_need_an_api_key(running_stack, tmp_path):
    anonymous = running_stack.anonymous
    for method, path in (("PUT", "source"), ("DELETE", "source"), ("POST", "source/poll")):
        reply = anonymous.request(
            method, f"/catalogs/followed-nokey/{path}", json={"path": str(tmp_path)} if method == "PUT" else None
        )
        assert reply.status_code == 401 and reply.json()["error"]["code"] == "missing_api_key", (method, reply.text)
    assert anonymous.get("/catalogs/followed-nokey/source").status_code == 401  # reads need a key too
    assert running_stack.http.get("/catalogs/followed-nokey/source").status_code == 404  # nothing was stored


# --- the CLI, as a user types it -----------------------------------------------------------------------------------
def test_the_cli_follows_shows_and_unfollows(running_stack, records, tmp_path):
    rs = running_stack
    (tmp_path / "apps.json").write_bytes(catalog_bytes(records))
    env = {
        **os.environ,
        "DYAG_URL": rs.stack.config.gateway_url,
        "DYAG_API_KEY": rs.http.headers["X-API-Key"],
        "COLUMNS": "200",
    }

    def dyag(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "dyag_cli.main", "catalog", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    follow = dyag("follow", "followed-cli", "apps.json", "--every", "30")  # a relative path: made absolute by the CLI
    assert follow.returncode == 0, follow.stdout + follow.stderr
    assert f"followed-cli follows {tmp_path / 'apps.json'} (every 30 s)" in follow.stdout
    assert "new version" in follow.stdout and "+8 added" in follow.stdout

    (tmp_path / "apps.json").write_bytes(b"{ broken")
    shown = dyag("source", "followed-cli", "--poll")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "the check failed" in shown.stderr and "[not_json]" in shown.stderr
    assert "failing" in shown.stdout and "the last good version stays" in shown.stderr

    refused = dyag("follow", "followed-cli", "ftp://example.org/apps.json")
    assert refused.returncode == 1 and "only http:// and https://" in refused.stderr
    assert "[invalid_url, HTTP 422]" in refused.stderr

    unfollow = dyag("unfollow", "followed-cli")
    assert unfollow.returncode == 0 and "no longer follows" in unfollow.stdout
    assert dyag("source", "followed-cli").returncode == 1
