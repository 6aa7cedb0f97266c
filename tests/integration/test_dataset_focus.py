"""A challenger's dataset through the real dataset-builder: three applications of the sample catalog change, an
incremental build regenerates only their examples and names them, and a build focused on them holds, in its train
split, every train example about them plus a replay of the others (validation and test stay whole)."""

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


def test_a_focused_build_trains_on_the_changed_applications_plus_a_replay(running_stack, builds):
    rs, ids = running_stack, builds["ids"]
    full, focused = builds["incremental"]["dataset_id"], builds["focused"]["dataset_id"]
    assert focused != full
    assert builds["focused"]["changed_entity_ids"] == sorted(ids)
    full_train = jsonl(rs, full, "train", "manifest")
    train = jsonl(rs, focused, "train", "manifest")
    focus = about(full_train, ids)
    replay = [e for e in train if not ids & set(e["entity_ids"])]
    assert focus and {e["id"] for e in focus} <= {e["id"] for e in train}  # every train example about them
    assert {e["id"] for e in train} <= {e["id"] for e in full_train}
    assert len(replay) == round(0.5 * len(focus)) and len(train) == len(focus) + len(replay)
    assert builds["focused"]["split_counts"]["train"] == len(train)
    for split in ("validation", "test"):  # the evaluation's splits stay the whole dataset's
        assert jsonl(rs, focused, split, "manifest") == jsonl(rs, full, split, "manifest")
    dataset = rs.http.get(f"/datasets/{focused}").json()
    assert sorted(dataset["focus_entity_ids"]) == sorted(ids) and dataset["replay_fraction"] == 0.5
    logs = [line["message"] for line in rs.http.get(f"/jobs/{builds['focused']['job_id']}/logs").json()["lines"]]
    said = f"{len(focus)} examples about the focus entities + {len(replay)} replayed of {len(full_train) - len(focus)}"
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
