"""Event-triggered retraining through the real stack: a policy, a first champion, catalog changes that coalesce into
one challenger (redelivered and duplicated events start nothing twice), RAG current at once, model.stale, the gate,
a champion set by hand, rollback, ask, lineage; and the bad input each route refuses.

Grounded answers compete here (the records alone: seconds per pipeline); the LoRA loop is in test_retraining_lora.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time

import nats
import pytest

from tests.integration.conftest import read_events

pytestmark = pytest.mark.integration

NAME = "retrain_sample"
POLICY = {"approaches": ["grounded"], "debounce_s": 3, "max_eval_questions": 20}
STATUSES = {"6Tzen": "Abandonnée", "8-SINP": "En production", "ADS-PLUS": "En projet"}


def catalog_with(sample: bytes, changes: dict[str, str]) -> bytes:
    data = json.loads(sample)
    for app in data["applicationsia mini"]:
        if app["nom"] in changes:
            app["statut si"] = changes[app["nom"]]
    return json.dumps(data, ensure_ascii=False).encode()


def upload(rs, content: bytes) -> dict:
    reply = rs.http.post(
        f"/catalogs?name={NAME}&filename=apps.json", content=content, headers={"content-type": "application/json"}
    )
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not after {timeout} s")


def retraining(rs) -> dict:
    return rs.http.get(f"/catalogs/{NAME}/retraining").json()


def wait_idle(rs, timeout: float = 240.0) -> dict:
    """Until no retraining runs nor waits; the pipeline of the last one ended."""

    def idle():
        view = retraining(rs)
        trigger = view["trigger"]
        return view if not trigger["running"] and not trigger["pending"] else None

    return wait_for(idle, timeout, "the retraining to end")


def started_events(rs) -> list[dict]:
    return [
        e
        for e in read_events(rs.nats_url, "dyag.events.retraining.started", expect=0, timeout=1)
        if e["data"].get("catalog") == NAME
    ]


@pytest.fixture(scope="module")
def first_champion(running_stack, sample_catalog_bytes) -> dict:
    rs = running_stack
    upload(rs, sample_catalog_bytes)
    reply = rs.http.put(f"/catalogs/{NAME}/retraining", json=POLICY)
    assert reply.status_code == 200, reply.text
    assert reply.json()["policy"]["approaches"] == ["grounded"]
    assert rs.http.post(f"/catalogs/{NAME}/retrain").status_code == 202
    wait_idle(rs)
    book = rs.http.get(f"/catalogs/{NAME}/champion").json()
    assert book["aliases"]["champion"]["label"] == f"grounded:{NAME}", book
    return book


def test_bad_input_is_refused_by_name(running_stack):
    rs = running_stack
    cases = [
        (rs.http.put(f"/catalogs/{NAME}/retraining", json={"debounce": 3}), 422, "invalid_request", "body.debounce"),
        (rs.http.put(f"/catalogs/{NAME}/retraining", json={"approaches": ["magic"]}), 422, "invalid_policy", "magic"),
        (rs.http.put("/catalogs/no_such_catalog/retraining", json={}), 404, "catalog_not_found", "no_such_catalog"),
        (rs.anonymous.put(f"/catalogs/{NAME}/retraining", json={}), 401, "missing_api_key", "API key"),
        (
            rs.http.post("/catalogs/never_seen/ask", json={"question": "Quel est le statut de 6Tzen ?"}),
            409,
            "no_champion",
            "no champion yet",
        ),
        (rs.http.post("/catalogs/never_seen/champion/rollback", json={}), 409, "no_champion", "no champion"),
        (
            rs.http.post(f"/catalogs/{NAME}/champion", json={"target": {"kind": "model", "id": "x"}}),
            422,
            "invalid_target",
            "kind must be one of",
        ),
        (rs.http.post(f"/catalogs/{NAME}/ask", json={"question": ""}), 422, "invalid_request", "question"),
    ]
    for reply, status, code, words in cases:
        assert reply.status_code == status, (reply.status_code, reply.text)
        error = reply.json()["error"]
        assert error["code"] == code and words in error["message"], error


def test_changes_coalesce_and_duplicates_start_nothing(running_stack, sample_catalog_bytes, first_champion):
    rs = running_stack
    before = len(started_events(rs))
    # Three changes within the debounce window, one of them uploaded twice (unchanged: no new version, no event)
    versions = []
    for i in range(1, 4):
        changes = dict(list(STATUSES.items())[:i])
        versions.append(upload(rs, catalog_with(sample_catalog_bytes, changes))["version"])
    assert upload(rs, catalog_with(sample_catalog_bytes, STATUSES))["unchanged"] is True
    # ... and the last catalog.updated delivered again, as a redelivery would (another event id, the same version)
    last = [
        e
        for e in read_events(rs.nats_url, "dyag.events.catalog.updated", expect=1, timeout=2)
        if e["data"].get("name") == NAME
    ][-1]
    asyncio.run(_republish(rs.nats_url, last))

    # RAG answers the new status at once (rag-service re-embeds the changed applications on catalog.updated)
    last: dict = {}

    def current() -> bool:
        reply = rs.http.post(
            f"/rag/{NAME}/query", json={"question": "Quel est le statut de 6Tzen ?", "mode": "grounded"}
        )
        last.update(answer=reply.text[:300], stats=rs.http.get(f"/rag/{NAME}/stats").text[:300])
        return reply.status_code == 200 and "abandonnée" in reply.json()["answer"].lower()

    try:
        wait_for(current, 60, "RAG to answer the new status of 6Tzen")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last: {last}; versions {versions}") from None
    view = wait_idle(rs)
    started = started_events(rs)[before:]
    assert len(started) == 1, started  # three changes, a duplicate, a redelivery: one retraining
    event = started[0]["data"]
    assert event["version"] == versions[-1] and set(event["changed_entities"]) == {"1004", "1017", "1560"}, event
    assert view["trigger"]["last_version"] == versions[-1]
    # The champion was asked about the changed applications first
    stale = [
        e["data"]
        for e in read_events(rs.nats_url, "dyag.events.model.stale", expect=1, timeout=5)
        if e["data"].get("catalog") == NAME
    ]
    assert stale and stale[-1]["questions"] > 0 and stale[-1]["version"] == versions[-1], stale
    assert stale[-1].get("wrong", 0) == 0  # grounded answers read the current records: nothing stale
    # The gate: the best challenger is the champion itself (the same collection): nothing changes
    pipeline = rs.http.get(f"/pipelines/{event['pipeline_id']}").json()
    gate = next(s for s in pipeline["steps"] if s["name"] == "gate")
    assert gate["status"] == "succeeded" and gate["result"]["decision"] == "kept", gate
    assert rs.http.get(f"/catalogs/{NAME}/champion").json()["aliases"]["champion"]["label"] == f"grounded:{NAME}"


async def _republish(nats_url: str, event: dict) -> None:
    nc = await nats.connect(nats_url)
    try:
        headers = copy.deepcopy(event["headers"])
        headers["ce-id"] = headers["ce-id"] + "-again"
        await nc.jetstream().publish("dyag.events.catalog.updated", json.dumps(event["data"]).encode(), headers=headers)
    finally:
        await nc.close()


def test_a_champion_set_by_hand_rollback_and_ask(running_stack, first_champion):
    rs = running_stack
    target = {"kind": "rag", "id": NAME, "details": {"rag_mode": "generative", "llm": "ollama:applications-ia"}}
    reply = rs.http.post(
        f"/catalogs/{NAME}/champion",
        json={"target": target, "reason": "try the model"},
        headers={"X-Dyag-User": "alice"},
    )
    assert reply.status_code == 200, reply.text
    book = reply.json()
    assert book["aliases"]["champion"]["label"] == f"rag:{NAME}"
    assert book["aliases"]["previous"]["label"] == f"grounded:{NAME}"
    assert book["log"][0]["by"].startswith("alice (key:") and book["log"][0]["reason"] == "try the model"
    answer = rs.http.post(f"/catalogs/{NAME}/ask", json={"question": "Quel est le statut de 8-SINP ?"}).json()
    assert answer["champion"]["kind"] == "rag" and answer["model"], answer
    # Rollback: one call, and ask answers with the restored champion at once
    reply = rs.http.post(f"/catalogs/{NAME}/champion/rollback", json={"reason": "the model invents"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["aliases"]["champion"]["label"] == f"grounded:{NAME}"
    answer = rs.http.post(f"/catalogs/{NAME}/ask", json={"question": "Quel est le statut de 8-SINP ?"}).json()
    assert answer["champion"]["kind"] == "grounded" and "en production" in answer["answer"].lower(), answer
    assert answer["sources"], answer
    assert any(c["field"] == "status" and c["entity_id"] == "1017" for c in answer["citations"]), answer
    log = rs.http.get(f"/catalogs/{NAME}/champion").json()["log"]
    assert [e["action"] for e in log[:2]] == ["rolled_back", "promoted"]
    bad = rs.http.post(f"/catalogs/{NAME}/champion/rollback", json={"to": "lora-never"})
    assert bad.status_code == 409 and bad.json()["error"]["code"] == "not_a_champion"
    events = [e["data"] for e in read_events(rs.nats_url, "dyag.events.model.rolled_back", expect=1, timeout=5)]
    assert any(e.get("catalog") == NAME for e in events)


def test_lineage_links_versions_datasets_evaluations_and_decisions(running_stack, first_champion):
    graph = running_stack.http.get(f"/catalogs/{NAME}/lineage").json()
    kinds = {n["kind"] for n in graph["nodes"]}
    assert {"catalog_version", "dataset", "evaluation", "promoted"} <= kinds, kinds
    edges = {e["kind"] for e in graph["edges"]}
    assert {"built from", "test set of", "promoted", "evidence for"} <= edges, edges
