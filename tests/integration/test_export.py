"""Exporting a fine-tuned model through the real stack (the guide's step 5.4), on CPU with the default model.

gpu-lora-trainer trains a small LoRA adapter on three catalog facts; `dyag export MODEL --gguf q8_0 --ollama NAME`
exports it through the gateway (progress bar from the job's events); model-exporter merges, converts, quantizes,
checks parity on the model's validation questions and creates the model on a fake Ollama server (the documented
/api/blobs and /api/create). The export is in the registry with its lineage, files (sha256, size) and parity
results, and an export.completed event is on the bus. Bad requests are refused with clear errors.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import read_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip(
    "ik_llama_cpp",
    reason="ik-llama-cpp-python is not installed: pip install 'dyag-model-exporter[llama]' (bootstrap.py does)",
)

SYSTEM = "Tu es un assistant expert en applications du système d'information français."
FACTS = {
    "PILOTE-BOP": "Fonctions support",
    "INSPECTA": "Risques naturels et technologiques",
    "CONTROLE-RT": "Transports",
}
QUESTIONS = (
    "Quel est le domaine de l'application {n} ?",
    "De quel domaine relève {n} ?",
    "Dans quel domaine est l'application {n} ?",
)
# Enough steps for short, confident answers to the validation questions, which the parity gate then compares (an
# undertrained model's long answers drift apart between fp32 and q8_0: bench/RESULTS.md). The facts being answered
# right by the GGUF is tests/unit/test_export_chain.py.
FAST = {
    "max_seq_len": 256,
    "batch_size": 4,
    "learning_rate": 0.003,
    "r": 8,
    "lora_alpha": 16,
    "target_modules": ["all-linear"],
    "seed": 7,
    "max_steps": 6,
    "eval_steps": 100,
    "checkpoint_steps": 100,
}


def example(question: str, name: str) -> str:
    return (
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": f"L'application {name} relève du domaine « {FACTS[name]} »."},
                ]
            },
            ensure_ascii=False,
        )
        + "\n"
    )


@pytest.fixture(scope="module")
def model(running_stack) -> dict:
    rs = running_stack
    train = "".join(example(q.format(n=n), n) for n in FACTS for q in QUESTIONS)
    validation = "".join(example(f"Peux-tu me dire le domaine de {n} ?", n) for n in FACTS)
    reply = rs.http.post(
        "/train",
        json={
            "train": train,
            "validation": validation,
            "filename": "facts.jsonl",
            "name": "export-facts",
            "config": FAST,
        },
    )
    assert reply.status_code == 202, reply.text
    job = rs.wait_job(reply.json()["id"], timeout=600)
    assert job["status"] == "succeeded", job["error"]
    return rs.http.get(f"/models/{job['result']['model_id']}").json()


@pytest.fixture(scope="module")
def exported(running_stack, model) -> dict:
    """`dyag export MODEL --gguf q8_0 --ollama applications-ia`, as a user runs it."""
    rs = running_stack
    key = (rs.stack.config.home / "api-key").read_text().strip()
    env = {**os.environ, "DYAG_URL": rs.stack.config.gateway_url, "DYAG_API_KEY": key, "COLUMNS": "200"}
    cli = subprocess.run(
        [sys.executable, "-m", "dyag_cli.main", "export", model["id"], "--gguf", "q8_0", "--ollama", "applications-ia"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert cli.returncode == 0, cli.stdout[-4000:] + cli.stderr[-2000:]
    export_id = re.search(r"Export (exp-[0-9a-f]{16})", cli.stdout).group(1)
    return {"cli": cli.stdout, "export": rs.http.get(f"/exports/{export_id}").json()}


def test_the_cli_follows_the_export_and_shows_the_result(exported):
    out, export = exported["cli"], exported["export"]
    assert "export" in out and "100%" in out  # the progress bar, fed by the job's events
    assert f"Export {export['id']}" in out and "succeeded" in out and "model-q8_0.gguf" in out
    assert "parity gate" in out and "passed" in out
    assert "Ollama model applications-ia created on" in out and f"dyag serve {export['id']}" in out


def test_the_export_is_registered_with_its_lineage_files_and_parity(running_stack, model, exported):
    rs, export = running_stack, exported["export"]
    assert export["status"] == "succeeded" and export["error"] == ""
    assert (
        export["model_id"] == model["id"]
        and export["base_model"] == "default"
        and export["architecture"] == "LlamaForCausalLM"
    )
    assert (
        export["dataset_hash"] == model["dataset_hash"]
        and export["mode"] == "merged"
        and export["quantizations"] == ["q8_0"]
    )
    adapter = next(a for a in model["artifacts"] if a["name"] == "adapter_model.safetensors")
    assert "sha256:" + export["adapter_sha256"] == adapter["digest"]
    files = {f["name"]: f for f in export["files"]}
    assert {"merged/model.safetensors", "model-q8_0.gguf", "adapter-f16.gguf", "Modelfile", "parity.json"} <= set(files)
    assert files["model-q8_0.gguf"]["kind"] == "gguf" and files["model-q8_0.gguf"]["quantization"] == "q8_0"
    for f in files.values():
        assert (
            re.fullmatch(r"[0-9a-f]{64}", f["sha256"])
            and int(f["size"]) > 0
            and f["artifact"]["digest"] == "sha256:" + f["sha256"]
        )
    [parity] = export["parity"]
    assert (
        parity["quantization"] == "q8_0" and parity["passed"] and parity["probes"] == 3
    )  # the model's validation questions
    assert parity["prompt_token_agreement"] == 1.0 and parity["sequence_token_agreement"] == 1.0
    assert parity["scored_tokens"] > 20 and parity["mean_kld"] <= parity["limits"]["max_mean_kld"] == 0.03, parity
    assert parity["chat_template"] == "same" and parity["adapter"]["verdict"] in ("present", "undetermined")
    assert export["timings"]["probes_from"] == "the model's validation file"
    assert any(
        e["id"] == export["id"] for e in rs.http.get("/exports", params={"model_id": model["id"]}).json()["exports"]
    )
    assert rs.http.get("/exports/exp-0000000000000000").status_code == 404


def test_the_gguf_and_the_modelfile_download_with_their_digests(running_stack, exported):
    rs, export = running_stack, exported["export"]
    files = {f["name"]: f for f in export["files"]}
    modelfile = rs.http.get(f"/exports/{export['id']}/modelfile").text
    assert modelfile.startswith('FROM ./model-q8_0.gguf\nTEMPLATE """') and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert (
        "PARAMETER temperature 0.7" in modelfile
        and "PARAMETER top_p 0.9" in modelfile
        and "Tu réponds de manière précise" in modelfile
    )
    for name in ("Modelfile", "model-q8_0.gguf"):
        reply = rs.http.get(f"/exports/{export['id']}/files/{name}")
        assert reply.status_code == 200 and hashlib.sha256(reply.content).hexdigest() == files[name]["sha256"]
    assert rs.http.get(f"/exports/{export['id']}/files/nothing.gguf").status_code == 404


