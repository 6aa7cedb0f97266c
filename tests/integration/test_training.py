"""LoRA fine-tuning through the real stack, on CPU, with the default model (SmolLM2-135M-Instruct).

One real training teaches three catalog facts (each application's domain, from the sample catalog); the
tests then check that the loss fell, that the fine-tuned model answers the facts the base model gets
wrong, the artifacts and the registry, and the progress stream. Other jobs are killed and resumed,
cancelled, or refused for bad input.
"""

from __future__ import annotations

import json
import time

import pytest

from dyag_core.catalog.loader import load_catalog_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SYSTEM = "Tu es un assistant expert en applications du système d'information français."
# Applications whose names say nothing of their domain: the base model cannot guess it.
APPS = ("PILOTE-BOP", "INSPECTA", "CONTROLE-RT")
TRAIN_QUESTIONS = (
    "Quel est le domaine de l'application {n} ?",
    "De quel domaine relève {n} ?",
    "Dans quel domaine est l'application {n} ?",
    "À quel domaine métier appartient {n} ?",
)
FAST = {
    "max_seq_len": 256,
    "batch_size": 1,
    "learning_rate": 0.002,
    "r": 16,
    "lora_alpha": 32,
    "target_modules": ["all-linear"],
    "seed": 7,
}


def example(question: str, answer: str) -> dict:
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


@pytest.fixture(scope="module")
def facts(sample_catalog_path) -> dict[str, str]:
    """Each application's domain, as the catalog says."""
    catalog = load_catalog_file(sample_catalog_path)
    found = {e.name: e.domains[0].domain for e in catalog.entities if e.name in APPS and e.domains}
    assert set(found) == set(APPS)
    return found


@pytest.fixture(scope="module")
def fact_data(facts) -> tuple[str, str]:
    train = [
        example(q.format(n=n), f"L'application {n} relève du domaine « {d} ».")
        for n, d in facts.items()
        for q in TRAIN_QUESTIONS
    ]
    validation = [
        example(f"Peux-tu me dire le domaine de {n} ?", f"L'application {n} relève du domaine « {d} ».")
        for n, d in facts.items()
    ]
    return jsonl(train), jsonl(validation)


def start(rs, body: dict) -> dict:
    reply = rs.http.post("/train", json=body)
    assert reply.status_code == 202, reply.text
    job = reply.json()
    assert job["kind"] == "train.lora" and job["service"] == "gpu-lora-trainer"
    return job


def wait_step(rs, job_id: str, step: int, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = rs.http.get(f"/jobs/{job_id}").json()
        assert job["status"] in ("queued", "running"), job
        if job["progress"].get("metrics", {}).get("step", 0) >= step:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached step {step}")


def ask(rs, model: str, questions: list[str]) -> list[str]:
    conversations = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}] for q in questions]
    reply = rs.http.post(f"/models/{model}/chat", json={"conversations": conversations, "max_tokens": 32}, timeout=300)
    assert reply.status_code == 200, reply.text
    return reply.json()["answers"]


@pytest.fixture(scope="module")
def trained(running_stack, fact_data) -> dict:
    """One real training on the facts, followed through the gateway's progress stream."""
    rs = running_stack
    train, validation = fact_data
    job = start(
        rs,
        {
            "train": train,
            "validation": validation,
            "filename": "facts.jsonl",
            "name": "facts",
            "config": {**FAST, "epochs": 3, "eval_steps": 4, "checkpoint_steps": 10},
        },
    )
    events = []
    with rs.http.stream("GET", f"/jobs/{job['id']}/events", timeout=None) as stream:
        kind = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append({"event": kind, **json.loads(line[6:])})
                if kind == "end":
                    break
    done = rs.http.get(f"/jobs/{job['id']}").json()
    assert done["status"] == "succeeded", (done["error"], done)
    return {"job": done, "events": events}


def test_the_loss_falls_and_progress_carries_the_training_metrics(trained):
    job, events = trained["job"], trained["events"]
    metrics = job["result"]["metrics"]
    assert metrics["final_loss"] < 0.25 * metrics["first_loss"], metrics
    assert metrics["eval_loss"] < metrics["first_eval_loss"] or metrics["eval_loss"] < 0.1, metrics
    assert metrics["train_assistant_tokens"] < metrics["train_tokens"]  # the loss is on the assistant's tokens only
    progress = [
        e["progress"]["metrics"] for e in events if e["event"] == "job" and e["progress"].get("metrics", {}).get("step")
    ]
    assert progress, events
    keys = set().union(*progress)
    assert {
        "step",
        "total_steps",
        "epoch",
        "loss",
        "eval_loss",
        "learning_rate",
        "tokens_per_second",
        "eta_seconds",
    } <= keys
    steps = [p["step"] for p in progress]
    assert steps == sorted(steps) and steps[-1] == metrics["steps"]


