"""The evaluator service's parts without the stack: targets and their checks, test sets and sampling, the run
store, the judge's grade, the answering loop (concurrency, an unreachable target, time-outs, resuming), and the
offline `dyag compare` / `dyag report` commands."""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections import Counter
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from dyag_core.errors import DyagError
from dyag_core.evaluation import EvalCase, EvaluationError, Response, Target, evaluate
from dyag_evaluator.job import EvaluationJob
from dyag_evaluator.judge import parse_score
from dyag_evaluator.records import run_record
from dyag_evaluator.runs import RunNotFound, RunStore
from dyag_evaluator.settings import EvaluatorSettings
from dyag_evaluator.targets import Answerer, ChatAnswerer, TargetSpec, Unreachable, read_key
from dyag_evaluator.testsets import TestSetRef as SetRef
from dyag_evaluator.testsets import dataset_file, parse, sample
from dyag_gateway.routers.evaluations import parse_target
from dyag_runtime.jobs import JobContext

SETTINGS = EvaluatorSettings(eval_unreachable_after=3, eval_request_timeout_s=0.5)


# ------------------------------------------------------------------ targets


@pytest.mark.parametrize(
    ("spec", "approach", "label", "model"),
    [
        (TargetSpec("base"), "base", "base:default", "local:default"),
        (
            TargetSpec("lora", "lora-0123456789abcdef"),
            "fine_tuned",
            "lora:lora-0123456789abcdef",
            "local:lora-0123456789abcdef",
        ),
        (TargetSpec("openai", "gpt-4o-mini"), "base", "openai:gpt-4o-mini", "gpt-4o-mini"),
        (
            TargetSpec("openai", "ft:gpt-4o-mini-2024-07-18:org::abc"),
            "fine_tuned",
            "openai:ft:gpt-4o-mini-2024-07-18:org::abc",
            "ft:gpt-4o-mini-2024-07-18:org::abc",
        ),
        (TargetSpec("ollama", "applications-ia"), "base", "ollama:applications-ia", "ollama:applications-ia"),
        (
            TargetSpec("rag", collection="applications_ia", llm="openai:gpt-4o-mini"),
            "rag",
            "rag:applications_ia (openai:gpt-4o-mini)",
            "gpt-4o-mini",
        ),
        (
            TargetSpec("hybrid", "lora-1", collection="applications_ia"),
            "hybrid",
            "hybrid:lora-1+applications_ia",
            "local:lora-1",
        ),
        (
            TargetSpec("ollama", "applications-ia", approach="fine_tuned"),
            "fine_tuned",
            "ollama:applications-ia",
            "ollama:applications-ia",
        ),
        (  # a pipeline's export: the GGUF from the artifact store, named by the export's file
            TargetSpec("gguf", "exp-1/model-q8_0.gguf", approach="fine_tuned", artifact_digest="sha256:" + "a" * 64),
            "fine_tuned",
            "gguf:exp-1/model-q8_0.gguf",
            "gguf:exp-1/model-q8_0.gguf",
        ),
    ],
)
def test_a_target_gets_its_defaults(spec, approach, label, model):
    checked = spec.validate(SETTINGS)
    assert checked.approach == approach and checked.label() == label and checked.model_spec() == model
    assert TargetSpec.from_dict(checked.to_dict()) == checked
    assert TargetSpec.from_proto(checked.to_proto()) == checked


@pytest.mark.parametrize(
    ("spec", "code", "words"),
    [
        (TargetSpec(""), "missing_target", "name a target"),
        (TargetSpec("gemini", "pro"), "unknown_target_kind", "'gemini'"),
        (TargetSpec("lora"), "missing_model", "dyag models"),
        (TargetSpec("openai"), "missing_model", "openai:gpt-4o-mini"),
        (TargetSpec("rag"), "missing_collection", "rag:applications_ia"),
        (TargetSpec("rag", collection="Bad Name!"), "invalid_collection", "Bad Name!"),
        (TargetSpec("rag", collection="col", n_chunks=99), "invalid_n_chunks", "99"),
        (TargetSpec("rag", collection="col", llm="gpt4"), "invalid_llm", "gpt4"),
        (TargetSpec("ollama", "m", llm="ollama:x"), "invalid_target", "only applies to a rag target"),
        (
            TargetSpec("openai", "m", api_key_env="AWS_SECRET_ACCESS_KEY"),
            "invalid_api_key_env",
            "AWS_SECRET_ACCESS_KEY",
        ),
        (TargetSpec("openai", "m", base_url="ftp://x"), "invalid_base_url", "http"),
        (TargetSpec("base", approach="magic"), "invalid_approach", "magic"),
        (
            TargetSpec("openai", "m", base_url="https://attacker.example/v1"),
            "base_url_not_allowed",
            "DYAG_EVAL_OPENAI_BASE_URLS",
        ),
        (TargetSpec("lora", "lora-1", artifact_digest="sha256:" + "a" * 64), "invalid_target", "only applies to gguf"),
        (TargetSpec("gguf", artifact_digest="/srv/exports/model.gguf"), "invalid_artifact", "sha256:<64 hex>"),
    ],
)
def test_a_bad_target_is_refused_with_its_reason(spec, code, words):
    with pytest.raises(DyagError) as caught:
        spec.validate(SETTINGS)
    assert caught.value.code == code, caught.value.code
    assert words in caught.value.message


