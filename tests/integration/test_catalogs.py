"""Catalog ingestion through the gateway, against the real stack."""

from __future__ import annotations

import copy
import json

import pytest

from tests.integration.conftest import read_events

pytestmark = pytest.mark.integration
KEY = "applicationsia mini"


def upload(rs, name: str, content: bytes, filename: str = "catalog.json", **form):
    return rs.http.post("/catalogs", files={"file": (filename, content)}, data={"name": name, **form})


def catalog_bytes(records: list[dict]) -> bytes:
    return json.dumps({KEY: records}, ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def sample_records(sample_catalog_bytes) -> list[dict]:
    return json.loads(sample_catalog_bytes)[KEY]


def test_upload_profile_and_update_emit_catalog_updated(running_stack, sample_catalog_bytes, sample_records):
    rs = running_stack
    first = upload(rs, "lifecycle", sample_catalog_bytes, "applicationsIA_mini_normalized.json")
    assert first.status_code == 201, first.text
    v1 = first.json()
    assert v1["entity_count"] == 45 and len(v1["added"]) == 45 and not v1["changed"] and not v1["removed"]

    profile = rs.http.get("/catalogs/lifecycle/profile").json()
    assert profile["entity_count"] == 45
    assert profile["status_distribution"]["En production"] == 28
    fill = {f["field"]: f["filled"] for f in profile["fields"]}
    assert fill["nom"] == 45 and fill["descriptif"] == 42 and fill["contacts"] == 30

    records = copy.deepcopy(sample_records)
    changed_id = records[0]["id"]
    records[0]["statut si"] = "En fin de vie"
    removed = records.pop()
    records.append({"id": 999999, "nom": "NOUVELLE-APP", "statut si": "En projet"})
    second = upload(rs, "lifecycle", catalog_bytes(records))
    assert second.status_code == 201, second.text
    v2 = second.json()
    assert v2["added"] == ["999999"] and v2["changed"] == [str(changed_id)] and v2["removed"] == [str(removed["id"])]

    again = upload(rs, "lifecycle", catalog_bytes(records))
    assert again.status_code == 200 and again.json()["unchanged"] is True

    events = [
        e for e in read_events(rs.nats_url, "dyag.events.catalog.updated", expect=2) if e["data"]["name"] == "lifecycle"
    ]
    assert [e["data"]["version"] for e in events] == [v1["version"], v2["version"]]  # none for the unchanged upload
    update = events[1]
    assert update["data"]["previous_version"] == v1["version"]
    assert update["data"]["added"] == ["999999"] and update["data"]["removed"] == [str(removed["id"])]
    headers = update["headers"]
    assert headers["ce-type"] == "catalog.updated" and headers["ce-source"] == "dataset-builder" and headers["ce-id"]
    assert headers["ce-subject"] == "lifecycle"

    versions = rs.http.get("/catalogs/lifecycle/versions").json()["versions"]
    assert [v["version"] for v in versions] == [v2["version"], v1["version"]]


def test_raw_json_body_upload(running_stack, sample_catalog_bytes):
    reply = running_stack.http.post("/catalogs?name=raw-body&filename=x.json", content=sample_catalog_bytes)
    assert reply.status_code == 201, reply.text
    assert reply.json()["entity_count"] == 45


def test_mojibake_is_repaired_with_a_warning(running_stack, sample_catalog_bytes):
    import ftfy.bad_codecs  # noqa: F401  (registers "sloppy-windows-1252", how real mojibake is made)

    garbled = sample_catalog_bytes.decode("sloppy-windows-1252").encode("utf-8")
    reply = upload(running_stack, "mojibake", garbled)
    assert reply.status_code == 201, reply.text
    assert any("mojibake" in w for w in reply.json()["warnings"])
    profile = running_stack.http.get("/catalogs/mojibake/profile").json()
    assert "Biodiversité" in profile["domain_distribution"]


# --- bad input: a 4xx that names the problem, and nothing stored is lost ------------------------

BAD_INPUTS = {
    "not_json": (b'{"applicationsia mini": [{"id": 1, "nom": "A"}', "catalog.json", {}, 422, "not valid JSON"),
    "empty_list": (catalog_bytes([]), "catalog.json", {}, 422, "no records"),
    "duplicate_ids": (
        catalog_bytes([{"id": 7, "nom": "A"}, {"id": 7, "nom": "B"}]),
        "catalog.json",
        {},
        422,
        "duplicate ids: 7",
    ),
    "no_name_field": (
        catalog_bytes([{"id": 1, "statut si": "En production"}]),
        "catalog.json",
        {},
        422,
        "no field gives the entity's name",
    ),
    "too_large": (b"[" + b" " * 3_000_000 + b"]", "catalog.json", {}, 413, "limit"),
    "mojibake_rejected": (
        catalog_bytes([{"id": 1, "nom": "GÃ©oval"}]),
        "catalog.json",
        {"reject_mojibake": "true"},
        422,
        "UTF-8 read as cp1252",
    ),
}


@pytest.fixture(scope="module")
def stored_catalog(running_stack, sample_catalog_bytes) -> dict:
    reply = upload(running_stack, "keep-me", sample_catalog_bytes)
    assert reply.status_code == 201, reply.text
    return reply.json()


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_catalog_is_refused_and_nothing_is_lost(running_stack, stored_catalog, case):
    content, filename, form, status, phrase = BAD_INPUTS[case]
    reply = upload(running_stack, "keep-me", content, filename, **form)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert phrase in error["message"], error
    latest = running_stack.http.get("/catalogs/keep-me").json()
    assert latest["version"] == stored_catalog["version"]
    assert running_stack.http.get("/catalogs/keep-me/profile").json()["entity_count"] == 45


def test_path_like_catalog_name_is_refused(running_stack, sample_catalog_bytes):
    reply = upload(running_stack, "../x", sample_catalog_bytes)
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "invalid_name"
    assert "'../x'" in reply.json()["error"]["message"]


def test_state_changing_routes_need_an_api_key(running_stack, sample_catalog_bytes):
    reply = running_stack.anonymous.post(
        "/catalogs", files={"file": ("c.json", sample_catalog_bytes)}, data={"name": "nokey"}
    )
    assert reply.status_code == 401 and reply.json()["error"]["code"] == "missing_api_key"
    wrong = running_stack.anonymous.post(
        "/catalogs",
        files={"file": ("c.json", sample_catalog_bytes)},
        data={"name": "nokey"},
        headers={"X-API-Key": "nope"},
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert running_stack.http.get("/catalogs/nokey").status_code == 404  # nothing was stored
    assert running_stack.anonymous.get("/catalogs/nokey").status_code == 401  # content needs a key too
    assert running_stack.anonymous.get("/healthz").status_code == 200  # the probes stay open


def test_unknown_catalog_is_a_404_naming_it(running_stack):
    reply = running_stack.http.get("/catalogs/does-not-exist/profile")
    assert reply.status_code == 404
    assert "does-not-exist" in reply.json()["error"]["message"]


def test_readyz_reports_each_service(running_stack):
    body = running_stack.http.get("/readyz").json()
    assert body["status"] == "ready" and body["nats"] == "connected"
    assert body["services"] == {name: "serving" for name in running_stack.stack.config.services}


def test_services_serve_grpc_health_and_reflection(running_stack):
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    port = running_stack.stack.config.grpc_ports["dataset-builder"]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {
            "dyag.v1.CatalogService",
            "dyag.v1.DatasetService",
            "dyag.v1.JobService",
            "grpc.health.v1.Health",
        } <= services
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="dyag.v1.CatalogService")
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
