"""Jobs through the real stack: build, progress stream, kill and restart, cancel, redelivery."""

from __future__ import annotations

import asyncio
import json
import time

import nats
import pytest

from tests.integration.conftest import read_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def big_catalog(n: int) -> bytes:
    """A generated catalog large enough that building its full dataset takes several seconds."""
    statuses = ["En production", "En construction", "En fin de vie", "Abandonnée"]
    domains = ["Eau", "Biodiversité", "Transports", "Énergie", "Risques", "Logement"]
    records = [
        {
            "id": 100000 + i,
            "nom": f"APP-{i:05d}",
            "nom long": f"Application de gestion numéro {i}",
            "statut si": statuses[i % 4],
            "portee geographique": "Nationale" if i % 3 else "Régionale",
            "domaines et sous domaines": [
                {"domaine metier": domains[i % 6], "sous domaine metier": f"Sous-domaine {i % 11}"}
            ],
            "acteurs": [{"role d acteur": "MOA", "acteur": f"DIR/SERVICE-{i % 37}"}],
        }
        for i in range(n)
    ]
    return json.dumps({"applicationsia mini": records}, ensure_ascii=False).encode()


def upload(rs, name: str, content: bytes) -> dict:
    reply = rs.http.post("/catalogs", files={"file": ("c.json", content)}, data={"name": name})
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


def start_build(rs, catalog: str, **params) -> dict:
    reply = rs.http.post("/datasets", json={"catalog": catalog, **params})
    assert reply.status_code == 202, reply.text
    return reply.json()


