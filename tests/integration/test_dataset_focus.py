"""A challenger's dataset through the real dataset-builder: three applications of the sample catalog change, an
incremental build regenerates only their examples and names them, and a build focused on them trains on the facts that
changed, in every phrasing the templates have but one held out in test, plus a replay of the others."""

from __future__ import annotations

import copy
import json

import pytest

pytestmark = pytest.mark.integration
KEY = "applicationsia mini"
PARAMS = {"num_questions": 300, "seed": 5}
AGGREGATES = ("listing", "counting", "negative_unknown_entity")


def upload(rs, name: str, records: list[dict]) -> dict:
    content = json.dumps({KEY: records}, ensure_ascii=False).encode()
    reply = rs.http.post("/catalogs", files={"file": ("catalog.json", content)}, data={"name": name})
    assert reply.status_code == 201, reply.text
    return reply.json()


def build(rs, **body) -> dict:
    reply = rs.http.post("/datasets", json={"catalog": "focus", **PARAMS, **body})
    assert reply.status_code == 202, reply.text
    job = rs.wait_job(reply.json()["id"], timeout=180)
    assert job["status"] == "succeeded", job
    return job["result"] | {"job_id": job["id"]}


def jsonl(rs, dataset_id: str, split: str, fmt: str) -> list[dict]:
    reply = rs.http.get(f"/datasets/{dataset_id}/files/{split}/{fmt}")
    assert reply.status_code == 200, reply.text
    return [json.loads(line) for line in reply.text.splitlines()]


def about(entries: list[dict], ids: set[str]) -> list[dict]:
    return [e for e in entries if ids & set(e["entity_ids"])]


@pytest.fixture(scope="module")
def builds(running_stack, sample_catalog_bytes) -> dict:
    rs = running_stack
    records = json.loads(sample_catalog_bytes)[KEY]
    upload(rs, "focus", records)
    first = build(rs)
    changed = copy.deepcopy(records)
    for record in changed[:3]:
        record["statut si"] = "En fin de vie" if record.get("statut si") != "En fin de vie" else "En production"
    version = upload(rs, "focus", changed)
    ids = {str(r["id"]) for r in records[:3]}
    assert set(version["changed"]) == ids and not version["added"] and not version["removed"]
    incremental = build(rs, base_dataset_id=first["dataset_id"])
    focused = build(rs, base_dataset_id=first["dataset_id"], focus_entity_ids=sorted(ids), replay_fraction=0.5)
    return {"ids": ids, "first": first, "incremental": incremental, "focused": focused}


def test_an_incremental_build_regenerates_only_the_changed_applications_and_names_them(running_stack, builds):
    rs, ids = running_stack, builds["ids"]
    first, incremental = builds["first"], builds["incremental"]
    assert first["changed_entity_ids"] == [] and first["regenerated_examples"] == first["split_counts"]["all"]
    assert incremental["changed_entity_ids"] == sorted(ids)
    before = {e["id"]: e for e in jsonl(rs, first["dataset_id"], "all", "examples")}
    after = {e["id"]: e for e in jsonl(rs, incremental["dataset_id"], "all", "examples")}
    assert 0 < incremental["regenerated_examples"] < len(after) / 4
    # Every example about another application is the one the first build made, word for word.
    others = [
        e for e in after.values() if not ids & set(e["provenance"]["entity_ids"]) and e["qtype"] not in AGGREGATES
    ]
    assert others and all(before.get(e["id"]) == e for e in others)
    # The changed applications' examples were made again: their status questions say the new status.
    status = [e for e in after.values() if e["qtype"] == "status" and ids & set(e["provenance"]["entity_ids"])]
    assert status and all(before.get(e["id"]) != e for e in status)
    changed = [e for e in after.values() if before.get(e["id"]) != e]
    assert len(changed) <= incremental["regenerated_examples"]
    assert all(ids & set(e["provenance"]["entity_ids"]) or e["qtype"] in AGGREGATES for e in changed)


def fact(entry: dict) -> tuple:
    return (entry["type"], tuple(entry["entity_ids"]), tuple(entry["fields"]), tuple(entry["key_facts"]))


def test_a_focused_build_trains_on_the_changed_facts_in_every_phrasing_plus_a_replay(running_stack, builds):
    rs, ids = running_stack, builds["ids"]
    base, full, focused = (builds[k]["dataset_id"] for k in ("first", "incremental", "focused"))
    assert focused != full
    assert builds["focused"]["changed_entity_ids"] == sorted(ids)
    known = {fact(e) for e in jsonl(rs, base, "all", "manifest")}
    full_train, full_test = jsonl(rs, full, "train", "manifest"), jsonl(rs, full, "test", "manifest")
    train, test = jsonl(rs, focused, "train", "manifest"), jsonl(rs, focused, "test", "manifest")
    wide = ("comparative", "listing", "counting")  # changed too, but long: they join the replay pool

    def taught(entries: list[dict]) -> list[dict]:  # the changed facts a question about one application asks
        return [e for e in entries if fact(e) not in known and e["type"] not in wide]

    changed = taught(train)
    replay = [e for e in train if e not in changed]
    # every train example of a changed fact, plus the phrasings of them the full dataset did not have
    assert {e["id"] for e in taught(full_train)} < {e["id"] for e in changed}
    added = [e for e in changed if e["id"] not in {x["id"] for x in full_train}]
    assert added and all(ids & set(e["entity_ids"]) for e in added)
    for entity in ids:  # each new status taught in several phrasings, and asked in test in one train never shows
        status = [e for e in changed if e["type"] == "status" and e["entity_ids"] == [entity]]
        probe = [e for e in test if e["type"] == "status" and e["entity_ids"] == [entity]]
        assert len(status) >= 4 and probe, (entity, status, probe)
        assert not {e["template"] for e in probe} & {e["template"] for e in status}
    assert len(replay) == round(0.5 * len(changed)) and {e["id"] for e in replay} <= {e["id"] for e in full_train}
    assert builds["focused"]["split_counts"]["train"] == len(train)
    # test: the whole dataset's, plus one held-out phrasing of each changed fact it did not ask; validation: the same
    assert [e["id"] for e in test[: len(full_test)]] == [e["id"] for e in full_test] and len(test) > len(full_test)
    assert all(fact(e) not in known and e["type"] not in wide for e in test[len(full_test) :])
    assert jsonl(rs, focused, "validation", "manifest") == jsonl(rs, full, "validation", "manifest")
    dataset = rs.http.get(f"/datasets/{focused}").json()
    assert sorted(dataset["focus_entity_ids"]) == sorted(ids) and dataset["replay_fraction"] == 0.5
    logs = [line["message"] for line in rs.http.get(f"/jobs/{builds['focused']['job_id']}/logs").json()["lines"]]
    facts = len({fact(e) for e in changed})
    said = f"{len(changed)} examples about {facts} changed facts + {len(replay)} replayed of"
    assert any(said in line for line in logs), logs


def test_focus_ids_that_name_no_entity_are_refused_naming_them(running_stack, builds):
    rs = running_stack
    known = sorted(builds["ids"])[0]
    reply = rs.http.post(
        "/datasets", json={"catalog": "focus", **PARAMS, "focus_entity_ids": [known, "nope-1", "nope-2"]}
    )
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_request"
    assert "'nope-1', 'nope-2' name no entity of catalog 'focus'" in error["message"], error
    reply = rs.http.post("/datasets", json={"catalog": "focus", **PARAMS, "replay_fraction": 0.5})
    assert reply.status_code == 422 and "replay_fraction goes with focus_entity_ids" in reply.text