def test_the_fine_tuned_model_answers_catalog_facts_the_base_model_gets_wrong(running_stack, trained, facts):
    rs = running_stack
    model_id = trained["job"]["result"]["model_id"]
    questions = [TRAIN_QUESTIONS[0].format(n=n) for n in facts]
    tuned = ask(rs, model_id, questions)
    base = ask(rs, "default", questions)
    right_tuned = [d.lower() in a.lower() for d, a in zip(facts.values(), tuned, strict=True)]
    right_base = [d.lower() in a.lower() for d, a in zip(facts.values(), base, strict=True)]
    assert sum(right_tuned) >= 2, tuned
    assert any(t and not b for t, b in zip(right_tuned, right_base, strict=True)), (tuned, base)
    assert sum(right_base) < sum(right_tuned), (tuned, base)


def test_the_model_is_registered_with_its_artifacts_and_lineage(running_stack, trained, fact_data):
    rs = running_stack
    model_id = trained["job"]["result"]["model_id"]
    model = rs.http.get(f"/models/{model_id}").json()
    assert model["id"] == model_id and model["base_model"] == "default" and model["backend"] == "transformers+peft"
    assert model["job_id"] == trained["job"]["id"] and model["dataset_hash"].startswith("sha256:")
    assert model["hyperparameters"]["r"] == 16 and model["hyperparameters"]["preset"] == "small"
    names = {a["name"] for a in model["artifacts"]}
    assert {
        "adapter_model.safetensors",
        "adapter_config.json",
        "metrics.json",
        "loss_curve.png",
        "MODEL_CARD.md",
    } <= names
    assert names <= {a["name"] for a in trained["job"]["artifacts"]}
    assert any(m["id"] == model_id for m in rs.http.get("/models").json()["models"])
    assert rs.http.get("/models/lora-0000000000000000").status_code == 404


def test_a_run_that_continues_a_model_starts_from_its_adapter_and_records_it(running_stack, trained, fact_data):
    """Retraining's challenger: the first model's adapter is the second run's starting point. The first run started
    from a fresh adapter (B = 0: the base model's loss) on the same data and seed, so its first loss is the base
    model's; a run that starts from the trained adapter logs, at its first step, a fraction of it."""
    rs = running_stack
    first = trained["job"]["result"]
    train, _ = fact_data
    job = start(
        rs,
        {
            "train": train,
            "name": "facts-continued",
            "init_model_id": first["model_id"],
            "config": {**FAST, "r": 8, "max_steps": 2},  # r=8 asked: the adapter's r=16 stays
        },
    )
    done = rs.wait_job(job["id"], timeout=300)
    assert done["status"] == "succeeded", (done["error"], done)
    assert done["result"]["init_model_id"] == first["model_id"]
    model = rs.http.get(f"/models/{done['result']['model_id']}").json()
    assert model["init_model_id"] == first["model_id"] and model["base_model"] == "default"
    assert model["hyperparameters"]["r"] == 16 and model["hyperparameters"]["lora_alpha"] == 32
    assert model["hyperparameters"]["target_modules"] == ["all-linear"]
    fresh, continued = first["metrics"]["first_loss"], done["result"]["metrics"]["first_loss"]
    assert continued < 0.5 * fresh, (continued, fresh)
    logs = [line["message"] for line in rs.http.get(f"/jobs/{job['id']}/logs").json()["lines"]]
    assert any(f"continuing model {first['model_id']}" in line for line in logs), logs
    assert any(
        f"r=8 asked, but a run that continues {first['model_id']} keeps its adapter's r=16" in line for line in logs
    )
    assert rs.http.get(f"/models/{first['model_id']}").json().get("init_model_id", "") == ""


def test_continuing_a_model_on_another_base_model_or_an_unknown_model_is_refused(running_stack, trained):
    rs = running_stack
    model_id = trained["job"]["result"]["model_id"]
    body = {"train": jsonl([example("q", "a")]), "init_model_id": model_id, "base_model": "qwen2.5-0.5b"}
    reply = rs.http.post("/train", json=body)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "base_model_mismatch"
    assert "'default'" in error["message"] and "'qwen2.5-0.5b'" in error["message"] and model_id in error["message"]
    reply = rs.http.post("/train", json={"train": body["train"], "init_model_id": "lora-0000000000000000"})
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "model_not_found", reply.text


