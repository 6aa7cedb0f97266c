"""The gateway's access control without NATS or services: every route's scope, keys (create, list, revoke, hashed),
401 / 403 / 429 with the error shape, the audit record of a state change, the docs switch, the settings' keys."""

from __future__ import annotations

import asyncio
import json
import re
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError

from dyag_gateway.app import create_app
from dyag_gateway.keys import KeyStore, Principal, RateLimiter, hash_key, new_key
from dyag_gateway.settings import GatewaySettings

ADMIN = "bootstrap-admin-key-for-tests"
OPEN = {"/healthz", "/readyz"}
# The routes that need more than read: everything else needs read (GET, and the questions and pure computations).
NEEDS = {
    ("POST", "/keys"): "admin",
    ("GET", "/keys"): "admin",
    ("DELETE", "/keys/{key_id}"): "admin",
    ("GET", "/audit"): "admin",
    ("POST", "/catalogs"): "write",
    ("PUT", "/catalogs/{name}/source"): "write",
    ("DELETE", "/catalogs/{name}/source"): "admin",
    ("POST", "/catalogs/{name}/source/poll"): "write",
    ("POST", "/datasets"): "write",
    ("POST", "/validate"): "write",
    ("POST", "/datasets/{dataset_id}/validate"): "write",
    ("POST", "/clean"): "write",
    ("POST", "/rag/{collection}/index"): "write",
    ("DELETE", "/rag/{collection}"): "admin",
    ("POST", "/hosted/jobs"): "write",
    ("POST", "/train"): "write",
    ("POST", "/jobs/{job_id}/cancel"): "write",
    ("POST", "/pipelines"): "write",
    ("POST", "/pipelines/{pipeline_id}/cancel"): "write",
    ("POST", "/evaluations"): "write",
    ("POST", "/exports"): "write",
    ("PUT", "/catalogs/{name}/retraining"): "admin",
    ("DELETE", "/catalogs/{name}/retraining"): "admin",
    ("POST", "/catalogs/{name}/retrain"): "write",
    ("POST", "/catalogs/{name}/champion"): "admin",
    ("POST", "/catalogs/{name}/champion/rollback"): "admin",
}
READ_POSTS = {  # POST routes that change nothing: questions and computations over what is stored
    "/datasets/plan",
    "/evaluations/compare",
    "/rag/{collection}/query",
    "/models/{model_id}/chat",
    "/catalogs/{name}/ask",
}
RANK = {"read": 1, "write": 2, "admin": 3}


class FakeKV:
    """nats-py's KeyValue, the parts the key store uses, in memory (with revisions, as JetStream's)."""

    def __init__(self):
        self.data: dict[str, tuple[bytes, int]] = {}
        self.revision = 0

    async def get(self, key):
        if key not in self.data:
            raise KeyNotFoundError()
        value, revision = self.data[key]
        return SimpleNamespace(key=key, value=value, revision=revision)

    async def create(self, key, value):
        assert key not in self.data
        self.revision += 1
        self.data[key] = (value, self.revision)
        return self.revision

    async def update(self, key, value, last=None):
        if self.data[key][1] != last:
            raise KeyWrongLastSequenceError()
        self.revision += 1
        self.data[key] = (value, self.revision)
        return self.revision

    async def keys(self):
        if not self.data:
            raise NoKeysError()
        return list(self.data)


class FakeAudit:
    def __init__(self):
        self.records: list[dict] = []

    async def append(self, record):
        self.records.append(json.loads(json.dumps(record)))

    async def newest(self, limit=100, before=0):
        return [{"seq": i + 1, **r} for i, r in enumerate(self.records)][::-1][:limit]


def make_app(**settings):
    app = create_app(GatewaySettings(api_keys=ADMIN, **settings))
    app.state.keys.attach(FakeKV())
    app.state.audit = FakeAudit()
    return app


@pytest.fixture
def app():
    return make_app()


@pytest.fixture
def client(app):
    return TestClient(app)


def create_key(client, name, scopes, **extra):
    reply = client.post("/keys", json={"name": name, "scopes": scopes, **extra}, headers={"X-API-Key": ADMIN})
    assert reply.status_code == 201, reply.text
    return reply.json()