def test_a_base_url_the_operator_listed_is_allowed():
    settings = EvaluatorSettings(eval_openai_base_urls=["http://vllm.internal:8000/v1/"])
    assert (
        TargetSpec("openai", "m", base_url="http://vllm.internal:8000/v1").validate(settings).base_url
        == "http://vllm.internal:8000/v1"
    )


def test_the_key_is_read_from_an_allowed_variable_or_secret_file_only(monkeypatch, tmp_path):
    settings = EvaluatorSettings(eval_secrets_dir=str(tmp_path))
    monkeypatch.setenv("DYAG_EVAL_KEY_AZURE", "sk-from-env")
    assert read_key("DYAG_EVAL_KEY_AZURE", settings) == "sk-from-env"
    (tmp_path / "DYAG_EVAL_KEY_VAULT").write_text("sk-from-file\n")
    assert read_key("DYAG_EVAL_KEY_VAULT", settings) == "sk-from-file"
    monkeypatch.setenv("NATS_URL", "nats://secret")
    with pytest.raises(DyagError, match="not one the evaluator may read"):
        read_key("NATS_URL", settings)


@pytest.mark.parametrize(
    ("spec", "target"),
    [
        ("base", {"kind": "base", "model": ""}),
        ("lora:lora-0123", {"kind": "lora", "model": "lora-0123"}),
        ("openai:ft:gpt-4o-mini:org::x1", {"kind": "openai", "model": "ft:gpt-4o-mini:org::x1"}),
        ("rag:applications_ia", {"kind": "rag", "collection": "applications_ia"}),
        ("hybrid:lora-0123+applications_ia", {"kind": "hybrid", "model": "lora-0123", "collection": "applications_ia"}),
    ],
)
def test_the_gateway_reads_the_clis_target_spelling(spec, target):
    assert parse_target(spec) == target


def test_the_judges_grade():
    assert parse_score("8") == 0.8 and parse_score("Note : 10/10") == 1.0 and parse_score("7,5") == 0.75
    assert parse_score("0") == 0.0 and parse_score("pas de note") is None


# ------------------------------------------------------------------ test sets


def _cases(per_type: dict[str, int]) -> list[EvalCase]:
    return [
        EvalCase(f"{t}-{i}", f"question {t} {i}", "réponse", qtype=t) for t, n in per_type.items() for i in range(n)
    ]


def test_a_sample_keeps_each_types_share_and_the_order():
    cases = _cases({"definition": 50, "status": 30, "listing": 20})
    picked = sample(cases, 10, seed=1)
    assert Counter(c.qtype for c in picked) == {"definition": 5, "status": 3, "listing": 2}
    assert [cases.index(c) for c in picked] == sorted(cases.index(c) for c in picked)
    assert sample(cases, 10, seed=1) == picked and sample(cases, 10, seed=2) != picked
    assert sample(cases, 0, seed=1) == tuple(cases) and sample(cases, 1000, seed=1) == tuple(cases)
    assert len(sample(_cases({"a": 1, "b": 1, "c": 1}), 2, seed=0)) == 2


