"""The web console's files and the routes it adds: served from the package at /ui with a strict Content-Security-Policy,
nothing from a CDN, data never written as HTML, the vendored chart library as its README says; the key check; a
catalog's records a page at a time and the diff of two versions (dataset-builder faked)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dyag.v1 import catalog_pb2
from dyag_gateway.app import create_app
from dyag_gateway.routers.console import CONSOLE_DIR
from dyag_gateway.settings import GatewaySettings

REPO = Path(__file__).resolve().parents[2]
KEY = "console-unit-test-key"


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = create_app(GatewaySettings(api_keys=KEY, services="dataset-builder"))
    return TestClient(app)  # no lifespan: no NATS, no services; what these tests call needs neither


def console_files(*suffixes: str) -> list[Path]:
    return sorted(p for p in CONSOLE_DIR.rglob("*") if p.is_file() and p.suffix in suffixes)


def own_scripts() -> list[Path]:
    return [p for p in console_files(".js") if "vendor" not in p.parts]


def test_root_and_ui_redirect_to_the_console(client):
    for path in ("/", "/ui"):
        reply = client.get(path, follow_redirects=False)
        assert reply.status_code == 307 and reply.headers["location"] == "/ui/"


def test_the_console_is_served_with_a_strict_content_security_policy(client):
    page = client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="js/app.js">' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    script = client.get("/ui/js/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    again = client.get("/ui/js/app.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/ui/vendor/chart.umd.min.js").status_code == 200


@pytest.mark.parametrize("path", ["/ui/nothing.js", "/ui/%2e%2e/app.py", "/ui/..%2Fapp.py", "/ui/js/../../app.py"])
def test_only_the_console_s_own_files_are_served(client, path):
    reply = client.get(path)
    assert reply.status_code == 404, (path, reply.text[:200])
    assert reply.json()["error"]["code"] in ("not_found", "route_not_found")  # the last one, normalised, is /app.py


def test_no_file_is_loaded_from_elsewhere():
    """No CDN: every script, style sheet and icon the HTML names is one of the console's own files, and no script
    imports or fetches an absolute URL."""
    for html in console_files(".html"):
        text = html.read_text(encoding="utf-8")
        sources = re.findall(r"<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)", text, re.I)
        assert sources, html
        for source in sources:
            assert not re.match(r"^(?:[a-z]+:)?//", source, re.I), f"{html.name} loads {source}"
            assert (CONSOLE_DIR / source).is_file(), f"{html.name} names {source}, which the console does not have"
    for script in own_scripts():
        text = script.read_text(encoding="utf-8")
        assert not re.search(r"""(?:from|import\(|fetch\(|src\s*=)\s*['"`](?:https?:)?//""", text), script.name
        absolute = re.findall(r"""['"`](https?://[^'"`]*)""", text)
        assert absolute in ([], ["http://www.w3.org/2000/svg"]), f"{script.name} names {absolute}"  # SVG's namespace


def test_data_is_never_written_as_html():
    """Catalog content reaches the page as text only: no script of the console writes HTML."""
    for script in own_scripts():
        text = script.read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{script.relative_to(CONSOLE_DIR)} uses {sink}"


def test_every_page_module_the_router_names_exists():
    app = (CONSOLE_DIR / "js" / "app.js").read_text(encoding="utf-8")
    modules = re.findall(r"module: '(\./pages/[a-z]+\.js)'", app)
    assert len(modules) >= 10
    for module in modules:
        assert (CONSOLE_DIR / "js" / module).is_file(), module


def test_the_vendored_chart_library_is_the_one_its_readme_names():
    readme = (CONSOLE_DIR / "vendor" / "README.md").read_text(encoding="utf-8")
    digest = hashlib.sha256((CONSOLE_DIR / "vendor" / "chart.umd.min.js").read_bytes()).hexdigest()
    assert f"sha256 `{digest}`" in readme
    assert "| 4.6.2 |" in readme
    assert "MIT License" in (CONSOLE_DIR / "vendor" / "chart.js.LICENSE.md").read_text(encoding="utf-8")


def test_the_wheel_carries_every_console_file():
    """The gateway's package data names every file of the console (a non-editable install serves them too)."""
    config = tomllib.loads((REPO / "services" / "gateway" / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["dyag_gateway"]
    package = CONSOLE_DIR.parent
    for path in CONSOLE_DIR.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            relative = path.relative_to(package).as_posix()
            assert any(fnmatch.fnmatch(relative, p) and relative.count("/") == p.count("/") for p in patterns), relative


@pytest.mark.parametrize(
    ("headers", "accepted", "code"),
    [
        ({}, False, "missing_api_key"),
        # without NATS, a key the settings do not hold cannot be looked up in the KV store: refused all the same
        ({"X-API-Key": "not-a-key"}, False, "key_store_unavailable"),
        ({"X-API-Key": KEY}, True, None),
        ({"Authorization": f"Bearer {KEY}"}, True, None),
    ],
)
def test_the_session_check_says_whether_the_gateway_accepts_a_key(client, headers, accepted, code):
    reply = client.get("/ui/session", headers=headers)
    assert reply.status_code == 200  # the verdict is the answer: the page asks before it keeps a key
    body = reply.json()
    assert body["accepted"] is accepted
    if accepted:
        assert body["key"]["scopes"] == ["admin"] and KEY not in reply.text
    else:
        assert body["error"]["code"] == code and body["error"]["message"]


# --- a catalog's records and the diff of two versions, dataset-builder faked ---------------------------------------
def record(entity_id: str, name: str, **fields) -> dict:
    return {"id": entity_id, "name": name, "long_name": None, "description": None, "status": "En production"} | fields


VERSIONS = {
    "v1": [
        record("1", "ALPHA", description="Books rooms"),
        record("2", "BETA", status="En projet"),
        record("3", "GAMMA"),
    ],
    "v2": [
        record("1", "ALPHA", description="Books rooms and desks", status="Abandonnée"),
        record("3", "GAMMA"),
        record("4", "DELTA", description="<script>alert(1)</script>"),
    ],
}


class FakeCall:
    def __init__(self, data: bytes):
        self.chunks = [data[i : i + 7] for i in range(0, len(data), 7)]

    def __aiter__(self):
        return self._gen()

    async def _gen(self):
        for chunk in self.chunks:
            yield catalog_pb2.CatalogChunk(data=chunk)


class FakeCatalogs:
    def __init__(self):
        self.reads = 0

    async def GetCatalog(self, request, timeout=None):
        version = request.version or "v2"
        if version not in VERSIONS:
            from dyag_core.errors import DyagError

            raise DyagError("catalog_not_found", f"catalog {request.name} version {version} not found")
        return catalog_pb2.CatalogVersion(name=request.name, version=version, entity_count=len(VERSIONS[version]))

    async def ListVersions(self, request, timeout=None):
        return catalog_pb2.ListVersionsResponse(
            versions=[catalog_pb2.CatalogVersion(name=request.name, version=v) for v in ("v2", "v1")]
        )

    def ReadCatalog(self, request, timeout=None):
        self.reads += 1
        return FakeCall(json.dumps({"entities": VERSIONS[request.version]}).encode())


class FakeBackends:
    def __init__(self):
        self.fake = FakeCatalogs()

    def catalogs(self):
        return self.fake


@pytest.fixture()
def records_client() -> tuple[TestClient, FakeCatalogs]:
    app = create_app(GatewaySettings(api_keys=KEY, services="dataset-builder"))
    app.state.backends = FakeBackends()
    client = TestClient(app, headers={"X-API-Key": KEY})
    return client, app.state.backends.fake


def test_records_a_page_at_a_time_with_search_status_and_ids(records_client):
    client, fake = records_client
    page = client.get("/catalogs/apps/entities", params={"limit": 2}).json()
    assert page["version"] == "v2" and page["count"] == 3 and page["total"] == 3
    assert [e["id"] for e in page["entities"]] == ["1", "3"]
    assert [e["id"] for e in client.get("/catalogs/apps/entities?offset=2&limit=2").json()["entities"]] == ["4"]
    assert [e["name"] for e in client.get("/catalogs/apps/entities?q=desks").json()["entities"]] == ["ALPHA"]
    assert [e["name"] for e in client.get("/catalogs/apps/entities?status=Abandonn%C3%A9e").json()["entities"]] == [
        "ALPHA"
    ]
    assert client.get("/catalogs/apps/entities?ids=4,3&version=v1").json()["total"] == 1
    assert fake.reads == 2  # each version read once, then kept
    assert client.get("/catalogs/apps/entities?limit=0").status_code == 422
    missing = client.get("/catalogs/apps/entities?version=v9")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "catalog_not_found"


def test_the_diff_of_two_versions_names_each_changed_field(records_client):
    client, _ = records_client
    diff = client.get("/catalogs/apps/diff").json()  # the latest against the version before it
    assert (diff["from"], diff["to"]) == ("v1", "v2")
    assert diff["counts"] == {"added": 1, "changed": 1, "removed": 1}
    by_kind = {c["kind"]: c for c in diff["changes"]}
    assert by_kind["added"]["id"] == "4" and by_kind["removed"]["name"] == "BETA"
    fields = {f["field"]: (f["before"], f["after"]) for f in by_kind["changed"]["fields"]}
    assert fields == {
        "description": ("Books rooms", "Books rooms and desks"),
        "status": ("En production", "Abandonnée"),
    }
    only = client.get("/catalogs/apps/diff", params={"from": "v1", "to": "v2", "kind": "removed"}).json()
    assert only["total"] == 1 and only["changes"][0]["id"] == "2"
    first = client.get("/catalogs/apps/diff", params={"to": "v1"}).json()  # the first version: all added
    assert first["from"] == "" and first["counts"] == {"added": 3, "changed": 0, "removed": 0}


def test_the_records_routes_need_a_key(records_client):
    client, _ = records_client
    for path in ("/catalogs/apps/entities", "/catalogs/apps/diff"):
        reply = client.get(path, headers={"X-API-Key": ""})
        assert reply.status_code == 401 and reply.json()["error"]["code"] == "missing_api_key"
