"""The guide's step 4 through the real stack: openai-trainer drives the real `openai` client (3.x, httpx2)
against a fake OpenAI API on loopback (tests/fakes/openai_server.py): gates, upload, remote job,
monitoring, retries, refusals, restart, re-submission, cancel, registry, smoke test, and the key kept secret."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.fakes.openai_server import EXPENSIVE_MODEL, NOT_AVAILABLE, Fault, JobScript
from tests.integration.conftest import read_events

pytestmark = pytest.mark.integration

SYSTEM = "Tu es un assistant expert en applications SI."
GUIDE_QUESTIONS = [
    "Qu'est-ce que l'application 6tzen ?",
    "Quel est le statut de 8-SINP ?",
    "Liste les applications du domaine biodiversité",
]
BASE = "gpt-4o-mini-2024-07-18"


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


def dataset(tag: str, n: int = 30) -> tuple[str, str]:
    """A small, valid train and validation file, unique to `tag` (so its upload is not shared with other tests)."""
    train = [
        line(
            f"Quel est le statut de APP-{tag}-{i} ?",
            f"L'application APP-{tag}-{i} est en production depuis {2000 + i} "
            f"et sert le domaine numéro {i % 7} du ministère.",
        )
        for i in range(n)
    ]
    validation = [
        line(f"Que fait APP-{tag}-{i} ?", f"APP-{tag}-{i} gère les dossiers du domaine {i % 5}.") for i in range(5)
    ]
    return "\n".join(train) + "\n", "\n".join(validation) + "\n"


def submit(rs, expect: int = 202, **body) -> dict:
    reply = rs.http.post("/hosted/jobs", json=body)
    assert reply.status_code == expect, reply.text
    return reply.json()


def train_uploaded(rs, tag: str, **body) -> dict:
    train, validation = dataset(tag)
    return submit(
        rs, train=train, validation=validation, name=f"{tag}.jsonl", base_model=body.pop("base_model", BASE), **body
    )


def progress_events(rs, job_id: str, expect: int = 1) -> list[dict]:
    events = read_events(rs.nats_url, "dyag.events.training.progress", expect=expect, timeout=10)
    return [e["data"] for e in events if e["headers"].get("ce-subject") == job_id]


def uploads(rs) -> list[dict]:
    return rs.fine_tuning.calls("POST /v1/files", status=200)


def creates(rs, suffix: str) -> list[dict]:
    return [c for c in rs.fine_tuning.calls("POST /v1/fine_tuning/jobs") if c["info"].get("suffix") == suffix]


def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached after {timeout} s")


def test_a_whole_job_from_a_built_dataset_to_a_tested_model(running_stack, sample_catalog_bytes):
    rs = running_stack
    assert rs.http.post(
        "/catalogs", files={"file": ("c.json", sample_catalog_bytes)}, data={"name": "hosted"}
    ).status_code in (200, 201)
    built = rs.wait_job(
        rs.http.post(
            "/datasets", json={"catalog": "hosted", "num_questions": 200, "seed": 11, "split_strategy": "entity"}
        ).json()["id"]
    )
    dataset_id = built["result"]["dataset_id"]
    ds = rs.http.get(f"/datasets/{dataset_id}").json()

    job = submit(rs, dataset_id=dataset_id, base_model=BASE, suffix="whole", seed=7, gates={"redact_pii": True})
    assert job["status"] == "queued" and job["kind"] == "train.openai" and job["id"].startswith("openai-trainer-")

    # The gateway's job stream: progress with the remote metrics, until the end.
    seen: list[dict] = []
    with rs.http.stream("GET", f"/jobs/{job['id']}/events", timeout=60) as stream:
        kind = ""
        for text in stream.iter_lines():
            if text.startswith("event: "):
                kind = text[7:]
            elif text.startswith("data: "):
                seen.append({"event": kind, **json.loads(text[6:])})
                if kind == "end":
                    break
    assert seen[-1]["status"] == "succeeded", seen[-1]
    done = rs.http.get(f"/jobs/{job['id']}").json()
    result = done["result"]
    model_id = result["model_id"]
    assert model_id.startswith(f"ft:{BASE}:fake-org:whole:") and result["target"] == f"openai:{model_id}"
    assert any("train_loss" in (e.get("progress") or {}).get("metrics", {}) for e in seen), (
        "no metric reached the job stream"
    )

    # The remote calls: one upload per split (purpose fine-tune), one job with the Annex A preset.
    fake = rs.fine_tuning
    created = creates(rs, "whole")
    assert len(created) == 1
    remote = fake.jobs[created[0]["info"]["job_id"]].body
    n_train = ds["split_counts"]["train"]
    assert remote["hyperparameters"] == {
        "n_epochs": 8,
        "batch_size": 3,
        "learning_rate_multiplier": 2.0,
    }  # < 500 examples
    assert ds["split_counts"]["validation"] > 0
    assert remote["seed"] == 7 and remote["validation_file"] and remote["metadata"]["dyag_plan"] == result["plan_key"]
    train_file = fake.files[remote["training_file"]]
    assert (
        train_file["purpose"] == "fine-tune"
        and len(fake.file_contents[remote["training_file"]].splitlines()) == n_train
    )

    # The registry: lineage, cost, smoke test (the guide's step 4.5 questions).
    model = rs.http.get(f"/hosted/models/{model_id}").json()
    assert model["target"] == f"openai:{model_id}" and model["base_model"] == BASE and model["job_id"] == job["id"]
    assert (
        model["dataset_id"] == dataset_id
        and model["catalog"] == "hosted"
        and model["catalog_version"] == ds["catalog_version"]
    )
    assert model["train_hash"].startswith("sha256:") and model["validation_hash"].startswith("sha256:")
    assert model["hyperparameters"] == {"n_epochs": 8, "batch_size": 3, "learning_rate_multiplier": 2.0}
    assert model["cost"]["estimated_usd"] > 0 and model["cost"]["epochs"] == 8 and model["cost"]["trained_tokens"] > 0
    assert model["training_seconds"] >= 0 and model["created_at"]
    assert model["lineage"]["files"]["train"] == remote["training_file"] and model["lineage"]["checkpoints"]
    assert model["lineage"]["gates"]["train"]["format"] == "passed"
    assert [a["question"] for a in model["smoke_test"]] == GUIDE_QUESTIONS
    assert all(a["answer"] and not a["error"] for a in model["smoke_test"])
    assert {c["question"] for c in fake.chats if c["model"] == model_id} == set(GUIDE_QUESTIONS)
    card = next(a for a in done["artifacts"] if a["name"] == "model-card.json")
    assert model["card"]["digest"] == card["digest"]
    assert any(m["id"] == model_id for m in rs.http.get("/hosted/models").json()["models"])
    assert rs.http.get("/hosted/models", params={"dataset_id": dataset_id}).json()["models"][0]["id"] == model_id

    # Each remote event and metric became a training.progress event; the model was announced.
    events = progress_events(rs, job["id"], expect=5)
    steps = [e["step"] for e in events if e.get("train_loss") is not None]
    assert steps == [1, 2, 3, 4] and all(e["total_steps"] == 4 for e in events if e.get("step"))
    assert all("valid_loss" in e and "train_mean_token_accuracy" in e for e in events if e.get("step"))
    assert {"validating_files", "queued", "running", "succeeded"} <= {e["status"] for e in events}
    registered = [
        e for e in read_events(rs.nats_url, "dyag.events.model.registered") if e["data"]["model_id"] == model_id
    ]
    assert registered and registered[0]["data"]["target"] == f"openai:{model_id}"

    # The model is a target other services can use: "openai:<id>" through the platform's chat-model interface.
    llm = pytest.importorskip("dyag_llm")
    chat = llm.open_chat_model(
        model["target"], llm.LLMSettings(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY=fake.api_key)
    )
    assert model_id in chat.chat([{"role": "user", "content": "Quel est le statut de 8-SINP ?"}]).text


def test_rate_limit_then_server_error_then_success(running_stack):
    rs = running_stack
    fake = rs.fine_tuning
    before = len(fake.calls("POST /v1/files"))
    fake.fail_next("POST /v1/files", Fault(429, retry_after=1), Fault(500))
    fake.fail_next("GET /v1/fine_tuning/jobs/{id}", Fault(503), Fault(429, retry_after=0.2))
    fake.fail_next("POST /v1/fine_tuning/jobs", Fault(502, after=True))  # created, but the answer is lost
    job = train_uploaded(rs, "retry", suffix="retry")
    done = rs.wait_job(job["id"], timeout=60)
    assert done["status"] == "succeeded", done["error"]

    calls = fake.calls("POST /v1/files")[before:]
    assert [c["status"] for c in calls[:3]] == [429, 500, 200]
    assert calls[1]["time"] - calls[0]["time"] >= 1.0, "Retry-After: 1 was not honoured"
    logs = [line["message"] for line in rs.http.get(f"/jobs/{job['id']}/logs").json()["lines"]]
    assert any("HTTP 429" in m and "retry 1" in m for m in logs) and any("HTTP 500" in m for m in logs)
    assert any("HTTP 503" in m for m in logs)  # monitoring retried too
    # The create whose answer was lost was retried, and the retry found the job it had made: one job, paid once.
    assert [c["status"] for c in creates(rs, "retry")] == [502]
    assert (
        len(fake.jobs_with_suffix("retry")) == 1
        and done["result"]["remote_job_id"] == fake.jobs_with_suffix("retry")[0]["id"]
    )


def test_a_job_that_fails_remotely(running_stack):
    rs = running_stack
    rs.fine_tuning.script("remote-fail", JobScript(fail_at_step=2))
    job = train_uploaded(rs, "remote-fail", suffix="remote-fail")
    done = rs.wait_job(job["id"], timeout=60)
    assert done["status"] == "failed"
    assert "failed at the provider" in done["error"] and "invalid training file" in done["error"]
    assert "What to do next" in done["error"]
    assert "failed" in {e["status"] for e in progress_events(rs, job["id"], expect=3)}
    assert not [m for m in rs.http.get("/hosted/models").json()["models"] if m["job_id"] == job["id"]]


def test_fine_tuning_not_available_fails_with_a_clear_message(running_stack):
    rs = running_stack
    rs.fine_tuning.script("closed", JobScript(refuse_create=403))
    job = train_uploaded(rs, "closed", suffix="closed")
    done = rs.wait_job(job["id"], timeout=60)
    assert done["status"] == "failed"
    assert "HTTP 403" in done["error"] and NOT_AVAILABLE in done["error"]
    assert "Azure OpenAI" in done["error"] and "DYAG_OPENAI_BASE_URL" in done["error"]
    assert len(creates(rs, "closed")) == 1  # a permanent refusal is not retried


def test_the_service_killed_mid_job_resumes_monitoring_after_a_restart(running_stack):
    rs = running_stack
    fake = rs.fine_tuning
    fake.script("restart", JobScript(steps=6, hold_at_step=2))
    uploads_before = len(uploads(rs))
    job = train_uploaded(rs, "restart", suffix="restart")
    remote = wait_until(
        lambda: next((j for j in fake.jobs_with_suffix("restart") if fake.job_step(j["id"]) >= 2), None), 30, "step 2"
    )
    wait_until(
        lambda: rs.http.get(f"/jobs/{job['id']}").json()["progress"].get("metrics", {}).get("remote_step") == 2,
        10,
        "progress at step 2",
    )

    rs.stack.kill("openai-trainer")
    fake.release("restart")
    rs.stack.restart("openai-trainer")
    rs.stack.wait_ready(60)
    done = rs.wait_job(job["id"], timeout=60)
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    assert len(creates(rs, "restart")) == 1, "a second remote job was created"
    assert len(uploads(rs)) - uploads_before == 2, "the files were uploaded again"  # train + validation, once
    assert done["result"]["remote_job_id"] == remote["id"]
    logs = [line["message"] for line in rs.http.get(f"/jobs/{job['id']}/logs").json()["lines"]]
    assert any("following remote job" in m and "again" in m for m in logs)
    steps = [e["step"] for e in progress_events(rs, job["id"], expect=6) if e.get("train_loss") is not None]
    assert {1, 2, 3, 4, 5, 6} <= set(steps)


def test_a_duplicate_submission_reuses_the_upload_and_the_job(running_stack):
    rs = running_stack
    first = rs.wait_job(train_uploaded(rs, "dup", suffix="dup")["id"], timeout=60)
    assert first["status"] == "succeeded" and not first["result"]["reused_upload"]
    n_uploads = len(uploads(rs))

    again = rs.wait_job(train_uploaded(rs, "dup", suffix="dup")["id"], timeout=60)
    assert again["status"] == "succeeded"
    assert again["result"]["model_id"] == first["result"]["model_id"] and again["result"]["reused_model"]
    assert again["result"]["remote_job_id"] == first["result"]["remote_job_id"]
    assert len(uploads(rs)) == n_uploads and len(creates(rs, "dup")) == 1

    # Other parameters, same data: the upload is reused, a new remote job is made.
    other = rs.wait_job(train_uploaded(rs, "dup", suffix="dup", hyperparameters={"n_epochs": 2})["id"], timeout=60)
    assert (
        other["status"] == "succeeded" and other["result"]["reused_upload"] and not other["result"]["reused_remote_job"]
    )
    assert len(uploads(rs)) == n_uploads and len(creates(rs, "dup")) == 2
    assert other["result"]["model_id"] != first["result"]["model_id"]


def test_the_cost_budget_refuses_a_job_before_upload(running_stack):
    rs = running_stack
    n_uploads = len(uploads(rs))
    expensive = rs.wait_job(train_uploaded(rs, "budget", base_model=EXPENSIVE_MODEL)["id"], timeout=60)
    assert expensive["status"] == "failed"
    assert (
        "budget gate" in expensive["error"]
        and "DYAG_OPENAI_BUDGET_USD" in expensive["error"]
        and "ignore_budget" in expensive["error"]
    )
    assert "estimated cost" in expensive["error"]
    lower = rs.wait_job(train_uploaded(rs, "budget", gates={"budget_usd": 0.000001})["id"], timeout=60)
    assert lower["status"] == "failed" and "budget gate" in lower["error"]
    assert len(uploads(rs)) == n_uploads


def test_personal_data_blocks_the_upload_unless_redacted(running_stack):
    rs = running_stack
    train, validation = dataset("pii")
    train += line("Qui contacter pour GEOVAL ?", "Contactez claire.martin@example.gouv.fr ou le 01 23 45 67 89.") + "\n"
    n_uploads = len(uploads(rs))
    blocked = rs.wait_job(
        submit(rs, train=train, validation=validation, base_model=BASE, suffix="pii")["id"], timeout=60
    )
    assert blocked["status"] == "failed"
    assert "pii gate" in blocked["error"] and "redact_pii" in blocked["error"] and "allow_pii" in blocked["error"]
    assert len(uploads(rs)) == n_uploads, "personal data was uploaded"

    redacted = rs.wait_job(
        submit(rs, train=train, validation=validation, base_model=BASE, suffix="pii", gates={"redact_pii": True})["id"],
        timeout=60,
    )
    assert redacted["status"] == "succeeded", redacted["error"]
    sent = b"".join(rs.fine_tuning.file_contents[c["info"]["file_id"]] for c in uploads(rs)[n_uploads:])
    assert b"claire.martin" not in sent and b"01 23 45 67 89" not in sent and b"[EMAIL]" in sent


def test_format_errors_block_the_upload(running_stack):
    rs = running_stack
    train, validation = dataset("format")
    broken = rs.wait_job(submit(rs, train=train + '{"messages": [{"role": "user"\n', base_model=BASE)["id"], timeout=60)
    assert broken["status"] == "failed" and "format gate" in broken["error"] and "line 31" in broken["error"]


def test_cancel_cancels_the_remote_job(running_stack):
    rs = running_stack
    fake = rs.fine_tuning
    fake.script("cancel", JobScript(steps=5, hold_at_step=1))
    job = train_uploaded(rs, "cancel", suffix="cancel")
    remote = wait_until(
        lambda: next((j for j in fake.jobs_with_suffix("cancel") if j["status"] == "running"), None), 30, "running"
    )
    assert rs.http.post(f"/jobs/{job['id']}/cancel").json()["cancel_requested"]
    assert rs.wait_job(job["id"], timeout=30)["status"] == "cancelled"
    assert fake.jobs[remote["id"]].body["status"] == "cancelled"
    assert fake.calls("POST /v1/fine_tuning/jobs/{id}/cancel", status=200)


def test_the_cli_trains_with_a_live_display_and_shows_the_tested_model(running_stack, tmp_path, capsys):
    from dyag_cli.client import GatewayClient
    from dyag_cli.hosted import train_hosted

    rs = running_stack
    train, validation = dataset("cli")
    (tmp_path / "train.jsonl").write_text(train)
    (tmp_path / "validation.jsonl").write_text(validation)  # found beside train.jsonl, as the guide lays them out
    client = GatewayClient(rs.stack.config.gateway_url, rs.http.headers["X-API-Key"])
    model = train_hosted(str(tmp_path / "train.jsonl"), BASE, suffix="cli", n_epochs=2, client=client)
    assert model["id"].startswith(f"ft:{BASE}:fake-org:cli:") and model["hyperparameters"]["n_epochs"] == 2
    assert model["dataset_name"] == "train.jsonl" and model["validation_hash"]
    out = capsys.readouterr().out
    assert model["id"] in out and "Q: Qu'est-ce que l'application 6tzen ?" in out and "R: [ft:" in out
    assert "loss" in out  # the live display showed the remote metrics


def test_requests_are_checked_by_the_gateway_and_the_service(running_stack):
    rs = running_stack
    train, _ = dataset("checks")
    assert rs.anonymous.post("/hosted/jobs", json={"train": train}).status_code == 401
    both = rs.http.post("/hosted/jobs", json={"train": train, "dataset_id": "ds-x"})
    assert both.status_code == 422 and "either" in both.json()["error"]["message"]
    unknown = rs.http.post("/hosted/jobs", json={"dataset_id": "ds-0000000000000000"})
    assert unknown.status_code == 404 and "ds-0000000000000000" in unknown.json()["error"]["message"]
    bad = rs.http.post("/hosted/jobs", json={"train": train, "hyperparameters": {"n_epochs": 99}})
    assert bad.status_code == 422
    assert rs.http.get("/hosted/models/ft:nope").status_code == 404


def test_the_api_key_is_never_in_logs_events_artifacts_or_job_records(running_stack):
    rs = running_stack
    key = rs.fine_tuning.api_key
    assert any(r["path"].startswith("/v1/") for r in rs.fine_tuning.requests), "the provider was never called"
    home = Path(rs.stack.config.home)
    found = [
        str(p) for p in home.rglob("*") if p.is_file() and key.encode() in p.read_bytes()
    ]  # logs, data, artifacts, NATS store
    assert not found, f"the API key is in {found}"
    events = read_events(rs.nats_url, "dyag.events.>", expect=10)
    assert events and not [e for e in events if key in json.dumps(e)]
    jobs = rs.http.get("/jobs", params={"service": "openai-trainer", "limit": 1000}).json()["jobs"]
    assert jobs and key not in json.dumps(jobs)
    for job in jobs:
        assert key not in json.dumps(rs.http.get(f"/jobs/{job['id']}/logs").json())
    assert key not in json.dumps(rs.http.get("/hosted/models").json())