def test_every_question_about_a_focus_entity_is_asked_on_top_of_the_sample():
    cases = [
        EvalCase(c.id, c.question, c.expected_answer, qtype=c.qtype, entity_ids=(f"app-{i % 25}",))
        for i, c in enumerate(_cases({"definition": 50, "status": 30, "listing": 20}))
    ]
    about = [c for c in cases if {"app-3", "app-7"} & set(c.entity_ids)]  # 8 questions
    picked = sample(cases, 10, seed=1, focus=["app-3", "app-7"])
    assert set(about) <= set(picked) and len(picked) == 10 + len(about) == 18
    others = [c for c in picked if c not in about]  # the sample, drawn from the other questions, by type
    assert Counter(c.qtype for c in others) == {"definition": 5, "status": 3, "listing": 2}
    assert [cases.index(c) for c in picked] == sorted(cases.index(c) for c in picked)
    assert sample(cases, 10, seed=1, focus=["app-3", "app-7"]) == picked  # a champion and a challenger, alike
    assert sample(cases, 10, seed=1, focus=()) == sample(cases, 10, seed=1)  # no focus: the sample as before
    assert sample(cases, 10, seed=1, focus=["unknown"]) == sample(cases, 10, seed=1)
    assert sample(cases, 0, seed=1, focus=["app-3"]) == tuple(cases)  # every question anyway
    assert len(sample(cases, 95, seed=1, focus=["app-3"])) == 99  # 95 of the 96 others, and the 4
    assert sample(cases, 96, seed=1, focus=["app-3"]) == tuple(cases)  # all the others, and the 4


def test_a_test_files_bytes_are_read_with_the_domains_errors():
    record = {
        "question": "Quel est le statut de X ?",
        "expected_answer": "En production.",
        "key_facts": ["en production"],
        "type": "status",
    }
    evalset = parse((json.dumps(record) + "\n").encode(), "t.jsonl")
    assert evalset.source_format == "eval" and evalset.cases[0].key_facts == ("en production",)
    chat = {"messages": [{"role": "user", "content": "Q ?"}, {"role": "assistant", "content": "R."}]}
    manifest = {
        "id": "e1",
        "type": "status",
        "entity_ids": ["1"],
        "key_facts": ["R"],
        "negative": False,
        "line": 1,
        "fields": [],
        "template": "",
    }
    with_facts = parse(
        (json.dumps(chat) + "\n").encode(), "test.jsonl", manifest=(json.dumps(manifest) + "\n").encode()
    )
    assert with_facts.has_provenance and with_facts.cases[0].id == "e1"
    for data, code in ((b"", "empty_test_set"), (b'{"foo": 1}\n', "unknown_format"), (b"not json\n", "bad_test_set")):
        with pytest.raises(EvaluationError) as caught:
            parse(data, "t.jsonl")
        assert caught.value.code == code


def test_a_datasets_split_prefers_its_eval_file():
    ref = lambda name: SimpleNamespace(name=name, digest="sha256:" + "0" * 64)
    files = [
        SimpleNamespace(split="test", format="openai", artifact=ref("test.jsonl")),
        SimpleNamespace(split="test", format="manifest", artifact=ref("test.jsonl.manifest.jsonl")),
        SimpleNamespace(split="test", format="eval", artifact=ref("test.eval.jsonl")),
        SimpleNamespace(split="train", format="openai", artifact=ref("train.jsonl")),
        SimpleNamespace(split="train", format="manifest", artifact=ref("train.jsonl.manifest.jsonl")),
    ]
    dataset = SimpleNamespace(id="ds-1", files=files)
    assert dataset_file(dataset, "")[0].name == "test.eval.jsonl"
    artifact, fmt, manifest = dataset_file(dataset, "train")
    assert (artifact.name, fmt, manifest.name) == ("train.jsonl", "openai", "train.jsonl.manifest.jsonl")
    with pytest.raises(DyagError, match="no 'validation' split"):
        dataset_file(dataset, "validation")
    with pytest.raises(DyagError, match="unknown split"):
        dataset_file(dataset, "dev")
    assert SetRef.from_dict(SetRef("sha256:x", "t.jsonl", "eval", dataset_id="ds").to_dict()).dataset_id == "ds"


# ------------------------------------------------------------------ the run store


