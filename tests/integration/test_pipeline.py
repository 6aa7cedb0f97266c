"""The whole workflow as one pipeline through the real stack (POST /pipelines, `dyag run`), its state in NATS KV.

- bad input at each entry point is refused with an error that names the problem;
- a step that fails ends the pipeline failed, naming the step and its job's error, and keeps what was done;
- a cancelled pipeline cancels its running step's job;
- the whole workflow (slow, kept tiny: a small dataset, 2 training steps, 3 test questions per target, the RAG target
  answering through the fake Ollama) runs through `dyag run`, while the gateway process is killed and started again
  in the middle of the training: the pipeline resumes, re-attached to the same training job.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.integration

NAME = "pipeline_sample"  # a catalog of its own: the other modules' applications_ia collection is left alone
TINY = {
    "num_questions": 120,
    "max_steps": 2,
    "max_eval_questions": 3,
    "eval_max_tokens": 24,
    "skip_similarity": True,
    "rag_llm": "ollama:applications-ia",
    "training_config": {"checkpoint_steps": 1},
}


def catalog_body(sample_catalog_bytes: bytes, **extra) -> dict:
    return {
        "catalog": NAME,
        "catalog_base64": base64.b64encode(sample_catalog_bytes).decode(),
        "catalog_filename": "applicationsIA_mini_normalized.json",
        **extra,
    }


def start(rs, body: dict) -> dict:
    reply = rs.http.post("/pipelines", json=body)
    assert reply.status_code == 202, reply.text
    pipeline = reply.json()
    assert pipeline["id"].startswith("pipeline-") and pipeline["status"] in ("queued", "running")
    assert reply.headers["location"] == f"/pipelines/{pipeline['id']}"
    return pipeline


def wait(rs, pipeline_id: str, until, timeout: float = 240.0, what: str = "") -> dict:
    deadline = time.monotonic() + timeout
    pipeline: dict = {}
    while time.monotonic() < deadline:
        try:
            reply = rs.http.get(f"/pipelines/{pipeline_id}")
        except httpx.TransportError:  # the gateway is restarting
            time.sleep(0.3)
            continue
        if reply.status_code == 200:
            pipeline = reply.json()
            if until(pipeline):
                return pipeline
        time.sleep(0.3)
    raise AssertionError(
        f"pipeline {pipeline_id}: {what or 'condition'} not reached in {timeout} s: "
        f"{json.dumps({k: pipeline.get(k) for k in ('status', 'error', 'steps')})[:3000]}"
    )


def ended(pipeline: dict) -> bool:
    return pipeline["status"] in ("succeeded", "failed", "cancelled")


def steps(pipeline: dict) -> dict[str, dict]:
    return {s["name"]: s for s in pipeline["steps"]}


# --- bad input ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"catalog": "no_such_catalog"}, 404, "catalog_not_found", "no_such_catalog"),
        ({"catalog": NAME, "catalog_version": "0000000000000000"}, 404, "catalog_not_found", "0000000000000000"),
        ({"catalog": NAME, "num_questions": -5}, 422, "invalid_request", "num_questions"),
        ({"catalog": NAME, "max_eval_questions": -1}, 422, "invalid_request", "max_eval_questions"),
        ({"catalog": NAME, "targets": ["base", "gpt-5"]}, 422, "invalid_request", "targets"),
        ({"catalog": NAME, "skip": ["train"]}, 422, "invalid_request", "model_id"),
        (
            {"catalog": NAME, "skip": ["train"], "model_id": "lora-0000000000000000", "targets": ["fine_tuned"]},
            404,
            "model_not_found",
            "lora-0000000000000000",
        ),
        ({"catalog": NAME, "training_config": {"no_such_option": 1}}, 422, "invalid_config", "no_such_option"),
        ({"catalog": NAME, "training_config": {"learning_rate": 5}}, 422, "invalid_config", "learning_rate"),
        ({}, 422, "invalid_request", "give a catalog"),
        ({"catalog": "x", "catalog_content": "this is not a catalog"}, 422, "", "catalog"),
        ({"catalog": "x", "catalog_base64": "%%%"}, 422, "invalid_catalog_base64", "base64"),
        ({"catalog": "x", "catalog_content": "[" + "1," * 1_100_000 + "1]"}, 413, "too_large", "upload limit"),
    ],
    ids=[
        "unknown-catalog",
        "unknown-version",
        "negative-count",
        "negative-eval",
        "unknown-target",
        "skip-train-no-model",
        "unknown-model",
        "unknown-training-option",
        "bad-learning-rate",
        "no-catalog",
        "unreadable-catalog",
        "bad-base64",
        "too-large",
    ],
)
def test_bad_input_is_refused_with_a_clear_error(running_stack, stored_catalog, body, status, code, words):
    reply = running_stack.http.post("/pipelines", json=body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert not code or error["code"] == code, error
    assert words in error["message"], error


def test_unknown_pipelines_and_api_keys(running_stack):
    rs = running_stack
    for method, path in (
        ("get", "/pipelines/pipeline-0000000000000000"),
        ("post", "/pipelines/pipeline-0000000000000000/cancel"),
        ("get", "/pipelines/pipeline-0000000000000000/report.html"),
        ("get", "/pipelines/pipeline-0000000000000000/events"),
    ):
        reply = getattr(rs.http, method)(path)
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "pipeline_not_found", (path, reply.text)
        assert "pipeline-0000000000000000" in reply.json()["error"]["message"]
    assert rs.anonymous.post("/pipelines", json={"catalog": NAME}).status_code == 401
    assert rs.http.get("/pipelines", params={"status": "bogus"}).status_code == 422


@pytest.fixture(scope="module")
def stored_catalog(running_stack, sample_catalog_bytes) -> str:
    reply = running_stack.http.post(
        "/catalogs", files={"file": ("applicationsIA_mini_normalized.json", sample_catalog_bytes)}, data={"name": NAME}
    )
    assert reply.status_code in (200, 201), reply.text
    return reply.json()["version"]


# --- a failing step, a cancel -----------------------------------------------------------------------------------------


def test_a_failing_step_ends_the_pipeline_failed_and_keeps_what_is_done(running_stack, sample_catalog_bytes):
    # max_seq_len 16 passes the trainer's checks, and every example is longer: the training job fails.
    body = catalog_body(
        sample_catalog_bytes, num_questions=60, skip=["index", "evaluate"], training_config={"max_seq_len": 16}
    )
    pipeline = wait(running_stack, start(running_stack, body)["id"], ended, what="its end")
    by = steps(pipeline)
    assert pipeline["status"] == "failed" and pipeline["failed_step"] == "train"
    assert pipeline["error"].startswith("step 4 train (fine-tune (LoRA), job gpu-lora-trainer-")
    assert "max_seq_len" in pipeline["error"] and "16" in pipeline["error"]  # the job's own reason
    assert by["train"]["status"] == "failed" and by["train"]["job_id"].startswith("gpu-lora-trainer-")
    assert running_stack.http.get(f"/jobs/{by['train']['job_id']}").json()["status"] == "failed"
    # What was done stays, with its timings and results.
    assert by["ingest"]["status"] == by["build"]["status"] == by["validate"]["status"] == "succeeded"
    assert by["build"]["result"]["dataset_id"].startswith("ds-") and by["build"]["seconds"] > 0
    assert by["validate"]["result"]["examples"] > 0
    assert by["index"]["status"] == "skipped" and by["report"]["status"] == "skipped"
    # Every step's job carries the pipeline's correlation id.
    build = running_stack.http.get(f"/jobs/{by['build']['job_id']}").json()
    assert build["correlation_id"] == pipeline["correlation_id"]
    listed = running_stack.http.get("/pipelines", params={"status": "failed"}).json()["pipelines"]
    assert any(p["id"] == pipeline["id"] and p["failed_step"] == "train" for p in listed)
    assert running_stack.http.post(f"/pipelines/{pipeline['id']}/cancel").status_code == 409  # it has ended


def test_cancel_a_pipeline(running_stack, stored_catalog):
    rs = running_stack
    body = {"catalog": NAME, "num_questions": 60, "max_steps": 50, "skip": ["index", "evaluate"]}
    pipeline = start(rs, body)
    running = wait(rs, pipeline["id"], lambda p: bool(steps(p)["train"]["job_id"]), what="the training's job")
    reply = rs.http.post(f"/pipelines/{pipeline['id']}/cancel")
    assert reply.status_code == 200 and reply.json()["cancel_requested"], reply.text
    done = wait(rs, pipeline["id"], ended, what="its end")
    assert done["status"] == "cancelled" and steps(done)["train"]["status"] == "cancelled"
    assert steps(done)["build"]["status"] == "succeeded"  # what was done stays
    # The training job was told; the trainer stops it at its next progress report (its own tests cover that).
    job = rs.http.get(f"/jobs/{steps(running)['train']['job_id']}").json()
    assert job["cancel_requested"] or job["status"] == "cancelled", job


def test_a_pipeline_posted_again_under_its_idempotency_key_is_the_same_one(running_stack, stored_catalog):
    """A client that sends POST /pipelines again (its connection dropped, a gateway restarted) with the same
    Idempotency-Key gets the pipeline its first request created, not a second one; the key is the caller's own."""
    rs = running_stack
    body = {"catalog": NAME, "num_questions": 60, "max_steps": 2, "skip": ["index", "evaluate"]}
    first = rs.http.post("/pipelines", json=body, headers={"Idempotency-Key": "dyag-run-1"})
    again = rs.http.post("/pipelines", json=body, headers={"Idempotency-Key": "dyag-run-1"})
    other = rs.http.post("/pipelines", json=body, headers={"Idempotency-Key": "dyag-run-2"})
    created = rs.http.post("/keys", json={"name": "idempotency", "scopes": ["write"]})
    assert created.status_code in (200, 201), created.text
    another_caller = rs.http.post(
        "/pipelines", json=body, headers={"Idempotency-Key": "dyag-run-1", "X-API-Key": created.json()["key"]}
    )
    bad = rs.http.post("/pipelines", json=body, headers={"Idempotency-Key": "x" * 256})
    try:
        assert [r.status_code for r in (first, again, other, another_caller)] == [202] * 4, first.text
        assert again.json()["id"] == first.json()["id"]
        assert len({first.json()["id"], other.json()["id"], another_caller.json()["id"]}) == 3
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_idempotency_key", bad.text
        listed = [p["id"] for p in rs.http.get("/pipelines", params={"limit": 200}).json()["pipelines"]]
        assert listed.count(first.json()["id"]) == 1
    finally:
        for reply in (first, other, another_caller):
            if reply.status_code == 202:
                rs.http.post(f"/pipelines/{reply.json()['id']}/cancel")
        for reply in (first, other, another_caller):
            if reply.status_code == 202:
                wait(rs, reply.json()["id"], ended, what="its end after the cancel")