# --- every route's scope -------------------------------------------------------------------------------------------
def test_every_route_but_health_needs_a_key_with_its_scope():
    """Each route of the OpenAPI schema, asked with no key, then a read, a write and an admin key: refused (401, 403)
    exactly where its scope says; past the key, the route fails on what this test does not run (no NATS, no service),
    which is not a 401 or a 403."""
    app = make_app()
    client = TestClient(app, raise_server_exceptions=False)
    keys = {scope: create_key(client, scope, [scope])["key"] for scope in RANK}
    seen = set()
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            method = method.upper()
            url = re.sub(r"\{[^}]+\}", "x", path)
            if path in OPEN:
                assert client.request(method, url).status_code not in (401, 403), path
                continue
            needed = NEEDS.get((method, path))
            if needed is None:
                assert method == "GET" or path in READ_POSTS, f"{method} {path}: add it to NEEDS"
                needed = "read"
            if method == "DELETE":
                assert needed == "admin", path
            anonymous = client.request(method, url)
            assert anonymous.status_code == 401, (method, path, anonymous.text)
            for scope, key in keys.items():
                reply = client.request(method, url, json={}, headers={"X-API-Key": key, "Accept": "application/json"})
                if RANK[scope] < RANK[needed]:
                    assert reply.status_code == 403, (method, path, scope, reply.text)
                    assert f"'{needed}'" in reply.json()["error"]["message"]
                else:
                    assert reply.status_code not in (401, 403), (method, path, scope, reply.text)
            seen.add((method, path))
    assert set(NEEDS) <= seen, set(NEEDS) - seen
    assert len(seen) > 50