def test_a_gguf_target_s_file_comes_from_the_artifact_store_once(tmp_path):
    """The evaluator shares no folder with model-exporter: an export's GGUF is fetched by digest into the evaluator's
    data folder, once per digest."""
    from dyag_runtime.artifacts import ArtifactNotFound, LocalArtifactStore

    store = LocalArtifactStore(tmp_path / "artifacts")
    (tmp_path / "model-q8_0.gguf").write_bytes(b"GGUF" + bytes(64))
    stored = store.put_file(tmp_path / "model-q8_0.gguf")
    settings = EvaluatorSettings(data_dir=tmp_path / "evaluator")
    job = EvaluationJob(SimpleNamespace(settings=settings, artifacts=store), None, None)  # type: ignore[arg-type]
    spec = TargetSpec("gguf", "exp-1/model-q8_0.gguf", artifact_digest=stored.digest).validate(settings)
    path = job.gguf_file(spec)
    assert path.read_bytes() == b"GGUF" + bytes(64) and path.parent == tmp_path / "evaluator" / "gguf"
    path.write_bytes(b"kept")  # the next run of the same export reads the copy it has
    assert job.gguf_file(spec).read_bytes() == b"kept"
    with pytest.raises(ArtifactNotFound):
        job.gguf_file(TargetSpec("gguf", "x", artifact_digest="sha256:" + "b" * 64))
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]


def test_runs_are_kept_and_listed(tmp_path):
    store = RunStore(tmp_path / "evaluator.sqlite")
    params = {
        "name": "n",
        "target": TargetSpec("rag", collection="col").validate(SETTINGS).to_dict(),
        "test_set": {"filename": "t.jsonl", "dataset_id": "ds-1"},
        "catalog": None,
    }
    store.insert(run_record("evaluator-1", params, "corr"))
    store.insert(run_record("evaluator-1", params | {"name": "again"}, "corr"))  # kept as it was
    store.update("evaluator-1", status="succeeded", summary={"accuracy": 0.5})
    again = RunStore(tmp_path / "evaluator.sqlite")  # a restarted service
    run = again.get("evaluator-1")
    assert (
        run["name"] == "n" and run["status"] == "succeeded" and run["approach"] == "rag" and run["dataset_id"] == "ds-1"
    )
    assert [r["id"] for r in again.list(target_kind="rag", status="succeeded")] == ["evaluator-1"]
    assert again.list(target_kind="lora") == []
    with pytest.raises(RunNotFound):
        again.get("evaluator-2")


# ------------------------------------------------------------------ the answering loop


class FakeAnswerer(Answerer):
    def __init__(self, behaviour, batch_size: int = 1, delay: float = 0.0):
        self.behaviour, self.batch_size, self.delay = behaviour, batch_size, delay
        self.in_flight = self.most_in_flight = self.calls = 0

    async def answer(self, cases, system_prompt):
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            return [self.behaviour(c) for c in cases]
        finally:
            self.in_flight -= 1


def _job(tmp_path, **params) -> tuple[EvaluationJob, JobContext]:
    job = EvaluationJob(SimpleNamespace(settings=SETTINGS), None, None)  # type: ignore[arg-type]
    ctx = JobContext("evaluator-t", "evaluation.run", params, "corr", 1, tmp_path, None)  # type: ignore[arg-type]
    return job, ctx


def test_requests_run_concurrently_up_to_the_limit(tmp_path):
    job, ctx = _job(tmp_path)
    answerer = FakeAnswerer(lambda c: Response(c.expected_answer, 5.0), delay=0.05)
    cases = tuple(_cases({"status": 12}))
    began = time.monotonic()
    responses, tripped = asyncio.run(job._ask(ctx, answerer, cases, "", 4))
    assert [r.text for r in responses] == ["réponse"] * 12 and not tripped
    assert answerer.most_in_flight == 4 and time.monotonic() - began < 0.05 * 12 / 2
    assert ctx._progress["metrics"]["answered"] == 12 and "12/12" in ctx._progress["step"]


def test_an_unreachable_target_fails_its_questions_without_asking_them_all(tmp_path):
    job, ctx = _job(tmp_path)

    def refuse(case):
        raise Unreachable("Ollama at http://127.0.0.1:9: connection refused")

    answerer = FakeAnswerer(refuse)
    responses, tripped = asyncio.run(job._ask(ctx, answerer, tuple(_cases({"status": 20})), "", 1))
    assert all(r.error for r in responses) and "127.0.0.1:9" in responses[0].error
    assert answerer.calls == SETTINGS.eval_unreachable_after and "non posée" in responses[-1].error and tripped