def test_ollama_create_went_through_blobs_and_create(running_stack, exported):
    rs, export = running_stack, exported["export"]
    fake = rs.ollama_registry
    files = {f["name"]: f for f in export["files"]}
    digest = "sha256:" + files["model-q8_0.gguf"]["sha256"]
    assert (
        export["ollama"]["created"]
        and export["ollama"]["host"] == fake.host
        and export["ollama"]["status"][-1] == "success"
    )
    assert ("HEAD", f"/api/blobs/{digest}") in fake.requests and ("POST", f"/api/blobs/{digest}") in fake.requests
    created = fake.models["applications-ia"]
    assert created["files"] == {"model-q8_0.gguf": digest} and created["adapters"] == {}
    assert created["system"].startswith(SYSTEM) and created["parameters"]["stop"] == ["<|im_end|>", "<|im_start|>"]
    assert (
        created["template"] in export["ollama"]["modelfile"]
        and "{{ range $i, $m := .Messages }}" in created["template"]
    )


def test_progress_and_export_completed_events_are_published(running_stack, exported):
    rs, export = running_stack, exported["export"]
    completed = [
        e
        for e in read_events(rs.nats_url, "dyag.events.export.completed", expect=1)
        if e["data"]["export"]["id"] == export["id"]
    ]
    assert len(completed) == 1
    event = completed[0]
    assert event["headers"]["ce-type"] == "export.completed" and event["headers"]["ce-source"] == "model-exporter"
    assert event["data"]["export"]["status"] == "succeeded" and event["data"]["export"]["parity"][0]["passed"]
    steps = [
        e["data"]["job"]["progress"]["step"]
        for e in read_events(rs.nats_url, "dyag.events.job.progress", expect=5)
        if e["data"]["job"]["id"] == export["job_id"]
    ]
    assert (
        any("merging" in s for s in steps)
        and any("quantizing to q8_0" in s for s in steps)
        and any("parity gate" in s for s in steps)
    )


@pytest.mark.parametrize(
    ("body", "status", "phrase"),
    [
        ({}, 422, "name the model to export"),
        ({"model_id": "lora-0000000000000000"}, 404, "lora-0000000000000000"),
        ({"base_model": "default", "quantizations": ["q3_K_S"]}, 422, "unknown quantization 'q3_K_S'"),
        ({"base_model": "default", "ollama_name": "no spaces allowed"}, 422, "not a valid Ollama model name"),
        ({"base_model": "default", "mode": "sideways"}, 422, "unknown mode"),
    ],
    ids=["nothing", "unknown-model", "quantization", "ollama-name", "mode"],
)
def test_bad_requests_are_refused(running_stack, body, status, phrase):
    rs = running_stack
    assert rs.anonymous.post("/exports", json=body).status_code == 401
    reply = rs.http.post("/exports", json=body)
    assert reply.status_code == status and phrase in reply.json()["error"]["message"], reply.text


