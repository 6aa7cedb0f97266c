"""The retraining loop with a fine-tuned champion, on the real stack (SmolLM2 on the CPU, small budgets):

1. a first retraining trains a LoRA model on the whole catalog: the first champion;
2. three applications change: RAG answers their new status at once; only their examples are regenerated; the champion
   is asked about them first and `model.stale` says how many it gets wrong; the challenger starts from the champion's
   adapter on the changed facts (every phrasing but one held out in test, plus a replay sample), and the gate
   promotes it because it beats the champion on the changed questions;
3. a challenger made worse on purpose (2 training steps from the base model, against a grounded champion set by
   hand) is rejected, the gate's sentences as the reason; the champion stays;
4. rollback restores the first champion, and `ask` answers with it.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.conftest import read_events

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]

NAME = "retrain_lora"
CHANGES = {"6Tzen": "Abandonnée", "8-SINP": "En production", "ADS-PLUS": "En projet"}
AGAIN = {"6Tzen": "En projet", "8-SINP": "En fin de vie", "ADS-PLUS": "En production"}
IDS = {"1004", "1017", "1560"}
TRAINING = {  # eval_steps past the budget: no evaluation loss during these short runs (the gate evaluates)
    "learning_rate": 0.003,
    "r": 16,
    "lora_alpha": 32,
    "target_modules": ["all-linear"],
    "max_seq_len": 512,
    "eval_steps": 1000,
}
POLICY = {
    "approaches": ["lora"],
    "debounce_s": 2,
    "max_training_steps": 2,
    "max_eval_questions": 4,
    "training": TRAINING,
}


def catalog_with(sample: bytes, changes: dict[str, str]) -> bytes:
    data = json.loads(sample)
    for app in data["applicationsia mini"]:
        app["statut si"] = changes.get(app["nom"], app["statut si"])
    return json.dumps(data, ensure_ascii=False).encode()


def upload(rs, content: bytes) -> dict:
    reply = rs.http.post(
        f"/catalogs?name={NAME}&filename=apps.json", content=content, headers={"content-type": "application/json"}
    )
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


def set_policy(rs, **changes) -> None:
    reply = rs.http.put(f"/catalogs/{NAME}/retraining", json={**POLICY, **changes})
    assert reply.status_code == 200, reply.text


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(1.0)
    raise AssertionError(f"{what}: not after {timeout} s")


def retraining_ended(rs, started_before: int, timeout: float = 900) -> dict:
    """The pipeline of the next retraining, once it ended."""

    def started() -> list:
        events = [
            e["data"]
            for e in read_events(rs.nats_url, "dyag.events.retraining.started", expect=0, timeout=1)
            if e["data"].get("catalog") == NAME
        ]
        return events[started_before:] or None

    event = wait_for(started, 120, "a retraining to start")[0]

    def ended():
        pipeline = rs.http.get(f"/pipelines/{event['pipeline_id']}").json()
        return pipeline if pipeline["status"] in ("succeeded", "failed", "cancelled") else None

    pipeline = wait_for(ended, timeout, f"pipeline {event['pipeline_id']} to end")
    assert pipeline["status"] == "succeeded", (pipeline["error"], pipeline["steps"])
    wait_for(lambda: not rs.http.get(f"/catalogs/{NAME}/retraining").json()["trigger"]["running"], 30, "idle")
    return pipeline


def steps(pipeline: dict) -> dict[str, dict]:
    return {s["name"]: s for s in pipeline["steps"]}


def champion(rs) -> dict:
    return rs.http.get(f"/catalogs/{NAME}/champion").json()


def test_the_loop_with_a_fine_tuned_champion(running_stack, sample_catalog_bytes):
    rs = running_stack
    upload(rs, sample_catalog_bytes)
    index = rs.http.post(f"/rag/{NAME}/index", json={"catalog": NAME})
    assert rs.wait_job(index.json()["id"], timeout=300)["status"] == "succeeded"

    # 1. The first champion: a LoRA model trained on the whole catalog
    set_policy(rs)
    assert rs.http.post(f"/catalogs/{NAME}/retrain").status_code == 202
    first = retraining_ended(rs, 0)
    first_model = steps(first)["train"]["result"]["model_id"]
    book = champion(rs)
    assert book["aliases"]["champion"]["label"] == f"lora:{first_model}", book
    assert book["log"][0]["action"] == "promoted" and "premier champion" in book["log"][0]["reason"]

    # 2. Three applications change
    set_policy(rs, max_training_steps=30)
    version = upload(rs, catalog_with(sample_catalog_bytes, CHANGES))["version"]

    def rag_current() -> bool:
        reply = rs.http.post(
            f"/rag/{NAME}/query", json={"question": "Quel est le statut de 8-SINP ?", "mode": "grounded"}
        )
        return reply.status_code == 200 and "en production" in reply.json()["answer"].lower()

    wait_for(rag_current, 60, "RAG to answer 8-SINP's new status")
    second = retraining_ended(rs, 1)
    build = steps(second)["build"]["result"]
    assert set(build["changed_entity_ids"]) == IDS and build["regenerated_examples"] > 0, build
    stale = [
        e["data"]
        for e in read_events(rs.nats_url, "dyag.events.model.stale", expect=1, timeout=5)
        if e["data"].get("catalog") == NAME and e["data"].get("version") == version
    ]
    assert stale and stale[-1]["questions"] > 0 and stale[-1]["wrong"] > 0, stale
    train = steps(second)["train"]
    challenger = train["result"]["model_id"]
    assert rs.http.get(f"/models/{challenger}").json()["init_model_id"] == first_model  # from the champion's adapter
    gate = steps(second)["gate"]["result"]
    changed = gate["changed"]
    # The challenger learnt the changed facts (every phrasing but one, held out in test) and the champion did not:
    # promoted because it is better on the changed questions, and not worse on the others
    assert build["split_counts"]["test"] > 100, build  # the held-out phrasings of the changed facts
    assert changed["questions"] > 0 and changed["entities"] == 3, changed
    assert changed["challenger_accuracy"] > changed["champion_accuracy"], gate
    assert gate["decision"] == "promoted", gate
    book = champion(rs)
    assert book["aliases"]["champion"]["label"] == f"lora:{challenger}"
    assert book["aliases"]["previous"]["label"] == f"lora:{first_model}"
    promoted = [
        e["data"]
        for e in read_events(rs.nats_url, "dyag.events.model.promoted", expect=1, timeout=5)
        if e["data"].get("catalog") == NAME
    ]
    assert promoted[-1]["target"]["id"] == challenger and promoted[-1]["changed"]["questions"] > 0
    answer = rs.http.post(f"/catalogs/{NAME}/ask", json={"question": "Quel est le statut de 6Tzen ?"}).json()
    assert answer["champion"]["id"] == challenger and answer["answer"], answer

    # 3. A challenger made worse on purpose: against a grounded champion (the records themselves), a LoRA model
    #    trained for 2 steps from the base model is rejected, the gate's sentences as the reason
    target = {"kind": "grounded", "id": NAME}
    assert rs.http.post(f"/catalogs/{NAME}/champion", json={"target": target, "reason": "test"}).status_code == 200
    set_policy(rs, max_training_steps=2)
    upload(rs, catalog_with(sample_catalog_bytes, AGAIN))
    third = retraining_ended(rs, 2)
    assert steps(third)["train"]["result"]["model_id"] and not rs.http.get(
        f"/models/{steps(third)['train']['result']['model_id']}"
    ).json().get("init_model_id")  # not from a LoRA
    gate = steps(third)["gate"]["result"]
    assert gate["decision"] == "rejected", gate
    book = champion(rs)
    assert book["aliases"]["champion"]["label"] == f"grounded:{NAME}"  # unchanged
    rejected = book["candidates"][0]
    assert rejected["target"]["id"] == steps(third)["train"]["result"]["model_id"]
    assert "modifiées" in rejected["reason"] and "%" in rejected["reason"], rejected["reason"]

    # 4. Rollback to the first champion; ask answers with it
    reply = rs.http.post(f"/catalogs/{NAME}/champion/rollback", json={"to": first_model, "reason": "test"})
    assert reply.status_code == 200, reply.text
    answer = rs.http.post(f"/catalogs/{NAME}/ask", json={"question": "Quel est le statut de 6Tzen ?"}).json()
    assert answer["champion"]["id"] == first_model and answer["model"] == first_model and answer["answer"], answer