def test_a_slow_or_broken_answer_fails_its_question_only(tmp_path):
    job, ctx = _job(tmp_path)

    def mixed(case):
        if case.id.endswith("-1"):
            raise DyagError("llm_error", "HTTP 500 from the model")
        return Response("ok", 1.0)

    responses, _ = asyncio.run(job._ask(ctx, FakeAnswerer(mixed), tuple(_cases({"status": 3})), "", 2))
    assert [r.error for r in responses] == [None, "HTTP 500 from the model", None]
    job2, ctx2 = _job(tmp_path / "slow")
    (tmp_path / "slow").mkdir()
    responses, _ = asyncio.run(
        job2._ask(ctx2, FakeAnswerer(lambda c: Response("late"), delay=2.0), tuple(_cases({"status": 1})), "", 1)
    )
    assert "pas de réponse en" in responses[0].error


def test_a_resumed_job_asks_only_what_is_left(tmp_path):
    job, ctx = _job(tmp_path)
    cases = tuple(_cases({"status": 6}))
    asyncio.run(job._ask(ctx, FakeAnswerer(lambda c: Response("first"), batch_size=2), cases[:4] + cases[4:], "", 1))
    lines = (tmp_path / "responses.jsonl").read_text().splitlines()
    (tmp_path / "responses.jsonl").write_text("\n".join(lines[:3]) + "\n")  # the worker died after 3 answers
    answerer = FakeAnswerer(lambda c: Response("second"), batch_size=2)
    responses, _ = asyncio.run(job._ask(ctx, answerer, cases, "", 1))
    assert [r.text for r in responses] == ["first"] * 3 + ["second"] * 3 and answerer.calls == 2


def test_a_chat_target_that_cannot_be_reached_is_unreachable_not_wrong():
    from concurrent.futures import ThreadPoolExecutor

    from dyag_llm.base import LLMError

    class Chat:
        name = "ollama:m"

        def __init__(self, code):
            self.code = code

        def chat(self, messages, **kwargs):
            raise LLMError(self.code, f"{self.code} happened")

    case = EvalCase("1", "Q ?", "R.")
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(Unreachable, match="unavailable happened"):
            asyncio.run(ChatAnswerer(Chat("unavailable"), pool, max_tokens=8, temperature=0).answer([case], "system"))
        [failed] = asyncio.run(
            ChatAnswerer(Chat("model_not_found"), pool, max_tokens=8, temperature=0).answer([case], "system")
        )
    assert failed.error == "model_not_found happened"


# ------------------------------------------------------------------ offline CLI: compare and report


def _write_run(path, name: str, approach: str, right: int, latency: float) -> None:
    cases = [
        EvalCase(f"q{i}", f"Quel est le statut de APP{i} ?", "En production.", ("en production",), "status")
        for i in range(10)
    ]
    responses = [Response("Elle est en production." if i < right else "Je ne sais pas.", latency) for i in range(10)]
    path.write_text(evaluate(cases, responses, target=Target(name, approach, "ollama:m")).to_json())