def test_health_is_open_and_content_is_not(client):
    assert client.get("/healthz").status_code == 200
    for path in ("/catalogs", "/datasets", "/models", "/exports", "/evaluations", "/jobs/x", "/pipelines"):
        reply = client.get(path)
        assert reply.status_code == 401, path
        error = reply.json()["error"]
        assert error["code"] == "missing_api_key" and "X-API-Key" in error["message"], error
    wrong = client.get("/catalogs", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("docs", [True, False])
def test_docs_are_open_or_off(docs):
    client = TestClient(make_app(docs=docs))
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert client.get(path).status_code == (200 if docs else 404), path
    assert client.get("/healthz").status_code == 200


# --- keys -----------------------------------------------------------------------------------------------------------
def test_a_created_key_is_shown_once_and_stored_hashed(app, client):
    created = create_key(client, "ci", ["read", "write"])
    key = created["key"]
    assert re.fullmatch(r"dyag_[A-Za-z0-9_-]{32}", key), key
    assert created["id"] == hash_key(key)[:12] and created["scopes"] == ["read", "write"]
    assert created["created_by"].startswith("key:") and created["revoked_at"] is None
    stored = app.state.keys.kv.data
    assert list(stored) == [hash_key(key)]
    assert key not in json.dumps({k: v[0].decode() for k, v in stored.items()})
    listing = client.get("/keys", headers={"X-API-Key": ADMIN})
    assert listing.status_code == 200
    text = listing.text
    assert key not in text and hash_key(key) not in text and ADMIN not in text and hash_key(ADMIN) not in text
    by_name = {k["name"]: k for k in listing.json()["keys"]}
    assert by_name["ci"]["id"] == created["id"] and by_name["ci"]["scopes"] == ["read", "write"]
    assert by_name["bootstrap (DYAG_API_KEYS)"]["scopes"] == ["admin"]
    assert by_name["bootstrap (DYAG_API_KEYS)"]["source"] == "settings"


def test_each_scope_is_allowed_and_refused_where_it_should_be(client):
    read = create_key(client, "reader", ["read"])["key"]
    write = create_key(client, "writer", ["write"])["key"]
    admin = create_key(client, "admin", ["admin"])["key"]
    # read: content yes (503: past the key, the pipelines need NATS), jobs no, key management no
    assert client.get("/pipelines", headers={"X-API-Key": read}).status_code == 503
    refused = client.post("/pipelines", json={}, headers={"X-API-Key": read})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope" and "'write'" in refused.json()["error"]["message"]
    assert client.get("/keys", headers={"X-API-Key": read}).status_code == 403
    # write: reads too, starts work, but no admin route
    assert client.get("/pipelines", headers={"X-API-Key": write}).status_code == 503
    assert client.post("/pipelines/p/cancel", headers={"X-API-Key": write}).status_code == 503
    for method, path in (
        ("POST", "/catalogs/c/champion/rollback"),
        ("DELETE", "/rag/c"),
        ("PUT", "/catalogs/c/retraining"),
        ("POST", "/keys"),
    ):
        reply = client.request(method, path, json={}, headers={"X-API-Key": write})
        assert reply.status_code == 403 and "'admin'" in reply.json()["error"]["message"], (method, path)
    # admin: everything (Authorization: Bearer works as X-API-Key does)
    assert client.get("/keys", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
    assert client.post("/catalogs/c/champion/rollback", json={}, headers={"X-API-Key": admin}).status_code == 503


def test_a_revoked_key_is_refused_at_once_and_revoking_again_changes_nothing(client):
    created = create_key(client, "temp", ["read"])
    key = created["key"]
    assert client.get("/pipelines", headers={"X-API-Key": key}).status_code == 503  # cached as valid
    revoked = client.delete(f"/keys/{created['id']}", headers={"X-API-Key": ADMIN})
    assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text
    refused = client.get("/pipelines", headers={"X-API-Key": key})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "revoked_api_key"
    again = client.delete(f"/keys/{created['id']}", headers={"X-API-Key": ADMIN})
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert client.delete("/keys/0123456789ab", headers={"X-API-Key": ADMIN}).status_code == 404
    assert client.delete("/keys/zz", headers={"X-API-Key": ADMIN}).json()["error"]["code"] == "invalid_key_id"
    bootstrap = client.delete(f"/keys/{hash_key(ADMIN)[:12]}", headers={"X-API-Key": ADMIN})
    assert bootstrap.status_code == 409 and bootstrap.json()["error"]["code"] == "bootstrap_key"


def test_another_replica_sees_a_revocation_within_its_cache_time():
    now = [0.0]
    kv = FakeKV()
    mine, other = KeyStore([ADMIN], clock=lambda: now[0]), KeyStore([ADMIN], cache_s=3.0, clock=lambda: now[0])
    mine.attach(kv)
    other.attach(kv)

    async def run():
        key, record = await mine.create("x", ["read"], by="test")
        assert (await other.authenticate(key)).name == "x"
        await mine.revoke(record["id"], by="test")
        assert (await other.authenticate(key)).name == "x"  # still cached: at most cache_s
        now[0] += 3.1
        with pytest.raises(Exception, match="revoked"):
            await other.authenticate(key)

    asyncio.run(run())


def test_bad_key_requests_are_refused_by_name(client):
    for body in ({"name": "x", "scopes": []}, {"name": "x", "scopes": ["root"]}, {"name": "", "scopes": ["read"]}):
        reply = client.post("/keys", json=body, headers={"X-API-Key": ADMIN})
        assert reply.status_code == 422 and reply.json()["error"]["code"] == "invalid_request", body


def test_new_keys_are_random_and_well_formed():
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100 and all(re.fullmatch(r"dyag_[A-Za-z0-9_-]{32}", k) for k in keys)


def test_scopes_include_the_lesser_ones():
    assert Principal("i", "n", ("write",)).allows("read")
    assert not Principal("i", "n", ("read",)).allows("write")
    assert Principal("i", "n", ("admin",)).allows("write")
    assert not Principal("i", "n", ("write",)).allows("admin")


# --- rate limit ------------------------------------------------------------------------------------------------------
def test_a_key_over_its_rate_limit_gets_a_429_with_retry_after(client):
    key = create_key(client, "slow", ["read"], rate_limit_per_min=2)["key"]
    for _ in range(2):
        assert client.get("/pipelines", headers={"X-API-Key": key}).status_code == 503
    limited = client.get("/pipelines", headers={"X-API-Key": key})
    assert limited.status_code == 429
    assert (
        limited.json()["error"]["code"] == "rate_limited"
        and "2 requests a minute" in limited.json()["error"]["message"]
    )
    assert 1 <= int(limited.headers["Retry-After"]) <= 30
    assert client.get("/keys", headers={"X-API-Key": ADMIN}).status_code == 200  # another key, its own bucket


def test_the_token_bucket_refills_at_its_rate():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert all(limiter.take("k") == 0 for _ in range(60))
    assert limiter.take("k") == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.take("k") == 0
    assert limiter.take("other") == 0
    assert RateLimiter(0).take("k") == 0  # 0: no limit


# --- audit -----------------------------------------------------------------------------------------------------------
def test_a_state_change_is_audited_with_who_what_when_and_no_body(app, client):
    created = client.post(
        "/keys",
        json={"name": "secret-name-in-body", "scopes": ["read"]},
        headers={"X-API-Key": ADMIN, "X-Dyag-User": "alice"},
    )
    assert created.status_code == 201
    client.get("/keys", headers={"X-API-Key": ADMIN})  # a read: not audited
    client.post("/pipelines", json={"catalog": "c"})  # refused: audited too
    records = app.state.audit.records
    assert [(r["method"], r["path"], r["status"]) for r in records] == [
        ("POST", "/keys", 201),
        ("POST", "/pipelines", 401),
    ]
    first = records[0]
    assert first["key_id"] == hash_key(ADMIN)[:12] and first["key_name"] == "bootstrap (DYAG_API_KEYS)"
    assert first["caller"] == "alice" and first["at"].endswith("Z")
    assert records[1]["key_id"] is None
    text = json.dumps(records)
    assert ADMIN not in text and created.json()["key"] not in text and "secret-name-in-body" not in text
    listed = client.get("/audit", headers={"X-API-Key": ADMIN}).json()["records"]
    assert listed[0]["path"] == "/pipelines" and listed[1]["path"] == "/keys"


# --- settings --------------------------------------------------------------------------------------------------------
def test_bootstrap_keys_come_from_the_setting_and_the_file(tmp_path):
    path = tmp_path / "api-key"
    path.write_text("from-file\n# a comment\n\n")
    settings = GatewaySettings(api_keys="a, b", api_keys_file=str(path))
    assert settings.keys() == {"a", "b", "from-file"}
    with pytest.raises(ValueError, match="DYAG_API_KEYS_FILE"):
        GatewaySettings(api_keys_file=str(tmp_path / "missing")).keys()