def test_train_on_a_built_dataset_records_its_lineage(running_stack, sample_catalog_bytes):
    rs = running_stack
    reply = rs.http.post("/catalogs", files={"file": ("c.json", sample_catalog_bytes)}, data={"name": "lora"})
    assert reply.status_code in (200, 201), reply.text
    build = rs.http.post(
        "/datasets", json={"catalog": "lora", "num_questions": 40, "question_types": ["status"]}
    ).json()
    dataset_id = rs.wait_job(build["id"])["result"]["dataset_id"]
    dataset = rs.http.get(f"/datasets/{dataset_id}").json()
    job = start(rs, {"dataset_id": dataset_id, "config": {**FAST, "max_steps": 2, "max_seq_len": 512}})
    done = rs.wait_job(job["id"], timeout=300)
    assert done["status"] == "succeeded", (done["error"], done)
    model = rs.http.get(f"/models/{done['result']['model_id']}").json()
    train_file = next(f for f in dataset["files"] if f["split"] == "train" and f["format"] == "openai")
    assert model["dataset_id"] == dataset_id and model["dataset_hash"] == train_file["artifact"]["digest"]
    assert model["catalog"] == "lora" and model["catalog_version"] == dataset["catalog_version"]
    assert done["result"]["metrics"]["validation_examples"] == dataset["split_counts"]["validation"]


def test_a_job_killed_mid_run_resumes_from_its_last_checkpoint(running_stack, fact_data):
    rs = running_stack
    train, _ = fact_data
    job = start(rs, {"train": train, "config": {**FAST, "max_steps": 8, "checkpoint_steps": 2}})
    wait_step(rs, job["id"], 3)  # the checkpoint of step 2 is written
    rs.stack.kill("gpu-lora-trainer")
    rs.stack.restart("gpu-lora-trainer")
    rs.stack.wait_ready(90)
    done = rs.wait_job(job["id"], timeout=400)
    assert done["status"] == "succeeded", (done["error"], done)
    assert done["attempts"] == 2
    assert done["result"]["metrics"]["resumed_from_step"] >= 2
    assert done["result"]["metrics"]["steps"] == 8
    logs = [line["message"] for line in rs.http.get(f"/jobs/{job['id']}/logs").json()["lines"]]
    assert any("resuming from checkpoint step" in line for line in logs), logs


def test_cancel_a_running_training(running_stack, fact_data):
    rs = running_stack
    train, _ = fact_data
    job = start(rs, {"train": train, "config": {**FAST, "max_steps": 500}})
    wait_step(rs, job["id"], 1)
    reply = rs.http.post(f"/jobs/{job['id']}/cancel")
    assert reply.status_code == 200 and reply.json()["cancel_requested"] is True
    done = rs.wait_job(job["id"], timeout=120)
    assert done["status"] == "cancelled", done
    assert done["progress"]["metrics"]["step"] < 50


@pytest.mark.parametrize(
    ("body", "code_phrase"),
    [
        (
            {"train": jsonl([example("q", "a")]), "base_model": "nobody/no-such-model"},
            "unknown base model 'nobody/no-such-model'",
        ),
        ({"train": "\n\n"}, "is empty"),
        ({"train": jsonl([example("q", "a")]) + '{"messages": [}\n' + '{"text": "x"}\n'}, "line 2: not JSON"),
    ],
    ids=["unknown-base-model", "empty", "malformed"],
)
def test_bad_input_ends_the_job_failed_with_the_reason(running_stack, body, code_phrase):
    rs = running_stack
    job = start(rs, body)
    done = rs.wait_job(job["id"], timeout=120)
    assert done["status"] == "failed" and code_phrase in done["error"], done
    if "malformed" in code_phrase or "line 2" in code_phrase:
        assert "line 3" in done["error"]


def test_examples_longer_than_max_seq_len_are_reported_not_cut(running_stack, fact_data):
    rs = running_stack
    train, _ = fact_data
    long_answer = "Le domaine est " + "très " * 200 + "long."
    rows = train + jsonl([example("Question longue ?", long_answer)])
    job = start(rs, {"train": rows, "config": {"max_seq_len": 128}})
    done = rs.wait_job(job["id"], timeout=120)
    assert done["status"] == "failed", done
    assert "longer than max_seq_len=128" in done["error"] and "line 13" in done["error"], done["error"]


def test_bad_options_are_refused_at_once(running_stack):
    rs = running_stack
    reply = rs.http.post("/train", json={"train": jsonl([example("q", "a")]), "config": {"r": 0, "learning_rate": 5}})
    assert reply.status_code == 422 and "r must be at least 1" in reply.json()["error"]["message"]
    reply = rs.http.post("/train", json={"dataset_id": "ds-0000000000000000"})
    assert reply.status_code == 404
    assert rs.anonymous.post("/train", json={"train": "x"}).status_code == 401
