"""The evaluator through the real stack: evaluate the RAG target and OpenAI-compatible / Ollama targets (fake
chat servers on loopback) on a small test set, compare runs, an unreachable target, bad input, the runs kept
across a restart, the guide's `dyag evaluate_rag` command as written, and the promotion gate (a challenger against
the champion, with the changed application's questions always asked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc
import pytest

from dyag.v1 import evaluation_pb2, evaluation_pb2_grpc
from dyag_core.catalog import load_catalog_file
from dyag_core.dataset import GenerationConfig, generate
from dyag_core.dataset.formats import write_dataset, write_manifest
from dyag_core.evaluation import GUIDE_FIELDS, EvalCase, load_run
from tests.integration.conftest import read_events

pytestmark = pytest.mark.integration

COLLECTION = "applications_ia"


@pytest.fixture(scope="module")
def examples(sample_catalog_path):
    """One generated question per type (14, two of them unanswerable), with their gold key facts."""
    picked: dict[str, object] = {}
    for example in generate(load_catalog_file(sample_catalog_path), GenerationConfig(seed=7, variations=1)):
        picked.setdefault(example.qtype, example)
    return list(picked.values())


@pytest.fixture(scope="module")
def eval_jsonl(examples) -> str:
    return "".join(json.dumps(EvalCase.from_example(e).to_record(), ensure_ascii=False) + "\n" for e in examples)


@pytest.fixture(scope="module")
def collection(running_stack, sample_catalog_bytes):
    """The sample catalog as applications_ia (the guide's names), indexed. A collection this module creates is
    deleted after it, so that test_rag finds the session as it would without this module (the session's
    embedding cache keeps the vectors: indexing again costs little)."""
    rs = running_stack
    reply = rs.http.post(
        "/catalogs",
        files={"file": ("applicationsIA_mini_normalized.json", sample_catalog_bytes)},
        data={"name": COLLECTION},
    )
    assert reply.status_code in (200, 201), reply.text
    job = rs.http.post(f"/rag/{COLLECTION}/index", json={}).json()
    done = rs.wait_job(job["id"], timeout=300)
    assert done["status"] == "succeeded", done
    yield COLLECTION
    if done["result"]["added"]:  # this module made it
        assert rs.http.delete(f"/rag/{COLLECTION}").status_code == 200


def evaluate(rs, body: dict, timeout: float = 240) -> dict:
    reply = rs.http.post("/evaluations", json=body)
    assert reply.status_code == 202, reply.text
    job = reply.json()
    assert job["kind"] == "evaluation.run" and job["id"].startswith("evaluator-"), job
    done = rs.wait_job(job["id"], timeout=timeout)
    assert done["status"] == "succeeded", done
    return done


@pytest.fixture(scope="module")
def rag_run(running_stack, collection, eval_jsonl):
    body = {
        "target": f"rag:{collection}",
        "llm": "ollama:applications-ia",
        "rag_mode": "generative",
        "test_set": eval_jsonl,
        "filename": "test.eval.jsonl",
        "concurrency": 3,
        "name": "RAG (ollama)",
    }
    return evaluate(running_stack, body)


def test_a_grounded_target_answers_from_the_records(running_stack, collection, eval_jsonl, examples):
    done = evaluate(
        running_stack, {"target": f"grounded:{collection}", "test_set": eval_jsonl, "filename": "test.eval.jsonl"}
    )
    result = done["result"]
    assert result["approach"] == "grounded" and result["summary"]["failed"] == 0
    assert result["summary"]["questions"] == len(examples) and result["accuracy"] >= 0.8, result["errors"]
    run = running_stack.http.get(f"/evaluations/{done['id']}").json()
    assert run["target"]["rag_mode"] == "grounded" and run["target"]["kind"] == "rag"
    bad = running_stack.http.post(
        "/evaluations", json={"target": f"rag:{collection}", "rag_mode": "magic", "test_set": eval_jsonl}
    )
    assert bad.status_code in (400, 422) and "rag_mode" in bad.text


def test_the_rag_target(running_stack, rag_run, examples):
    rs, result = running_stack, rag_run["result"]
    for field in GUIDE_FIELDS:  # the guide's step 6.2 / 6.3 fields, in the job's result
        assert field in result, field
    assert result["test_set"]["questions"] == len(examples) == result["summary"]["questions"]
    assert 0 < result["accuracy"] <= 1 and result["summary"]["failed"] == 0
    assert result["average_generation_time_ms"] > 0 and result["approach"] == "rag"
    assert result["model"] == "ollama:applications-ia"  # what rag-service says answered
    assert {"question", "expected", "got", "reason"} <= set(result["errors"][0]) if result["errors"] else True
    assert {a["name"] for a in rag_run["artifacts"]} == {"results.json", "report.md", "report.html"}

    run = rs.http.get(f"/evaluations/{rag_run['id']}").json()
    assert run["status"] == "succeeded" and run["approach"] == "rag" and run["target"]["collection"] == COLLECTION
    assert (
        run["summary"]["accuracy"] == pytest.approx(result["accuracy"]) and run["catalog"] == COLLECTION
    )  # the collection's catalog
    assert run["test_set_fingerprint"] and run["finished_at"]
    assert any(
        r["id"] == rag_run["id"]
        for r in rs.http.get("/evaluations", params={"target_kind": "rag"}).json()["evaluations"]
    )

    data = rs.http.get(f"/evaluations/{rag_run['id']}/report.json").json()
    assert data["accuracy"] == pytest.approx(result["accuracy"]) and len(data["results"]) == len(examples)
    assert data["catalog"]["size"] == 45 and data["hallucination_rules"]  # checked against the catalog
    assert (
        data["semantic_similarity_measured"] and data["semantic_similarity"] is not None
    )  # the platform's e5 embedder
    md = rs.http.get(f"/evaluations/{rag_run['id']}/report.md")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown") and "étape 6.2" in md.text
    html = rs.http.get(f"/evaluations/{rag_run['id']}/report.html")
    assert html.status_code == 200 and "chart-accuracy-by-type" in html.text

    events = read_events(rs.nats_url, "dyag.events.evaluation.completed", expect=1)
    event = next(e for e in events if e["data"]["run_id"] == rag_run["id"])
    assert event["headers"]["ce-type"] == "evaluation.completed"
    assert event["data"]["summary"]["questions"] == len(examples) and event["data"]["target"]["kind"] == "rag"
    assert {a["name"] for a in event["data"]["artifacts"]} == {"results.json", "report.md", "report.html"}


@pytest.fixture(scope="module")
def openai_run(running_stack, llm_fakes, eval_jsonl, collection):
    # The key is read on the evaluator's host from the variable named here (the stack's OPENAI_API_KEY).
    body = {
        "target": "openai:gpt-4o-mini",
        "base_url": llm_fakes.openai.base_url,
        "api_key_env": "OPENAI_API_KEY",
        "test_set": eval_jsonl,
        "filename": "test.eval.jsonl",
        "catalog": COLLECTION,
        "concurrency": 4,
    }
    return evaluate(running_stack, body)


def test_an_openai_compatible_target(running_stack, openai_run, llm_fakes, examples):
    result = openai_run["result"]
    assert result["summary"]["questions"] == len(examples) and result["summary"]["failed"] == 0
    assert result["approach"] == "base" and result["model"] == "gpt-4o-mini"
    assert result["summary"]["prompt_tokens"] > 0 and result["summary"]["cost_usd"] > 0  # gpt-4o-mini's price
    asked = [r for r in llm_fakes.openai.requests if r["messages"][-1]["content"] in {e.question for e in examples}]
    assert len(asked) >= len(examples) and asked[-1]["messages"][0]["role"] == "system"
    # The stored run names where the key is, never the key.
    run = running_stack.http.get(f"/evaluations/{openai_run['id']}").json()
    assert run["target"]["api_key_env"] == "OPENAI_API_KEY" and llm_fakes.openai.api_key not in json.dumps(run)


def test_an_ollama_target_and_the_progress(running_stack, llm_fakes, eval_jsonl):
    done = evaluate(
        running_stack,
        {
            "target": "ollama:applications-ia",
            "host": llm_fakes.ollama.host,
            "test_set": eval_jsonl,
            "max_questions": 6,
            "seed": 3,
            "concurrency": 2,
        },
    )
    assert done["result"]["summary"]["questions"] == 6 and done["result"]["model"] == "ollama:applications-ia"
    assert done["progress"]["fraction"] == 1.0
    logs = running_stack.http.get(f"/jobs/{done['id']}/logs").json()["lines"]
    assert any("6 questions" in line["message"] for line in logs)


def test_compare_two_runs(running_stack, rag_run, openai_run):
    rs = running_stack
    reply = rs.http.post("/evaluations/compare", json={"run_ids": [openai_run["id"], rag_run["id"]]})
    assert reply.status_code == 200, reply.text
    c = reply.json()
    assert c["names"] == ["openai:gpt-4o-mini", "RAG (ollama)"] and c["same_test_set"]
    assert c["recommended"] in ("base", "rag") and "Recommandation" in c["recommendation"]
    assert [row["key"] for row in c["comparison"]["table"]][:4] == ["accuracy", "precision", "recall", "f1_score"]
    assert (
        len(c["comparison"]["decision_table"]) == 5 and "Tableau de décision" in c["markdown"]
    )  # the guide's 4, grounded
    assert {a["name"] for a in c["artifacts"]} == {"comparison.json", "comparison.md", "comparison.html"}
    html = rs.http.post("/evaluations/compare", json={"run_ids": [openai_run["id"], rag_run["id"]], "format": "html"})
    assert html.headers["content-type"].startswith("text/html") and "chart-latency" in html.text


def test_an_unreachable_target_marks_its_questions_failed_and_still_reports(running_stack, eval_jsonl, examples):
    done = evaluate(
        running_stack, {"target": "ollama:applications-ia", "host": "http://127.0.0.1:9", "test_set": eval_jsonl}
    )
    result = done["result"]
    assert result["summary"]["failed"] == len(examples) and result["accuracy"] == 0
    assert result["errors_total"] == len(examples)
    assert all("injoignable" in e["reason"] or "non posée" in e["reason"] for e in result["errors"]), result["errors"][
        :2
    ]
    assert "127.0.0.1:9" in result["errors"][0]["reason"]
    assert running_stack.http.get(f"/evaluations/{done['id']}/report.html").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        (
            {"target": "rag:applications_ia", "test_set": '{"prompt": "a", "completion": "b"}\n'},
            422,
            "unknown_format",
            "unknown test set format",
        ),
        ({"target": "rag:applications_ia", "test_set": "\n\n"}, 422, "empty_test_set", "0 questions"),
        ({"target": "rag:applications_ia", "test_set": '[{"question": "a"}]'}, 422, "unknown_format", "JSON array"),
        (
            {
                "target": "rag:applications_ia",
                "test_set": '{"question": "a", "expected_answer": "b"}\n',
                "format": "csv",
            },
            422,
            "unknown_format",
            "csv",
        ),
        (
            {"target": "gemini:pro", "test_set": '{"question": "a", "expected_answer": "b"}\n'},
            422,
            "unknown_target_kind",
            "gemini",
        ),
        (
            {"target": "rag:applications_ia", "dataset_id": "ds-does-not-exist"},
            404,
            "dataset_not_found",
            "ds-does-not-exist",
        ),
        (
            {"target": "rag:no_such_collection", "test_set": '{"question": "a", "expected_answer": "b"}\n'},
            404,
            "collection_not_found",
            "no_such_collection",
        ),
        (
            {"target": "lora:lora-0000000000000000", "test_set": '{"question": "a", "expected_answer": "b"}\n'},
            404,
            "model_not_found",
            "lora-0000000000000000",
        ),
        (
            {
                "target": "rag:applications_ia",
                "test_set": '{"question": "a", "expected_answer": "b"}\n',
                "concurrency": 0,
            },
            422,
            "invalid_concurrency",
            "at least 1",
        ),
        (
            {
                "target": "openai:gpt-4o-mini",
                "test_set": '{"question": "a", "expected_answer": "b"}\n',
                "api_key_env": "DYAG_S3_SECRET",
            },
            422,
            "invalid_api_key_env",
            "DYAG_S3_SECRET",
        ),
        ({"target": "rag:applications_ia"}, 422, "invalid_request", "exactly one test set"),
    ],
    ids=[
        "unknown-format",
        "zero-lines",
        "json-array",
        "unknown-format-name",
        "unknown-target-kind",
        "unknown-dataset",
        "unknown-collection",
        "unknown-lora-model",
        "concurrency-0",
        "key-variable-not-allowed",
        "no-test-set",
    ],
)
def test_bad_input_is_refused_with_a_clear_error(running_stack, collection, body, status, code, words):
    reply = running_stack.http.post("/evaluations", json=body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["code"] == code and words in error["message"], error


def test_evaluating_needs_an_api_key(running_stack):
    assert running_stack.anonymous.post("/evaluations", json={"target": "base", "test_set": "x"}).status_code == 401


def test_runs_survive_a_restart_of_the_evaluator(running_stack, rag_run, openai_run):
    rs = running_stack
    rs.stack.kill("evaluator")
    rs.stack.restart("evaluator")
    rs.stack.wait_ready(60)
    run = rs.http.get(f"/evaluations/{rag_run['id']}").json()
    assert run["status"] == "succeeded" and run["summary"]["questions"] > 0
    reply = rs.http.post("/evaluations/compare", json={"run_ids": [rag_run["id"], openai_run["id"]], "format": "md"})
    assert reply.status_code == 200 and "RAG (ollama)" in reply.text
    assert rs.http.get("/evaluations/evaluator-unknown").json()["error"]["code"] == "run_not_found"


@pytest.mark.slow  # three CLI processes: about 10 s
def test_the_guides_evaluate_rag_command_as_written(running_stack, collection, examples, tmp_path):
    """`dyag evaluate_rag training/test.jsonl --collection applications_ia --output evaluation/results.json --verbose`,
    with the guide's LLM_PROVIDER / LLM_MODEL naming the model; then `dyag compare` and `dyag report --html` on the
    files."""
    (tmp_path / "training").mkdir()
    test_file = tmp_path / "training" / "test.jsonl"
    write_dataset(examples, test_file, "openai")
    write_manifest(examples, test_file)  # training/test.jsonl.manifest.jsonl, as `dyag create_rag` writes it
    key = (running_stack.stack.config.home / "api-key").read_text().strip()
    env = {
        **os.environ,
        "DYAG_URL": running_stack.stack.config.gateway_url,
        "DYAG_API_KEY": key,
        "LLM_PROVIDER": "ollama",
        "LLM_MODEL": "applications-ia",
        "COLUMNS": "200",
    }
    dyag = [sys.executable, "-m", "dyag_cli.main"]
    out = subprocess.run(
        [
            *dyag,
            "evaluate_rag",
            "training/test.jsonl",
            "--collection",
            "applications_ia",
            "--output",
            "evaluation/results.json",
            "--verbose",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    results = json.loads((tmp_path / "evaluation" / "results.json").read_text())
    for field in GUIDE_FIELDS:
        assert field in results
    assert results["questions"] == len(examples) and results["target"]["model"] == "ollama:applications-ia"
    assert (
        results["test_set"]["name"] == "test.jsonl" and results["fact_accuracy"] is not None
    )  # key facts from the manifest
    assert "ollama:applications-ia" in out.stdout and "Accuracy" in out.stdout
    verdicts = [line for line in out.stdout.splitlines() if line.startswith(("✅ [", "❌ [", "⚠️  ["))]
    assert len(verdicts) == len(examples)  # --verbose: one line per question
    # The guide's step 6.2 script reads these keys.
    assert all(
        isinstance(results[m], float)
        for m in ("accuracy", "precision", "recall", "f1_score", "average_generation_time_ms")
    )

    cmp = subprocess.run(
        [
            *dyag,
            "compare",
            "evaluation/results.json",
            "evaluation/results.json",
            "--html",
            "evaluation/comparison.html",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    assert (
        "Accuracy" in cmp.stdout and "Latence" in cmp.stdout and (tmp_path / "evaluation" / "comparison.html").is_file()
    )
    rep = subprocess.run(
        [*dyag, "report", "evaluation/results.json", "--html"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert load_run(tmp_path / "evaluation" / "results.json").overall.n == len(examples)
    assert "<svg" in (tmp_path / "evaluation" / "results.html").read_text()


# ------------------------------------------------------------------ the promotion gate


@pytest.fixture(scope="module")
def evaluator(running_stack):
    """The evaluator's gRPC service itself (the Gate and focus_entity_ids are not behind a gateway route)."""
    with grpc.insecure_channel(f"127.0.0.1:{running_stack.stack.config.grpc_ports['evaluator']}") as channel:
        yield evaluation_pb2_grpc.EvaluatorServiceStub(channel)


@pytest.fixture(scope="module")
def gate_runs(running_stack, evaluator, collection, llm_fakes, eval_jsonl, examples):
    """Two answerers on the same sample, with the changed application in focus: a good one (the catalog's records,
    grounded) and a worse one (a model without the catalog: it answers "je ne sais pas" to everything)."""
    changed = next(e for e in examples if e.qtype == "actors").provenance.entity_ids[0]
    targets = {
        "good": evaluation_pb2.Target(kind="rag", collection=collection, rag_mode="grounded"),
        "bad": evaluation_pb2.Target(kind="ollama", model="applications-ia", host=llm_fakes.ollama.host),
    }
    jobs = {
        name: evaluator.Evaluate(
            evaluation_pb2.EvaluateRequest(
                test_set=evaluation_pb2.TestSet(content=eval_jsonl.encode(), filename="test.eval.jsonl"),
                target=target,
                name=f"gate {name}",
                max_questions=6,
                seed=3,
                focus_entity_ids=[changed],
                skip_similarity=True,
            ),
            timeout=60,
        )
        for name, target in targets.items()
    }
    runs = {}
    for name, job in jobs.items():
        done = running_stack.wait_job(job.id, timeout=240)
        assert done["status"] == "succeeded", done
        runs[name] = job.id
    return changed, runs


def test_focus_entities_are_always_asked(running_stack, gate_runs, examples):
    changed, runs = gate_runs
    about = {EvalCase.from_example(e).id for e in examples if changed in e.provenance.entity_ids}
    assert len(about) == 2  # the actors and the sites of the same application
    asked = {}
    for name, run_id in runs.items():
        data = running_stack.http.get(f"/evaluations/{run_id}/report.json").json()
        asked[name] = {r["id"] for r in data["results"]}
        assert about <= asked[name] and len(asked[name]) == 6 + len(about), (name, asked[name])
    assert asked["good"] == asked["bad"]  # the same sample for both: the gate can pair them


def test_the_gate_promotes_a_better_challenger_and_rejects_a_worse_one(evaluator, gate_runs):
    changed, runs = gate_runs
    thresholds = evaluation_pb2.GateThresholds(min_absolute=0.05, min_relative=0.1, min_accuracy=0.5)

    better = evaluator.Gate(
        evaluation_pb2.GateRequest(
            champion_run_id=runs["bad"],
            challenger_run_id=runs["good"],
            changed_entity_ids=[changed],
            thresholds=thresholds,
        ),
        timeout=60,
    )
    assert better.promote and better.decision == "promote", better.reasons
    assert (better.changed.questions, better.changed.entities, better.overall.questions) == (2, 1, 8)
    assert better.changed.delta > 0 and better.changed.challenger_accuracy > better.changed.champion_accuracy
    assert better.reasons[0].startswith("Sur les 2 questions de l'application modifiée, le challenger répond juste à")
    assert "il est meilleur sur ce qui a changé" in better.reasons[0] and "IC 95 %" in better.reasons[0]
    assert "il ne régresse pas" in better.reasons[1] and better.summary.startswith("Challenger promu.")
    assert better.thresholds.min_absolute == 0.05 and list(better.changed_entity_ids) == [changed]

    worse = evaluator.Gate(
        evaluation_pb2.GateRequest(
            champion_run_id=runs["good"],
            challenger_run_id=runs["bad"],
            changed_entity_ids=[changed],
            thresholds=thresholds,
        ),
        timeout=60,
    )
    assert not worse.promote and worse.decision == "reject"
    assert worse.reasons[0].startswith("Sur les 2 questions de l'application modifiée")
    assert "il n'est pas meilleur sur ce qui a changé" in worse.reasons[0]
    assert "sous le minimum demandé de 50.0 %" in worse.reasons[-1]
    assert worse.summary.startswith("Challenger rejeté, il reste candidat.")

    with pytest.raises(grpc.RpcError) as unknown:
        evaluator.Gate(
            evaluation_pb2.GateRequest(champion_run_id="evaluator-unknown", challenger_run_id=runs["good"]),
            timeout=60,
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND and "evaluator-unknown" in unknown.value.details()
    with pytest.raises(grpc.RpcError) as bad:
        evaluator.Gate(
            evaluation_pb2.GateRequest(
                champion_run_id=runs["bad"],
                challenger_run_id=runs["good"],
                thresholds=evaluation_pb2.GateThresholds(min_absolute=5),
            ),
            timeout=60,
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "min_absolute" in bad.value.details()