def wait_running(rs, job_id: str, min_fraction: float = 0.05, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = rs.http.get(f"/jobs/{job_id}").json()
        if job["status"] == "running" and job["progress"].get("fraction", 0) >= min_fraction:
            return job
        assert job["status"] in ("queued", "running"), job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never ran")


@pytest.fixture(scope="module")
def big(running_stack) -> str:
    upload(running_stack, "big", big_catalog(3000))
    return "big"


def test_build_a_dataset_and_follow_its_progress(running_stack, sample_catalog_bytes):
    rs = running_stack
    upload(rs, "sample", sample_catalog_bytes)
    job = start_build(rs, "sample", num_questions=1000, formats=["openai", "alpaca"])
    assert job["status"] == "queued" and job["kind"] == "dataset.build"

    events: list[dict] = []
    with rs.http.stream("GET", f"/jobs/{job['id']}/events") as stream:
        kind = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append({"event": kind, **json.loads(line[6:])})
                if kind == "end":
                    break
    assert events[-1] == {"event": "end", "id": job["id"], "status": "succeeded"}
    assert events[-2]["status"] == "succeeded" and events[-2]["progress"]["fraction"] == 1.0

    done = rs.http.get(f"/jobs/{job['id']}").json()
    dataset = rs.http.get(f"/datasets/{done['result']['dataset_id']}").json()
    assert dataset["split_counts"] == {"train": 800, "validation": 100, "test": 100, "all": 1000}
    train = rs.http.get(f"/datasets/{dataset['id']}/files/train/openai").text.splitlines()
    assert len(train) == 800 and set(json.loads(train[0])) == {"messages"}
    alpaca = rs.http.get(f"/datasets/{dataset['id']}/files/train/alpaca").json()
    assert len(alpaca) == 800 and set(alpaca[0]) == {"instruction", "input", "output"}

    built = [
        e for e in read_events(rs.nats_url, "dyag.events.dataset.built") if e["data"]["dataset_id"] == dataset["id"]
    ]
    assert built and built[0]["headers"]["ce-correlationid"] == job["correlation_id"]
    kinds = {
        e["headers"]["ce-type"]
        for e in read_events(rs.nats_url, "dyag.events.job.>", expect=3)
        if e["headers"]["ce-subject"] == job["id"]
    }
    assert {"job.queued", "job.started", "job.succeeded"} <= kinds


def test_a_service_killed_mid_job_resumes_it_after_restart(running_stack, big):
    rs = running_stack
    job = start_build(rs, big)
    wait_running(rs, job["id"])
    rs.stack.kill("dataset-builder")
    assert rs.http.get("/readyz").status_code == 503
    rs.stack.restart("dataset-builder")
    rs.stack.wait_ready(60)

    done = rs.wait_job(job["id"], timeout=180)
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2
    logs = rs.http.get(f"/jobs/{job['id']}/logs").json()["lines"]
    assert any("resumed" in line["message"] for line in logs)


def test_cancel_a_running_job(running_stack, big):
    rs = running_stack
    job = start_build(rs, big, seed=7)
    wait_running(rs, job["id"])
    cancelled = rs.http.post(f"/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"] is True
    assert rs.wait_job(job["id"], timeout=60)["status"] == "cancelled"
    assert rs.anonymous.post(f"/jobs/{job['id']}/cancel").status_code == 401


def test_cancel_needs_a_known_job(running_stack):
    reply = running_stack.http.post("/jobs/dataset-builder-0000000000000000/cancel")
    assert reply.status_code == 404 and "dataset-builder-0000000000000000" in reply.json()["error"]["message"]


def test_a_new_catalog_version_rebuilds_the_dataset_once_even_if_the_event_is_redelivered(
    running_stack, sample_catalog_bytes
):
    rs = running_stack
    v1 = upload(rs, "retrain", sample_catalog_bytes)
    first = rs.wait_job(start_build(rs, "retrain", num_questions=600)["id"])
    base_id = first["result"]["dataset_id"]

    records = json.loads(sample_catalog_bytes)["applicationsia mini"]
    records[0]["statut si"] = "Abandonnée"
    v2 = upload(rs, "retrain", json.dumps({"applicationsia mini": records}, ensure_ascii=False).encode())
    assert v2["changed"] == [str(records[0]["id"])]

    def rebuilds() -> list[dict]:
        listing = rs.http.get("/jobs", params={"kind": "dataset.build"}).json()
        assert listing["unavailable"] == {}, listing["unavailable"]
        return [j for j in listing["jobs"] if j["params"].get("base_dataset_id") == base_id]

    deadline = time.monotonic() + 30
    found = rebuilds()
    while not found and time.monotonic() < deadline:
        time.sleep(0.2)
        found = rebuilds()
    assert len(found) == 1
    rebuilt = rs.wait_job(found[0]["id"])
    assert rebuilt["status"] == "succeeded" and rebuilt["params"]["catalog_version"] == v2["version"]
    dataset = rs.http.get(f"/datasets/{rebuilt['result']['dataset_id']}").json()
    assert dataset["base_dataset_id"] == base_id and 0 < dataset["regenerated_examples"] < 600

    # Redeliver the same catalog.updated event (same ce-id, past JetStream's duplicate filter).
    event = next(
        e
        for e in read_events(rs.nats_url, "dyag.events.catalog.updated", expect=2)
        if e["data"]["version"] == v2["version"]
    )

    async def redeliver() -> None:
        nc = await nats.connect(rs.nats_url)
        headers = dict(event["headers"], **{"Nats-Msg-Id": event["headers"]["ce-id"] + "-again"})
        await nc.jetstream().publish("dyag.events.catalog.updated", json.dumps(event["data"]).encode(), headers=headers)
        await nc.close()

    asyncio.run(redeliver())
    time.sleep(3)
    assert len(rebuilds()) == 1
    assert v1["version"] != v2["version"]


def test_building_from_an_unknown_catalog_or_with_bad_parameters_is_refused(running_stack, sample_catalog_bytes):
    rs = running_stack
    upload(rs, "params", sample_catalog_bytes)
    upload(
        rs, "names-only", json.dumps({"applicationsia mini": [{"id": i, "nom": f"APP-{i}"} for i in range(5)]}).encode()
    )
    cases = [
        ({"catalog": "names-only"}, 422, "only names are not enough"),
        ({"catalog": "nope"}, 404, "nope"),
        ({"catalog": "params", "num_questions": 100000}, 422, "100000"),
        ({"catalog": "params", "question_types": ["weather"]}, 422, "weather"),
        ({"catalog": "params", "split_strategy": "random"}, 422, "split_strategy"),
        ({"catalog": "params", "num_questions": -1}, 422, "num_questions"),
    ]
    for body, status, phrase in cases:
        reply = rs.http.post("/datasets", json=body)
        assert reply.status_code == status, (body, reply.text)
        assert phrase in reply.json()["error"]["message"], (body, reply.json())
