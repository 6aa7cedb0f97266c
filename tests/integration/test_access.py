"""Access on the real stack: content needs a key, scopes allow and refuse, a revoked key is refused at once, a key
over its rate limit gets a 429, state changes land in the audit log (who, what, when, never a body or a key), keys
never reach stack.json or the gateway's log, and `dyag keys` drives it all."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from datetime import datetime

import httpx
import pytest

from tests.integration.conftest import RunningStack

CONTENT = ("/catalogs", "/datasets", "/models", "/hosted/models", "/exports", "/evaluations", "/rag", "/jobs")
CONTENT += ("/pipelines", "/catalogs/x/champion", "/catalogs/x/lineage")


@pytest.fixture(scope="module")
def rs(running_stack) -> RunningStack:
    return running_stack


def client(rs: RunningStack, key: str, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=rs.stack.config.gateway_url, headers={"X-API-Key": key, **headers}, timeout=60)


def create_key(rs: RunningStack, name: str, scopes: list[str], **extra) -> dict:
    reply = rs.http.post("/keys", json={"name": name, "scopes": scopes, **extra})
    assert reply.status_code == 201, reply.text
    return reply.json()


@pytest.fixture(scope="module")
def keys(rs) -> dict[str, str]:
    return {scope: create_key(rs, f"it-{scope}", [scope])["key"] for scope in ("read", "write", "admin")}


def test_content_needs_a_key_and_the_probes_do_not(rs):
    for path in CONTENT:
        reply = rs.anonymous.get(path)
        assert reply.status_code == 401, (path, reply.text)
        error = reply.json()["error"]
        assert error["code"] == "missing_api_key" and "X-API-Key" in error["message"], (path, error)
    assert rs.anonymous.get("/healthz").status_code == 200
    assert rs.anonymous.get("/readyz").status_code == 200
    assert rs.anonymous.get("/metrics/").status_code == 200
    assert rs.anonymous.get("/docs").status_code == 200  # DYAG_DOCS=off turns them off (tests/unit)
    assert "/keys" in rs.anonymous.get("/openapi.json").json()["paths"]
    wrong = rs.anonymous.get("/catalogs", headers={"X-API-Key": "dyag_not-a-key-this-gateway-knows-at-all"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


def test_each_scope_is_allowed_and_refused_where_it_should_be(rs, keys, sample_catalog_bytes):
    with client(rs, keys["read"]) as read, client(rs, keys["write"]) as write, client(rs, keys["admin"]) as admin:
        # read: content and answers, nothing that uploads, starts work or manages
        assert read.get("/catalogs").status_code == 200
        assert read.post("/rag/no_such_collection/query", json={"question": "?"}).status_code == 404
        refused = read.post("/catalogs", files={"file": ("c.json", sample_catalog_bytes)}, data={"name": "access_r"})
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["code"] == "insufficient_scope" and "'write'" in error["message"] and "it-read" in error["message"]
        assert read.get("/keys").status_code == 403
        # write: uploads and jobs, and reads; not promotion, rollback, retraining policy, deletion or keys
        uploaded = write.post("/catalogs", files={"file": ("c.json", sample_catalog_bytes)}, data={"name": "access_w"})
        assert uploaded.status_code in (200, 201), uploaded.text
        assert write.get("/catalogs/access_w").status_code == 200
        job = write.post("/rag/access_w/index", json={"catalog": "access_w"})
        assert job.status_code == 202, job.text
        for method, path, body in (
            ("POST", "/catalogs/access_w/champion", {"target": {"kind": "grounded", "id": "access_w"}}),
            ("POST", "/catalogs/access_w/champion/rollback", {}),
            ("PUT", "/catalogs/access_w/retraining", {}),
            ("DELETE", "/rag/access_w", None),
            ("DELETE", "/catalogs/access_w/source", None),
            ("GET", "/keys", None),
            ("GET", "/audit", None),
        ):
            reply = write.request(method, path, json=body)
            assert reply.status_code == 403, (method, path, reply.text)
            assert "'admin'" in reply.json()["error"]["message"], (method, path)
        rs.wait_job(job.json()["id"])
        # admin: everything
        assert admin.get("/keys").status_code == 200
        assert admin.delete("/rag/access_w").status_code == 200


def test_a_revoked_key_is_refused_at_once(rs):
    created = create_key(rs, "it-to-revoke", ["read"])
    with client(rs, created["key"]) as c:
        assert c.get("/catalogs").status_code == 200
        revoked = rs.http.delete(f"/keys/{created['id']}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text
        refused = c.get("/catalogs")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "revoked_api_key", refused.text
    listed = {k["id"]: k for k in rs.http.get("/keys").json()["keys"]}
    assert listed[created["id"]]["revoked_at"] == revoked.json()["revoked_at"]


def test_the_key_list_shows_no_secret(rs, keys):
    listing = rs.http.get("/keys")
    assert listing.status_code == 200
    bootstrap = rs.http.headers["X-API-Key"]
    for key in (*keys.values(), bootstrap):
        assert key not in listing.text
    by_name = {k["name"]: k for k in listing.json()["keys"]}
    assert by_name["it-write"]["scopes"] == ["write"] and len(by_name["it-write"]["id"]) == 12
    assert set(by_name["it-write"]) >= {
        "id",
        "name",
        "scopes",
        "created_at",
        "created_by",
        "revoked_at",
        "last_used_at",
    }
    assert "key" not in by_name["it-write"]
    assert by_name["it-write"]["last_used_at"] and by_name["it-write"]["created_by"].startswith("key:")


def test_a_key_over_its_rate_limit_gets_a_429_with_retry_after(rs):
    created = create_key(rs, "it-slow", ["read"], rate_limit_per_min=3)
    with client(rs, created["key"]) as c:
        assert [c.get("/catalogs").status_code for _ in range(3)] == [200, 200, 200]
        limited = c.get("/catalogs")
    assert limited.status_code == 429, limited.text
    error = limited.json()["error"]
    assert error["code"] == "rate_limited" and "3 requests a minute" in error["message"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 20
    assert rs.http.get("/catalogs").status_code == 200  # other keys are not held back


def test_the_audit_log_records_a_post_with_who_what_when_and_no_body(rs, keys, sample_catalog_bytes):
    before = time.time()
    with client(rs, keys["write"], **{"X-Dyag-User": "bob"}) as write:
        reply = write.post("/catalogs", files={"file": ("c.json", sample_catalog_bytes)}, data={"name": "access_audit"})
    assert reply.status_code in (200, 201), reply.text
    rs.anonymous.post("/catalogs", files={"file": ("c.json", b"{}")}, data={"name": "access_anon"})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = rs.http.get("/audit", params={"limit": 50}).json()["records"]
        mine = [r for r in records if r["path"] == "/catalogs" and r.get("caller") == "bob"]
        anonymous = [r for r in records if r["path"] == "/catalogs" and r["status"] == 401]
        if mine and anonymous:
            break
        time.sleep(0.2)
    record = mine[0]
    write_id = next(k["id"] for k in rs.http.get("/keys").json()["keys"] if k["name"] == "it-write")
    assert record["method"] == "POST" and record["status"] == reply.status_code
    assert record["key_id"] == write_id and record["key_name"] == "it-write"
    assert datetime.fromisoformat(record["at"].replace("Z", "+00:00")).timestamp() >= before - 5
    assert anonymous[0]["key_id"] is None
    text = json.dumps(records)
    assert keys["write"] not in text and rs.http.headers["X-API-Key"] not in text
    assert "6Tzen" not in text and "access_audit" not in text  # no body: the catalog and its form fields
    assert [r["seq"] for r in records] == sorted((r["seq"] for r in records), reverse=True)
    assert rs.http.get("/audit").status_code == 200
    with client(rs, keys["read"]) as read:
        assert read.get("/audit").status_code == 403


def test_stack_json_holds_no_key_and_is_private(rs, keys):
    home = rs.stack.config.home
    state = home / "stack.json"
    key = (home / "api-key").read_text().strip()
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "api-key").stat().st_mode) == 0o600
    assert key not in state.read_text()
    gateway_env = json.loads(state.read_text())["processes"]["gateway"]["env"]
    assert "DYAG_API_KEYS" not in gateway_env and gateway_env["DYAG_API_KEYS_FILE"] == str(home / "api-key")


def test_keys_never_reach_the_gateway_log(rs, keys):
    rs.anonymous.get("/catalogs", headers={"X-API-Key": "dyag_a-wrong-key-that-must-not-be-logged-1"})
    log = (rs.stack.config.home / "logs" / "gateway.log").read_text(errors="replace")
    for key in (*keys.values(), rs.http.headers["X-API-Key"], "dyag_a-wrong-key-that-must-not-be-logged-1"):
        assert key not in log


def test_the_cli_creates_lists_and_revokes_keys(rs, tmp_path):
    env = {
        **os.environ,
        "DYAG_URL": rs.stack.config.gateway_url,
        "DYAG_API_KEY": rs.http.headers["X-API-Key"],
        "DYAG_HOME": str(tmp_path),
        "COLUMNS": "200",
    }

    def dyag(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "dyag_cli.main", *args], env=env, capture_output=True, text=True, timeout=120
        )

    created = dyag("keys", "create", "it-cli", "--scope", "read,write")
    assert created.returncode == 0, created.stdout + created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("dyag_") and len(key) == 37, created.stdout
    with client(rs, key) as c:
        assert c.get("/catalogs").status_code == 200
    listed = dyag("keys", "list")
    assert listed.returncode == 0 and "it-cli" in listed.stdout and "read,write" in listed.stdout, listed.stdout
    assert key not in listed.stdout
    key_id = next(k["id"] for k in rs.http.get("/keys").json()["keys"] if k["name"] == "it-cli")
    revoked = dyag("keys", "revoke", key_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout, revoked.stdout + revoked.stderr
    with client(rs, key) as c:
        assert c.get("/catalogs").status_code == 401
    bad = dyag("keys", "create", "x", "--scope", "root")
    assert bad.returncode != 0 and "read, write, admin" in bad.stdout + bad.stderr
    audit = dyag("audit", "--limit", "5")
    assert audit.returncode == 0 and "DELETE" in audit.stdout and "/keys/" in audit.stdout, audit.stdout
    env["DYAG_API_KEY"] = key  # revoked: the CLI says so
    refused = dyag("keys", "list")
    assert refused.returncode != 0 and "revoked" in refused.stdout + refused.stderr