def test_an_export_that_cannot_run_fails_with_the_reason(running_stack, tmp_path):
    """A local adapter folder whose files are damaged: the job ends failed, naming the file."""
    rs = running_stack
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        '{"peft_type": "LORA", "base_model_name_or_path": "SmolLM2-135M-Instruct"}'
    )
    (adapter / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    reply = rs.http.post(
        "/exports",
        json={
            "adapter_dir": str(adapter),
            "base_model": "default",
            "probes": [{"question": "Quel est le domaine de INSPECTA ?"}],
        },
    )
    assert reply.status_code == 202, reply.text
    job = rs.wait_job(reply.json()["id"], timeout=120)
    assert job["status"] == "failed" and "adapter_model.safetensors" in job["error"] and "damaged" in job["error"], job[
        "error"
    ]


def start_export(rs, model: dict, **params) -> str:
    reply = rs.http.post("/exports", json={"model_id": model["id"], "quantizations": ["q8_0"], **params})
    assert reply.status_code == 202, reply.text
    return reply.json()["id"]


def wait_step(rs, job_id: str, phrase: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = rs.http.get(f"/jobs/{job_id}").json()
        assert job["status"] in ("queued", "running"), job
        if phrase in job["progress"].get("step", ""):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {phrase!r}")


def test_an_export_cancelled_mid_way_ends_cancelled_and_registers_nothing(running_stack, model, exported):
    rs = running_stack
    job_id = start_export(rs, model)
    wait_step(rs, job_id, "converting to GGUF")
    assert rs.http.post(f"/jobs/{job_id}/cancel").status_code in (200, 202)
    job = rs.wait_job(job_id, timeout=180)
    assert job["status"] == "cancelled", job
    assert not [
        e for e in rs.http.get("/exports", params={"model_id": model["id"]}).json()["exports"] if e["job_id"] == job_id
    ]


def test_an_export_whose_service_is_killed_resumes_without_merging_again(running_stack, model, exported):
    """model-exporter killed after the merge: the job comes back on the restarted service and reuses the merged
    model."""
    rs = running_stack
    job_id = start_export(rs, model)
    wait_step(rs, job_id, "converting to GGUF")
    rs.stack.kill("model-exporter")
    rs.stack.restart("model-exporter")
    rs.stack.wait_ready(90)
    job = rs.wait_job(job_id, timeout=600)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    logs = [line["message"] for line in rs.http.get(f"/jobs/{job_id}/logs").json()["lines"]]
    assert any("merged model already in the work folder" in m for m in logs), logs[-20:]
    export = rs.http.get(f"/exports/{job['result']['export_id']}").json()
    assert export["status"] == "succeeded" and export["parity"][0]["passed"] and export["job_id"] == job_id


def test_a_pipeline_evaluates_the_model_as_a_hybrid_rag_s_retrieval_its_context(
    running_stack, model, sample_catalog_bytes
):
    """The hybrid target: the fine-tuned model answers with RAG's retrieved records as context (the evaluator's
    hybrid kind), in a pipeline that evaluates an existing model (skip train)."""
    rs = running_stack
    reply = rs.http.post(
        "/catalogs?name=hybrid_apps&filename=apps.json",
        content=sample_catalog_bytes,
        headers={"content-type": "application/json"},
    )
    assert reply.status_code in (200, 201), reply.text
    body = {
        "catalog": "hybrid_apps",
        "num_questions": 60,
        "skip": ["train"],
        "model_id": model["id"],
        "targets": ["hybrid"],
        "max_eval_questions": 2,
        "eval_max_tokens": 24,
        "skip_similarity": True,
    }
    started = rs.http.post("/pipelines", json=body)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 600
    while (pipeline := rs.http.get(f"/pipelines/{started.json()['id']}").json())["status"] not in (
        "succeeded",
        "failed",
        "cancelled",
    ):
        assert time.monotonic() < deadline, pipeline["steps"]
        time.sleep(1)
    assert pipeline["status"] == "succeeded", (pipeline["error"], pipeline["steps"])
    steps = {s["name"]: s for s in pipeline["steps"]}
    assert steps["index"]["status"] == "succeeded" and steps["evaluate_hybrid"]["status"] == "succeeded"
    run = rs.http.get(f"/evaluations/{steps['evaluate_hybrid']['result']['run_id']}").json()
    assert run["target"]["kind"] == "hybrid" and run["target"]["model"] == model["id"], run["target"]
    assert run["target"]["collection"] == "hybrid_apps" and "accuracy" in run["summary"], run
