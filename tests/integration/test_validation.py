"""The guide's step 3 through the real stack: validate, analyse, clean; dataset.validated after a build."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.conftest import read_events

pytestmark = pytest.mark.integration

SYSTEM = "Tu es un assistant expert en applications du système d'information français."


def line(question: str, answer: str) -> str:
    return json.dumps(
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        },
        ensure_ascii=False,
    )


def validate(rs, content: str, **form) -> dict:
    reply = rs.http.post("/validate", files={"file": ("train.jsonl", content.encode())}, data=form)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_broken_lines_are_reported_by_line_and_the_rest_is_analysed(running_stack):
    lines = [
        line(f"Quel est le statut de APP-{i} ?", f"L'application APP-{i} est en production depuis {2000 + i}.")
        for i in range(6)
    ]
    lines[2] = '{"messages": [{"role": "user", "content": "coupé'  # truncated JSON
    lines[4] = json.dumps({"messages": [{"role": "user", "content": "Sans réponse ?"}]})  # no assistant message
    result = validate(running_stack, "\n".join(lines) + "\n")
    report = json.dumps(result["report"], ensure_ascii=False)
    assert result["verdict"] == "à corriger"
    assert "Ligne 3" in result["text"] and "Ligne 5" in result["text"]
    assert "example_missing_assistant_message" in report
    assert result["report"]["examples"] == 4 and result["report"]["invalid_lines"] == 2


def test_personal_data_blocks_a_dataset_bound_for_a_hosted_api(running_stack):
    content = (
        line("Qui contacter pour GEOVAL ?", "Contactez claire.martin@example.gouv.fr ou le 01 23 45 67 89.") + "\n"
    )
    blocked = validate(running_stack, content, bound_for_hosted_api="true")
    assert blocked["verdict"] == "à corriger" and blocked["blocking"]
    allowed = validate(running_stack, content, bound_for_hosted_api="true", allow_pii="true")
    assert not allowed["blocking"]


def test_clean_drops_duplicates_and_redacts(running_stack):
    a = line("Quel est le statut de GEOVAL ?", "GEOVAL est en production ; écrire à jean.dupont@example.gouv.fr.")
    content = "\n".join([a, a, line("Où trouver GEOVAL ?", "Sur https://geoval.example.gouv.fr/.")]) + "\n"
    reply = running_stack.http.post(
        "/clean", params={"redact_pii": "true"}, files={"file": ("d.jsonl", content.encode())}
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["X-Dyag-Dropped"] == "1"
    cleaned = reply.text.splitlines()
    assert len(cleaned) == 2 and "jean.dupont" not in reply.text and "[EMAIL]" in reply.text


def test_validation_needs_a_file_and_an_api_key(running_stack):
    assert running_stack.http.post("/validate", data={"catalog": "x"}).status_code in (415, 422)
    reply = running_stack.anonymous.post("/validate", files={"file": ("d.jsonl", b"{}\n")})
    assert reply.status_code == 401


def test_a_built_dataset_is_validated_against_its_catalog(running_stack, sample_catalog_bytes):
    rs = running_stack
    assert rs.http.post(
        "/catalogs", files={"file": ("c.json", sample_catalog_bytes)}, data={"name": "validated"}
    ).status_code in (200, 201)
    job = rs.http.post("/datasets", json={"catalog": "validated", "num_questions": 500, "seed": 3}).json()
    dataset_id = rs.wait_job(job["id"])["result"]["dataset_id"]

    deadline = time.monotonic() + 30
    events: list[dict] = []
    while time.monotonic() < deadline and not events:
        events = [
            e
            for e in read_events(rs.nats_url, "dyag.events.dataset.validated")
            if e["data"]["dataset_id"] == dataset_id
        ]
        time.sleep(0.3)
    assert events, "no dataset.validated event"
    assert events[0]["headers"]["ce-source"] == "validator"

    counts = rs.http.get(f"/datasets/{dataset_id}").json()["split_counts"]
    result = rs.http.post(f"/datasets/{dataset_id}/validate").json()
    coverage = result["report"]["coverage"]
    assert coverage["covered"] == 45 and coverage["total"] == 45
    split_line = next(line for line in result["text"].splitlines() if "Split" in line)
    assert f"train {counts['train']}" in split_line and f"test {counts['test']}" in split_line, split_line
    assert "✅" in split_line