def test_compare_and_report_work_offline_on_result_files(tmp_path):
    from dyag_cli.main import app

    _write_run(tmp_path / "base.json", "base", "base", 3, 900.0)
    _write_run(tmp_path / "ft.json", "fine-tuned", "fine_tuned", 9, 400.0)
    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "compare",
            str(tmp_path / "base.json"),
            str(tmp_path / "ft.json"),
            "--html",
            str(tmp_path / "c.html"),
            "--markdown",
            str(tmp_path / "c.md"),
            "--json",
            str(tmp_path / "c.json"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "Accuracy" in out.output and "30.0%" in out.output and "90.0%" in out.output and "+60.0 pts" in out.output
    assert "amélioration +55.6 %" in out.output and "Recommandation : Fine-tuning" in out.output
    assert "<svg" in (tmp_path / "c.html").read_text() and "Tableau de décision" in (tmp_path / "c.md").read_text()
    assert json.loads((tmp_path / "c.json").read_text())["recommended"] == "fine_tuned"

    out = runner.invoke(app, ["report", str(tmp_path / "ft.json"), "--html"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "ft.html").is_file()
    out = runner.invoke(app, ["report", str(tmp_path / "ft.json")])
    assert "Accuracy" in out.output and "90.0% (9/10)" in out.output

    (tmp_path / "bad.json").write_text('{"accuracy": 1}')
    out = runner.invoke(app, ["compare", str(tmp_path / "bad.json")])
    assert out.exit_code == 1 and "not a Dyag evaluation result" in out.output


def test_compare_puts_the_caller_s_notes_first_among_the_warnings(tmp_path):
    """A pipeline says why a target it asked for is not compared (its export failed the parity gate): the comparison,
    its Markdown and its HTML say it first."""
    from dyag.v1 import evaluation_pb2
    from dyag_evaluator.service import EvaluatorServicer
    from dyag_runtime.artifacts import LocalArtifactStore

    _write_run(tmp_path / "base.json", "base", "base", 3, 900.0)
    _write_run(tmp_path / "ft.json", "fine-tuned", "fine_tuned", 9, 400.0)
    rt = SimpleNamespace(settings=SETTINGS, artifacts=LocalArtifactStore(tmp_path / "artifacts"))
    servicer = EvaluatorServicer(rt, None, None)  # type: ignore[arg-type]
    note = "La cible « exported GGUF (llama.cpp) » n'est pas dans la comparaison : l'étape export a échoué : mean_kld"
    request = evaluation_pb2.CompareRequest(
        results=[(tmp_path / n).read_bytes() for n in ("base.json", "ft.json")], notes=[note, "  "]
    )
    reply = asyncio.run(servicer.Compare(request, None))
    assert list(reply.warnings)[0] == note and len(reply.warnings) == 1 + len(
        asyncio.run(servicer.Compare(evaluation_pb2.CompareRequest(results=request.results), None)).warnings
    )
    assert note in reply.markdown and html.escape(note) in reply.html
    assert reply.comparison["warnings"][0] == note


# ------------------------------------------------------------------ the gRPC-backed answerers, with stand-in stubs


class _RpcError(__import__("grpc").aio.AioRpcError):
    def __init__(self, code):
        import grpc

        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=f"{code.name.lower()} for the test")


class FakeTrainer:
    def __init__(self, fail=None):
        self.requests, self.fail = [], fail

    async def Generate(self, request, timeout=None):
        from dyag.v1 import training_pb2

        self.requests.append(request)
        if self.fail:
            raise _RpcError(self.fail)
        gens = [
            training_pb2.Generation(
                text=f"réponse à {c.messages[-1].content[:40]}", prompt_tokens=10, completion_tokens=3
            )
            for c in request.conversations
        ]
        return training_pb2.GenerateResponse(
            generations=gens, model=request.model_id or request.base_model, latency_ms=1.0
        )


class FakeRag:
    def __init__(self):
        self.requests = []

    async def Query(self, request, timeout=None):
        from dyag.v1 import rag_pb2

        self.requests.append(request)
        if "INCONNUE" in request.question:
            return rag_pb2.QueryResponse(
                answer="Je ne sais pas : « INCONNUE » ne figure pas dans le catalogue.", abstained=True
            )
        chunk = rag_pb2.RetrievedChunk(entity_id="1017", entity_name="8-SINP", text="Statut : En construction", rank=1)
        answer = "" if request.retrieve_only else "En construction [1017 8-SINP]."
        return rag_pb2.QueryResponse(
            answer=answer,
            chunks=[chunk],
            model="" if request.retrieve_only else "ollama:m",
            tokens=rag_pb2.TokenUsage(prompt=50, completion=5),
        )


def test_base_and_lora_answer_through_batched_generate():
    import grpc

    from dyag_evaluator.targets import GenerateAnswerer

    trainer = FakeTrainer()
    lora = GenerateAnswerer(
        trainer, "127.0.0.1:1", model_id="lora-1", batch_size=8, max_tokens=32, temperature=0.0, timeout=5
    )
    cases = [EvalCase(str(i), f"Question {i} ?", "R.") for i in range(3)]
    responses = asyncio.run(lora.answer(cases, "système"))
    request = trainer.requests[0]
    assert (
        request.model_id == "lora-1"
        and not request.base_model
        and len(request.conversations) == 3
        and request.max_tokens == 32
    )
    assert [m.role for m in request.conversations[0].messages] == ["system", "user"]
    assert (
        responses[2].text == "réponse à Question 2 ?"
        and responses[0].completion_tokens == 3
        and responses[0].latency_ms > 0
    )
    base = GenerateAnswerer(
        FakeTrainer(), "a", base_model="default", batch_size=8, max_tokens=8, temperature=0.0, timeout=5
    )
    asyncio.run(base.answer(cases[:1], ""))
    assert base.stub.requests[0].base_model == "default" and base.answered_by == "local:default"
    down = GenerateAnswerer(
        FakeTrainer(grpc.StatusCode.UNAVAILABLE),
        "127.0.0.1:1",
        model_id="lora-1",
        batch_size=8,
        max_tokens=8,
        temperature=0.0,
        timeout=5,
    )
    with pytest.raises(Unreachable, match="gpu-lora-trainer at 127.0.0.1:1"):
        asyncio.run(down.answer(cases, ""))
    refused = GenerateAnswerer(
        FakeTrainer(grpc.StatusCode.INVALID_ARGUMENT),
        "a",
        model_id="lora-1",
        batch_size=8,
        max_tokens=8,
        temperature=0.0,
        timeout=5,
    )
    assert all("invalid_argument for the test" in r.error for r in asyncio.run(refused.answer(cases, "")))


def test_rag_and_hybrid_answers():
    from dyag_evaluator.targets import GenerateAnswerer, HybridAnswerer, RagAnswerer

    rag = RagAnswerer(
        FakeRag(), "a", collection="applications_ia", n_chunks=5, llm="", max_tokens=64, temperature=0.0, timeout=5
    )
    [answer] = asyncio.run(rag.answer([EvalCase("1", "Statut de 8-SINP ?", "En construction.")], ""))
    assert (
        answer.text == "En construction [1017 8-SINP]." and answer.prompt_tokens == 50 and rag.answered_by == "ollama:m"
    )

    trainer = FakeTrainer()
    hybrid = HybridAnswerer(
        RagAnswerer(
            FakeRag(), "a", collection="applications_ia", n_chunks=3, llm="", max_tokens=64, temperature=0.0, timeout=5
        ),
        GenerateAnswerer(trainer, "b", model_id="lora-1", batch_size=8, max_tokens=64, temperature=0.0, timeout=5),
    )
    cases = [
        EvalCase("1", "Statut de 8-SINP ?", "En construction."),
        EvalCase("2", "Statut de INCONNUE ?", "Je ne sais pas.", negative=True),
    ]
    known, unknown = asyncio.run(hybrid.answer(cases, ""))
    assert all(
        r.retrieve_only for r in hybrid.rag.stub.requests
    )  # the RAG only retrieves; the fine-tuned model answers
    [conversation] = trainer.requests[0].conversations  # the abstention needed no model call
    assert (
        "source : [1017 8-SINP]" in conversation.messages[-1].content
        and "Question : Statut de 8-SINP ?" in conversation.messages[-1].content
    )
    assert (
        known.text.startswith("réponse à Contexte")
        and unknown.text.startswith("Je ne sais pas")
        and trainer.requests[0].model_id == "lora-1"
    )


def test_the_llm_judge_scores_answered_questions_only(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    import dyag_llm.factory
    from dyag_llm.base import ChatResult, LLMError

    graded = []

    class Judge:
        name = "openai:judge"

        def chat(self, messages, **kwargs):
            graded.append(messages[-1]["content"])
            if "casse" in messages[-1]["content"]:
                raise LLMError("llm_error", "HTTP 500")
            return ChatResult("8/10", "openai:judge")

    monkeypatch.setattr(dyag_llm.factory, "open_chat_model", lambda spec, settings=None: Judge())
    job, ctx = _job(tmp_path)
    cases = (EvalCase("1", "Q1 ?", "R1."), EvalCase("2", "Q2 ?", "R2."), EvalCase("3", "Q3 ?", "R3."))
    responses = [Response("R1."), Response.failed("down"), Response("casse")]
    with ThreadPoolExecutor(2) as pool:
        scored, note = asyncio.run(job._judge(ctx, "openai:judge", cases, responses, pool))
    assert [r.judge_score for r in scored] == [0.8, None, None] and len(graded) == 2
    assert "1/2" in note and "Réponse de référence : R1." in graded[0]


def test_the_similarity_embedder_is_found_by_its_stable_name(monkeypatch):
    import sys
    import types

    from dyag_evaluator import similarity

    assert similarity.open_similarity("off")[0] is None
    module = types.ModuleType("dyag_llm.embeddings")
    module.open_embedder = lambda kind: SimpleNamespace(name=f"fake-{kind}", query=lambda text: [float(len(text)), 1.0])
    monkeypatch.setitem(
        sys.modules, "dyag_llm.embeddings", module
    )  # the library, once the embedder moves there, comes first
    monkeypatch.setattr(similarity, "_opened", {})
    embed, name = similarity.open_similarity("e5")
    assert name == "fake-e5" and embed(["ab", "abc"]) == [[2.0, 1.0], [3.0, 1.0]]