# --- the whole workflow ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_whole_workflow_with_dyag_run_survives_a_gateway_restart(running_stack, sample_catalog_path, tmp_path):
    rs = running_stack
    key = (rs.stack.config.home / "api-key").read_text().strip()
    env = {**os.environ, "DYAG_URL": rs.stack.config.gateway_url, "DYAG_API_KEY": key, "COLUMNS": "200"}
    out = tmp_path / "evaluation"
    argv = [
        sys.executable,
        "-m",
        "dyag_cli.main",
        "run",
        str(sample_catalog_path),
        "--name",
        NAME,
        "--no-start",
        "--out",
        str(out),
        "--num-questions",
        str(TINY["num_questions"]),
        "--max-steps",
        str(TINY["max_steps"]),
        "--max-eval-questions",
        str(TINY["max_eval_questions"]),
        "--rag-llm",
        TINY["rag_llm"],
        "--eval-max-tokens",
        str(TINY["eval_max_tokens"]),
        "--no-similarity",
    ]
    cli = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The pipeline dyag run started: kill the gateway while its training job runs, then start it again.
        found = _newest_pipeline(rs, timeout=60)
        training = wait(
            rs,
            found,
            lambda p: steps(p)["train"]["status"] == "running" and bool(steps(p)["train"]["job_id"]),
            timeout=180,
            what="the training running",
        )
        train_job = steps(training)["train"]["job_id"]
        rs.stack.kill("gateway")
        rs.stack.restart("gateway")
        rs.stack.wait_ready(60)
        output, _ = cli.communicate(timeout=600)
    finally:
        if cli.poll() is None:
            cli.kill()
    final = rs.http.get(f"/pipelines/{found}").json()
    by = steps(final)
    assert cli.returncode == 0, output[-4000:]
    assert final["status"] == "succeeded", final["error"]
    # Resumed by the restarted gateway, re-attached to the same training job (never started twice).
    assert final["attempts"] == 2 and by["train"]["job_id"] == train_job
    assert any("resumed" in line["message"] for line in final["logs"])
    trainings = [
        j
        for j in rs.http.get("/jobs", params={"kind": "train.lora", "limit": 200}).json()["jobs"]
        if j["correlation_id"] == final["correlation_id"]
    ]
    assert [j["id"] for j in trainings] == [train_job]
    # Every step ran, each a job of its service (or one RPC), with timings.
    assert all(s["status"] == "succeeded" for s in final["steps"]), {
        n: (s["status"], s["error"]) for n, s in by.items()
    }
    assert {n: by[n]["job_id"].split("-")[0] for n in ("build", "train", "index", "evaluate_base")} == {
        "build": "dataset",
        "train": "gpu",
        "index": "rag",
        "evaluate_base": "evaluator",
    }
    assert all(by[n]["seconds"] is not None for n in by)
    # 120 questions: most facts have one phrasing, so whole question types miss the test split; the build says so.
    assert any(w.startswith("test: no question of type") for w in by["build"]["result"]["warnings"]), by["build"][
        "result"
    ]
    assert "⚠ test: no question of type" in output
    summaries = {t: by[f"evaluate_{t}"]["result"]["summary"] for t in ("base", "fine_tuned", "rag")}
    assert all(s["questions"] == TINY["max_eval_questions"] for s in summaries.values()), summaries
    assert by["report"]["result"]["recommendation"] and final["report"]["links"]["html"].endswith("/report.html")
    # The CLI printed the guide's table and saved the reports; the gateway serves them.
    for words in ("Accuracy", "Precision", "Recall", "F1_score", "Fine-tuned", "RAG", "HTML report"):
        assert words in output, output[-4000:]
    html = (out / "comparison.html").read_text(encoding="utf-8")
    assert "<html" in html.lower() and "fine-tuned" in html.lower()
    assert json.loads((out / "comparison.json").read_text())
    page = rs.http.get(f"/pipelines/{found}/report.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert rs.http.get(f"/pipelines/{found}/report.md").text.strip()
    # The pipeline's progress as server-sent events: the current view, then the end.
    with rs.http.stream("GET", f"/pipelines/{found}/events") as stream:
        events = [line for line in stream.iter_lines() if line.startswith("event: ")]
    assert events == ["event: pipeline", "event: end"]


def _newest_pipeline(rs, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    before = time.time() - 5
    while time.monotonic() < deadline:
        listed = rs.http.get("/pipelines", params={"limit": 5}).json()["pipelines"]
        fresh = [p for p in listed if p["catalog"] == NAME and p["status"] in ("queued", "running")]
        if fresh:
            return fresh[0]["id"]
        time.sleep(0.3)
    raise AssertionError(f"dyag run started no pipeline in {timeout} s (since {before})")


def test_a_two_application_catalog_in_english_runs_with_no_size_given(running_stack):
    """A user's own small export (a bare list, English field names, no contacts): the dataset is sized to it, RAG
    answers from its records, grounded answers too; nothing is asked of the user (no num_questions)."""
    apps = [
        {
            "id": 1,
            "name": "ALPHA",
            "long name": "Alpha booking service",
            "description": "Books meeting rooms for the staff.",
            "status": "En production",
            "scope": "Nationale",
            "domains": [{"domain": "Support", "subdomain": "Rooms"}],
            "sites": [{"url": "https://alpha.example.org/", "kind": "Main site"}],
            "actors": [{"actor": "IT/OPS", "role": "MOE"}],
        },
        {
            "id": 2,
            "name": "BETA",
            "long name": "Beta payroll",
            "description": "Computes the monthly payroll.",
            "status": "En construction",
            "scope": "Régionale",
            "domains": [{"domain": "Finance"}],
        },
    ]
    body = {
        "catalog": "tiny_en",
        "catalog_base64": base64.b64encode(json.dumps(apps).encode()).decode(),
        "catalog_filename": "tiny.json",
        "skip": ["train"],
        "targets": ["rag", "grounded"],
        "max_eval_questions": 6,
        "skip_similarity": True,
        "rag_llm": "ollama:applications-ia",
    }
    pipeline = wait(running_stack, start(running_stack, body)["id"], ended, timeout=300, what="the end")
    assert pipeline["status"] == "succeeded", pipeline.get("error")
    build = steps(pipeline)["build"]["result"]
    assert build["sizing"].startswith("2 applications: ") and "variations" in build["sizing"], build
    assert sum(build["split_counts"].values()) > 0
    for target, approach in (("rag", "rag"), ("grounded", "grounded")):
        evaluated = steps(pipeline)[f"evaluate_{target}"]["result"]
        assert evaluated["approach"] == approach and evaluated["summary"]["accuracy"] > 0.5, evaluated


@pytest.mark.slow
@pytest.mark.parametrize(
    "shape",
    [
        "1 application",
        "10 applications",
        "1,000 applications",
        "CSV",
        "JSONL",
        "English field names",
        "no contacts field",
        "only names and descriptions",
        "two applications sharing a name",
        "a 10,000-word description",
        "50 domains",
        "many empty placeholders",
    ],
)
def test_the_pipeline_runs_on_the_shapes_real_exports_have(running_stack, shape):
    """The user's own export, with no size given: each shape goes through the real pipeline (tiny: no training, RAG and
    grounded answers evaluated on a few questions) and succeeds."""
    from tests.catalog_shapes import SHAPES

    data, filename = SHAPES[shape]()
    name = "shape_" + "".join(c if c.isalnum() else "_" for c in shape.lower())[:40].strip("_")
    body = {
        "catalog": name,
        "catalog_base64": base64.b64encode(data).decode(),
        "catalog_filename": filename,
        "skip": ["train"],
        "targets": ["rag", "grounded"],
        "max_eval_questions": 4,
        "skip_similarity": True,
        "rag_llm": "ollama:applications-ia",
    }
    pipeline = wait(running_stack, start(running_stack, body)["id"], ended, timeout=300, what="the end")
    assert pipeline["status"] == "succeeded", (shape, pipeline.get("error"))
    assert steps(pipeline)["build"]["result"]["sizing"], shape
    assert steps(pipeline)["evaluate_grounded"]["result"]["summary"]["questions"] > 0


def test_a_catalog_of_names_only_stops_before_any_heavy_step_saying_what_to_change(running_stack):
    names = json.dumps([{"id": i, "nom": f"APP{i}"} for i in range(5)]).encode()
    reply = running_stack.http.post(
        "/pipelines",
        json={
            "catalog": "names_only",
            "catalog_base64": base64.b64encode(names).decode(),
            "catalog_filename": "names.json",
        },
    )
    if reply.status_code == 202:  # refused by the build, before training: the pipeline ends failed at that step
        pipeline = wait(running_stack, reply.json()["id"], ended, timeout=120, what="the end")
        assert pipeline["status"] == "failed" and steps(pipeline)["train"]["status"] != "succeeded"
        message = json.dumps(pipeline)
    else:
        assert reply.status_code in (400, 422), reply.text
        message = reply.text
    assert "no_usable_field" in message or "Fill these fields" in message, message[:2000]
