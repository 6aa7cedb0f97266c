"""EvaluatorService over gRPC and the evaluation.run job.

Evaluate checks everything it can before a job exists (the target, the test set's format and size, the
dataset, the model and collection, concurrency), stores the test set as an artifact and records the run.
The job asks the target every question (concurrently; a failed call marks its question failed, never the
run), keeps each answer in its work folder (a restarted job asks only what is left), scores with
dyag_core.evaluation, writes results.json / report.md / report.html, records the run's figures and
publishes evaluation.completed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import json_format

from dyag.v1 import catalog_pb2, dataset_pb2, evaluation_pb2, evaluation_pb2_grpc, rag_pb2, training_pb2
from dyag_core.dataset.model import DEFAULT_SYSTEM_PROMPT
from dyag_core.errors import DyagError
from dyag_core.evaluation import EvalCase, EvaluationError, EvaluationRun, Response, compare_runs, evaluate, render_html, render_markdown
from dyag_evaluator import judge as judging
from dyag_evaluator.runs import FINAL, RunStore
from dyag_evaluator.settings import EvaluatorSettings
from dyag_evaluator.similarity import open_similarity
from dyag_evaluator.targets import (
    Answerer,
    ChatAnswerer,
    GenerateAnswerer,
    HybridAnswerer,
    RagAnswerer,
    TargetSpec,
    Unreachable,
    read_key,
)
from dyag_evaluator.testsets import TestSetRef, check_format, dataset_file, parse, safe_filename, sample
from dyag_runtime.artifacts import Artifact
from dyag_runtime.jobs import TERMINAL, JobCancelled, JobContext, JobNotFound, record_to_proto
from dyag_runtime.peers import Peers, read_catalog
from dyag_runtime.server import Runtime

log = logging.getLogger(__name__)

EVALUATE = "evaluation.run"
REPORTS = {"json": ("results.json", "application/json"), "md": ("report.md", "text/markdown; charset=utf-8"),
           "html": ("report.html", "text/html; charset=utf-8")}  # fmt: skip
CHECK_TIMEOUT_S = 30.0


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _summary(run: EvaluationRun) -> dict[str, Any]:
    o, lat, use = run.overall, run.latency, run.usage
    return {
        "accuracy": o.accuracy, "precision": o.precision, "recall": o.recall, "f1_score": o.f1_score,
        "average_generation_time_ms": lat.mean, "questions": o.n, "correct": o.correct, "failed": o.failed,
        "errors": o.n - o.correct, "exact_match": o.exact_match, "fact_accuracy": o.fact_accuracy,
        "semantic_similarity": o.similarity, "hallucination_rate": o.hallucination_rate, "abstention_rate": o.abstention_rate,
        "judge_score": o.judge_score, "latency_p50_ms": lat.p50, "latency_p95_ms": lat.p95, "prompt_tokens": use.prompt_tokens,
        "completion_tokens": use.completion_tokens, "cost_usd": use.cost_usd, "cost_per_1000_questions_usd": use.cost_per_1000_questions_usd,
    }  # fmt: skip


def run_record(run_id: str, params: dict[str, Any], correlation_id: str) -> dict[str, Any]:
    """A new run's record (EvaluationRun's fields), from its job's parameters."""
    target, test_set, catalog = params["target"], params["test_set"], params.get("catalog") or {}
    spec = TargetSpec.from_dict(target)
    return {
        "id": run_id, "name": params["name"], "status": "queued", "target": target, "approach": spec.approach or spec.default_approach(),
        "model": spec.model_spec(), "test_set": test_set.get("filename", ""), "dataset_id": test_set.get("dataset_id", ""),
        "catalog": catalog.get("name", ""), "catalog_version": catalog.get("version", ""), "artifacts": [], "error": "",
        "created_at": now_rfc3339(), "finished_at": "", "correlation_id": correlation_id, "labels": dict(params.get("labels") or {}),
        "params": params,
    }  # fmt: skip


def run_to_proto(run: dict[str, Any]) -> evaluation_pb2.EvaluationRun:
    return json_format.ParseDict(run, evaluation_pb2.EvaluationRun(), ignore_unknown_fields=True)


def _unreachable(service: str, exc: grpc.aio.AioRpcError) -> bool:
    return exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class EvaluatorServicer(evaluation_pb2_grpc.EvaluatorServiceServicer):
    def __init__(self, rt: Runtime, runs: RunStore, peers: Peers):
        self.rt, self.runs, self.peers = rt, runs, peers
        self.settings: EvaluatorSettings = rt.settings  # type: ignore[assignment]

    # -------------------------------------------------------------- Evaluate

    async def Evaluate(self, request, context):
        s = self.settings
        spec = TargetSpec.from_proto(request.target).validate(s)
        if request.HasField("concurrency"):
            concurrency = request.concurrency
            if concurrency < 1:
                raise DyagError("invalid_concurrency", f"concurrency must be at least 1 (requests in flight at once), not {concurrency}")
            if concurrency > s.eval_max_concurrency:
                raise DyagError("invalid_concurrency", f"concurrency {concurrency} is above this evaluator's limit of {s.eval_max_concurrency} (DYAG_EVAL_MAX_CONCURRENCY)")
        else:
            concurrency = s.eval_concurrency
        if request.max_questions < 0:
            raise DyagError("invalid_max_questions", f"max_questions must be 0 (every question) or more, not {request.max_questions}")
        if request.max_tokens < 0 or request.max_tokens > 8192:
            raise DyagError("invalid_max_tokens", f"max_tokens must be between 1 and 8192 (0: the default), not {request.max_tokens}")
        if not 0 <= request.temperature <= 2:
            raise DyagError("invalid_temperature", f"temperature must be between 0 and 2, not {request.temperature}")
        judge = request.judge_model.strip() or s.eval_judge_model
        if judge and judge.partition(":")[0] not in ("openai", "ollama", "local"):
            raise DyagError("invalid_judge_model", f"judge model {judge!r} is not a chat-model spec; use openai:NAME, ollama:NAME or local:NAME")

        ref, questions = await self._test_set(request.test_set)
        if min(questions, request.max_questions or questions) > s.eval_max_questions:
            raise DyagError("too_large", f"{questions} questions: this evaluator runs at most {s.eval_max_questions} per run; set max_questions")
        notes: list[str] = []
        rag_catalog = await self._check_target(spec, notes)
        catalog = await self._catalog(request.catalog.strip(), request.catalog_version.strip(), ref, rag_catalog, notes)

        name = request.name.strip() or spec.label()
        params = {
            "name": name,
            "target": spec.to_dict(),
            "test_set": ref.to_dict(),
            "questions_in_test_set": questions,
            "max_questions": request.max_questions,
            "concurrency": concurrency,
            "seed": request.seed,
            "max_tokens": request.max_tokens or s.eval_max_tokens,
            "temperature": request.temperature,
            "system_prompt": request.system_prompt,
            "catalog": catalog,
            "judge_model": judge,
            "skip_similarity": request.skip_similarity,
            "labels": dict(request.labels),
            "notes": notes,
        }
        record = await self.rt.jobs.submit(EVALUATE, params, request.correlation_id)
        await asyncio.to_thread(self.runs.insert, run_record(record["id"], params, record["correlation_id"]))
        return record_to_proto(record)

    async def _test_set(self, ts: evaluation_pb2.TestSet) -> tuple[TestSetRef, int]:
        """The test set stored as an artifact, parsed once now so that a bad one is refused with its reason."""
        s = self.settings
        fmt = check_format(ts.format.strip())
        source = ts.WhichOneof("source")
        manifest = bytes(ts.manifest) or None
        if source is None:
            raise DyagError("missing_test_set", "give a test set: a dataset id (its test split) or the content of a test file (eval or OpenAI chat JSONL)")
        if source == "dataset_id":
            dataset = await self._dataset(ts.dataset_id.strip())
            artifact, fmt, manifest_ref = dataset_file(dataset, ts.split.strip())
            data = await asyncio.to_thread(self.rt.artifacts.get_bytes, artifact.digest)
            manifest = await asyncio.to_thread(self.rt.artifacts.get_bytes, manifest_ref.digest) if manifest_ref else None
            filename = artifact.name or f"{ts.split or 'test'}.{fmt}.jsonl"
            evalset = await asyncio.to_thread(parse, data, filename, fmt, manifest)
            ref = TestSetRef(artifact.digest, filename, fmt, manifest_ref.digest if manifest_ref else "", dataset.id, ts.split.strip() or "test",
                             dataset.catalog, dataset.catalog_version)  # fmt: skip
            return ref, len(evalset)
        if source == "artifact_digest":
            digest = ts.artifact_digest.strip()
            try:
                exists = await asyncio.to_thread(self.rt.artifacts.exists, digest)
            except ValueError as exc:
                raise DyagError("invalid_artifact", str(exc)) from None
            if not exists:
                raise DyagError("artifact_not_found", f"no artifact {digest} in the store")
            data = await asyncio.to_thread(self.rt.artifacts.get_bytes, digest)
        else:
            data = bytes(ts.content)
        if len(data) > s.eval_max_test_set_bytes:
            raise DyagError("too_large", f"the test set has {len(data)} bytes; this evaluator accepts {s.eval_max_test_set_bytes} (DYAG_EVAL_MAX_TEST_SET_BYTES)")
        filename = safe_filename(ts.filename)
        evalset = await asyncio.to_thread(parse, data, filename, fmt, manifest)
        stored = await asyncio.to_thread(self.rt.artifacts.put_bytes, data, filename, "application/jsonl")
        manifest_digest = ""
        if manifest:
            manifest_digest = (await asyncio.to_thread(self.rt.artifacts.put_bytes, manifest, filename + ".manifest.jsonl", "application/jsonl")).digest
        return TestSetRef(stored.digest, filename, fmt or evalset.source_format, manifest_digest), len(evalset)

    async def _dataset(self, dataset_id: str) -> dataset_pb2.Dataset:
        if not dataset_id:
            raise DyagError("missing_test_set", "the dataset id is empty")
        try:
            return await self.peers.datasets().GetDataset(dataset_pb2.GetDatasetRequest(id=dataset_id), timeout=CHECK_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise DyagError("dataset_not_found", f"dataset {dataset_id!r} not found: build one with `dyag create_rag` (or POST /datasets) and use its id") from None
            raise DyagError("unavailable", f"cannot read dataset {dataset_id!r}: dataset-builder at {self.peers.address('dataset-builder')} answered {exc.code().name}: {exc.details()}") from None

    async def _check_target(self, spec: TargetSpec, notes: list[str]) -> tuple[str, str] | None:
        """A model or collection that does not exist is refused now; one behind a service that cannot be
        reached is not: its questions will be marked failed. Returns the rag collection's (catalog, version)."""
        if spec.kind in ("lora", "hybrid"):
            try:
                await self.peers.trainer().GetModel(training_pb2.GetLoraModelRequest(id=spec.model), timeout=CHECK_TIMEOUT_S)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise DyagError("model_not_found", f"LoRA model {spec.model!r} not found in gpu-lora-trainer's registry (see `dyag models`)") from None
                notes.append(f"gpu-lora-trainer did not answer when the run was asked for ({exc.code().name}): model {spec.model} not checked")
        if spec.kind in ("rag", "hybrid"):
            try:
                stats = await self.peers.rag().Stats(rag_pb2.StatsRequest(collection=spec.collection), timeout=CHECK_TIMEOUT_S)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise DyagError("collection_not_found", f"RAG collection {spec.collection!r} not found: index a catalog into it first (`dyag index_rag CATALOG --collection {spec.collection}`)") from None
                notes.append(f"rag-service did not answer when the run was asked for ({exc.code().name}): collection {spec.collection} not checked")
                return None
            return (stats.catalog, stats.catalog_version) if stats.catalog else None
        return None

    async def _catalog(self, name: str, version: str, ref: TestSetRef, rag_catalog: tuple[str, str] | None, notes: list[str]) -> dict[str, Any] | None:
        """The catalog the hallucination rules check against: the one asked for, else the dataset's, else the
        rag collection's. None (rules skipped, noted) when there is none or it cannot be read."""
        asked = bool(name)
        if not name and ref.catalog:
            name, version = ref.catalog, ref.catalog_version
        elif not name and rag_catalog:
            name, version = rag_catalog
        if not name:
            notes.append("no catalog named (nor a dataset's or a collection's): the hallucination rules were not applied")
            return None
        try:
            found = await self.peers.catalogs().GetCatalog(catalog_pb2.GetCatalogRequest(name=name, version=version), timeout=CHECK_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND and asked:
                raise DyagError("catalog_not_found", f"catalog {name!r}{' version ' + version if version else ''} not found (see `dyag catalog list`)") from None
            notes.append(f"catalog {name} could not be read ({exc.code().name}: {exc.details()}): the hallucination rules were not applied")
            return None
        return {"name": found.name, "version": found.version, "artifact": found.artifact.digest, "entities": found.entity_count}

    # -------------------------------------------------------------- runs

    async def _run(self, run_id: str) -> dict[str, Any]:
        """The stored run, its status brought up to date from its job (a job the worker gave up on, a crash)."""
        run = await asyncio.to_thread(self.runs.get, run_id)
        if run["status"] in FINAL:
            return run
        try:
            job = await self.rt.jobs.get(run_id)
        except JobNotFound:
            return run
        if job["status"] != run["status"]:
            changes: dict[str, Any] = {"status": job["status"]}
            if job["status"] in TERMINAL:
                changes.update(error=job.get("error", ""), finished_at=run.get("finished_at") or now_rfc3339())
                run = await asyncio.to_thread(self.runs.update, run_id, **changes)
            else:
                run = run | changes
        return run

    async def GetRun(self, request, context):
        return run_to_proto(await self._run(request.id))

    async def ListRuns(self, request, context):
        rows = await asyncio.to_thread(self.runs.list, request.target_kind, request.dataset_id, "", max(request.limit, 0) or 100)
        runs = [await self._run(r["id"]) if r["status"] not in FINAL else r for r in rows]
        if request.status:
            runs = [r for r in runs if r["status"] == request.status]
        return evaluation_pb2.ListRunsResponse(runs=[run_to_proto(r) for r in runs])

    async def _report_bytes(self, run: dict[str, Any], fmt: str) -> bytes:
        if fmt not in REPORTS:
            raise DyagError("invalid_format", f"unknown report format {fmt!r}; use json, md or html")
        if run["status"] != "succeeded":
            detail = f": {run['error']}" if run.get("error") else ""
            raise DyagError("conflict", f"evaluation run {run['id']} is {run['status']}{detail}; its reports exist once it has succeeded")
        name = REPORTS[fmt][0]
        ref = next((a for a in run.get("artifacts", []) if a["name"] == name), None)
        if ref is None:
            raise DyagError("report_not_found", f"evaluation run {run['id']} has no {name}")
        return await asyncio.to_thread(self.rt.artifacts.get_bytes, ref["digest"])

    async def GetReport(self, request, context):
        run = await self._run(request.id)
        fmt = request.format.strip().lower().lstrip(".") or "json"
        fmt = "md" if fmt == "markdown" else fmt
        data = await self._report_bytes(run, fmt)
        name, media = REPORTS[fmt]
        return evaluation_pb2.Report(run_id=run["id"], format=fmt, media_type=media, filename=name, content=data)

    async def Compare(self, request, context):
        runs: list[EvaluationRun] = []
        ids: list[str] = []
        for run_id in request.run_ids:
            run = await self._run(run_id)
            data = await self._report_bytes(run, "json")
            runs.append(await asyncio.to_thread(lambda d=data: EvaluationRun.from_dict(json.loads(d))))
            ids.append(run_id)
        for i, document in enumerate(request.results, 1):
            try:
                data = json.loads(bytes(document))
            except ValueError as exc:
                raise EvaluationError("bad_results", f"uploaded result {i} is not JSON: {exc}") from None
            runs.append(EvaluationRun.from_dict(data))
            ids.append("")
        if not runs:
            raise EvaluationError("no_runs", "nothing to compare: give run ids (or result documents)")
        if not 0 <= request.baseline < len(runs):
            raise EvaluationError("no_runs", f"baseline {request.baseline} is not one of the {len(runs)} runs (0 to {len(runs) - 1})")
        size = request.catalog_size if request.HasField("catalog_size") else None
        title = request.title.strip() or "Rapport d'évaluation Dyag"

        def render():
            comparison = compare_runs(runs, baseline=request.baseline, catalog_size=size)
            return comparison, render_markdown(runs, comparison), render_html(runs, comparison, title=title)

        comparison, markdown, html = await asyncio.to_thread(render)
        data = comparison.to_dict()
        body = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        artifacts = [
            await asyncio.to_thread(self.rt.artifacts.put_bytes, body.encode(), "comparison.json", "application/json"),
            await asyncio.to_thread(self.rt.artifacts.put_bytes, markdown.encode(), "comparison.md", "text/markdown; charset=utf-8"),
            await asyncio.to_thread(self.rt.artifacts.put_bytes, html.encode(), "comparison.html", "text/html; charset=utf-8"),
        ]
        reply = evaluation_pb2.Comparison(
            run_ids=ids, names=[r.target.name for r in runs], baseline=request.baseline, recommended=comparison.recommended or "",
            recommendation=comparison.recommendation, same_test_set=comparison.same_test_set, warnings=list(comparison.warnings),
            markdown=markdown, html=html, artifacts=[a.to_proto() for a in artifacts],
        )  # fmt: skip
        reply.comparison.update(json.loads(body))
        return reply


# ------------------------------------------------------------------ the job


class EvaluationJob:
    """The evaluation.run job. Register `EvaluationJob(...).run` (a coroutine function)."""

    def __init__(self, rt: Runtime, runs: RunStore, peers: Peers):
        self.rt, self.runs, self.peers = rt, runs, peers
        self.settings: EvaluatorSettings = rt.settings  # type: ignore[assignment]

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        # The record is written when the run is asked for; written here too, had the job started first.
        await asyncio.to_thread(self.runs.insert, run_record(ctx.job_id, ctx.params, ctx.correlation_id))
        await asyncio.to_thread(self._mark, ctx.job_id, status="running")
        try:
            return await self._evaluate(ctx)
        except JobCancelled:
            await asyncio.to_thread(self._mark, ctx.job_id, status="cancelled", finished_at=now_rfc3339())
            raise
        except Exception as exc:
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            await asyncio.to_thread(self._mark, ctx.job_id, status="failed", error=message, finished_at=now_rfc3339())
            raise

    def _mark(self, run_id: str, **changes: Any) -> None:
        try:
            self.runs.update(run_id, **changes)
        except DyagError:  # a job submitted without its run record (should not happen): the job is the truth
            log.warning("no run record for this job", extra={"job_id": run_id})

    def answerer(self, spec: TargetSpec, p: dict[str, Any], executor: ThreadPoolExecutor) -> Answerer:
        s = self.settings
        common = {"max_tokens": int(p["max_tokens"]), "temperature": float(p["temperature"])}
        if spec.kind == "gguf":
            from dyag_llm.factory import open_chat_model

            return ChatAnswerer(open_chat_model(f"gguf:{spec.model}"), executor, **common)
        if spec.kind in ("openai", "ollama"):
            from dyag_llm.base import LLMSettings
            from dyag_llm.factory import open_chat_model

            llm = LLMSettings()
            overrides: dict[str, Any] = {"request_timeout_s": s.eval_request_timeout_s}
            if spec.kind == "openai":
                overrides["openai_base_url"] = spec.base_url or llm.openai_base_url
                overrides["openai_api_key"] = read_key(spec.api_key_env, s) if spec.api_key_env else llm.openai_api_key
            else:
                overrides["ollama_host"] = spec.host or llm.ollama_host
            chat = open_chat_model(f"{spec.kind}:{spec.model}", llm.model_copy(update=overrides))
            return ChatAnswerer(chat, executor, **common)
        timeout = s.eval_request_timeout_s
        if spec.kind in ("base", "lora"):
            return GenerateAnswerer(self.peers.trainer(), self.peers.address("gpu-lora-trainer"), model_id=spec.model if spec.kind == "lora" else "",
                                    base_model=spec.model if spec.kind == "base" else "", batch_size=s.eval_generate_batch, timeout=timeout, **common)  # fmt: skip
        rag = RagAnswerer(self.peers.rag(), self.peers.address("rag-service"), collection=spec.collection, n_chunks=spec.n_chunks, llm=spec.llm,
                          timeout=timeout, mode=spec.rag_mode, **common)  # fmt: skip
        if spec.kind == "rag":
            return rag
        generate = GenerateAnswerer(self.peers.trainer(), self.peers.address("gpu-lora-trainer"), model_id=spec.model,
                                    batch_size=s.eval_generate_batch, timeout=timeout, **common)  # fmt: skip
        return HybridAnswerer(rag, generate)

    async def _evaluate(self, ctx: JobContext) -> dict[str, Any]:
        p, s = ctx.params, self.settings
        spec = TargetSpec.from_dict(p["target"])
        ref = TestSetRef.from_dict(p["test_set"])
        ctx.progress(0.0, "loading the test set")
        data = await asyncio.to_thread(self.rt.artifacts.get_bytes, ref.digest)
        manifest = await asyncio.to_thread(self.rt.artifacts.get_bytes, ref.manifest_digest) if ref.manifest_digest else None
        evalset = await asyncio.to_thread(parse, data, ref.filename, ref.format, manifest)
        cases = sample(evalset.cases, int(p.get("max_questions") or 0), int(p.get("seed") or 0))
        catalog = None
        if p.get("catalog"):
            ctx.progress(0.01, "loading the catalog")
            catalog = await read_catalog(self.rt.artifacts, p["catalog"]["artifact"])
        system_prompt = p.get("system_prompt") or ("" if spec.kind in ("rag", "hybrid") else DEFAULT_SYSTEM_PROMPT)
        concurrency = int(p["concurrency"])
        ctx.log(f"{p['name']}: {len(cases)} questions ({ref.filename}, {evalset.source_format}) for {spec.label()}, {concurrency} in flight")
        started = now_rfc3339()
        with ThreadPoolExecutor(max_workers=max(concurrency, 1), thread_name_prefix="eval") as executor:
            answerer = self.answerer(spec, p, executor)
            try:
                responses, breaker = await self._ask(ctx, answerer, cases, system_prompt, concurrency)
            finally:
                await answerer.close()
            judge_note = ""
            if p.get("judge_model"):
                responses, judge_note = await self._judge(ctx, p["judge_model"], cases, responses, executor)

        ctx.progress(0.9, "scoring")
        embed, embedder = (None, "semantic similarity not asked (skip_similarity)") if p.get("skip_similarity") else await asyncio.to_thread(open_similarity, s.eval_embedder)
        meta = {
            "run_id": ctx.job_id, "name": p["name"], "dataset_id": ref.dataset_id, "split": ref.split, "test_set_format": evalset.source_format,
            "test_set_has_provenance": evalset.has_provenance, "questions_in_test_set": len(evalset), "max_questions": p.get("max_questions") or 0,
            "seed": p.get("seed") or 0, "concurrency": concurrency, "answered_by": answerer.answered_by or spec.model_spec(),
            "latency": "per question" if answerer.batch_size == 1 else f"Generate batch time / batch size (batches of {answerer.batch_size})",
            "embedder": embedder, "judge_model": p.get("judge_model") or "", "judge": judge_note, "catalog": p.get("catalog"),
            "target": spec.to_dict(), "labels": p.get("labels") or {}, "notes": list(p.get("notes") or []) + ([breaker] if breaker else []),
            "started_at": started, "finished_at": "",
        }  # fmt: skip
        target = spec.core_target(p["name"], answerer.answered_by)
        test_set_label = f"{ref.filename} ({ref.dataset_id})" if ref.dataset_id else ref.filename

        def score(embed_fn):
            return evaluate(cases, responses, target=target, catalog=catalog, embed=embed_fn, prices=s.prices(), test_set=test_set_label, meta=meta)

        try:
            run = await asyncio.to_thread(score, embed)
        except Exception as exc:
            if embed is None:
                raise
            ctx.log(f"semantic similarity failed ({exc!r}); scored without it", "warning")
            meta["embedder"] = f"failed: {exc!r}"
            run = await asyncio.to_thread(score, None)
        meta["finished_at"] = now_rfc3339()

        ctx.progress(0.96, "writing the reports")
        title = f"Évaluation Dyag — {p['name']}"
        texts = await asyncio.to_thread(lambda: {"json": run.to_json(), "md": render_markdown(run), "html": render_html(run, title=title)})
        artifacts: list[Artifact] = []
        for fmt, text in texts.items():
            name, media = REPORTS[fmt]
            artifact = await asyncio.to_thread(self.rt.artifacts.put_bytes, text.encode(), name, media)
            artifacts.append(ctx.add_artifact(artifact))

        summary = _summary(run)
        errors = run.errors
        refs = [a.to_dict() for a in artifacts]
        await asyncio.to_thread(
            self._mark, ctx.job_id, status="succeeded", summary=summary, artifacts=refs, model=run.target.model,
            test_set_fingerprint=run.test_set_fingerprint, finished_at=meta["finished_at"],
        )  # fmt: skip
        await self._emit(ctx, p, spec, run, summary, artifacts, ref)
        o = run.overall
        ctx.log(f"{p['name']}: accuracy {o.accuracy:.1%} ({o.correct}/{o.n}), F1 {o.f1_score:.1%}, {o.failed} failed calls")
        return {
            "run_id": ctx.job_id, "name": p["name"],
            # the guide's step 6.2 / 6.3 fields (errors: the first eval_errors_in_result; results.json holds them all)
            "accuracy": o.accuracy, "precision": o.precision, "recall": o.recall, "f1_score": o.f1_score,
            "average_generation_time_ms": run.latency.mean, "errors": errors[: s.eval_errors_in_result], "errors_total": len(errors),
            "summary": summary, "target": spec.to_dict(), "approach": spec.approach, "model": run.target.model,
            "test_set": {"name": test_set_label, "fingerprint": run.test_set_fingerprint, "questions": o.n, "dataset_id": ref.dataset_id},
            "reports": {fmt: a.digest for fmt, a in zip(texts, artifacts)}, "notes": meta["notes"],
        }  # fmt: skip

    async def _ask(self, ctx: JobContext, answerer: Answerer, cases: tuple[EvalCase, ...], system_prompt: str, concurrency: int) -> tuple[list[Response], str]:
        """Every question's Response, asking up to `concurrency` calls at once; answers already kept in the work
        folder (a resumed job) are not asked again. Returns the responses and, when the target was given up on
        as unreachable, why."""
        s = self.settings
        path = ctx.workdir / "responses.jsonl"
        done: dict[int, Response] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    item = json.loads(line)
                    if 0 <= item["i"] < len(cases) and item["id"] == cases[item["i"]].id:
                        done[item["i"]] = Response(**item["response"])
                except (ValueError, KeyError, TypeError):
                    continue
            if done:
                ctx.log(f"resuming: {len(done)} of {len(cases)} answers kept from the previous attempt")
        total = len(cases)
        pending = [i for i in range(total) if i not in done]
        size = max(1, answerer.batch_size)
        batches = [pending[k : k + size] for k in range(0, len(pending), size)]
        gate = asyncio.Semaphore(max(1, concurrency))
        state: dict[str, Any] = {"unreachable": 0, "answered": False, "tripped": "", "failed": sum(r.error is not None for r in done.values())}
        began = time.monotonic()
        out = open(path, "a", encoding="utf-8")

        def report() -> None:
            n = len(done)
            rate = (n - initial) / (time.monotonic() - began) if n > initial else 0.0
            ctx.progress(0.02 + 0.86 * n / max(total, 1), f"answering {n}/{total}" + (f" ({state['failed']} failed)" if state["failed"] else ""),
                         answered=n, total=total, failed=state["failed"], questions_per_second=round(rate, 3))  # fmt: skip

        initial = len(done)

        async def one(batch: list[int]) -> None:
            async with gate:
                ctx.check_cancelled()
                batch_cases = [cases[i] for i in batch]
                if state["tripped"]:
                    responses = [Response.failed(f"non posée : {state['tripped']}") for _ in batch]
                else:
                    try:
                        responses = await asyncio.wait_for(answerer.answer(batch_cases, system_prompt), s.eval_request_timeout_s * max(1, len(batch)))
                    except Unreachable as exc:
                        reason = f"cible injoignable : {exc}"
                        responses = [Response.failed(reason) for _ in batch]
                        state["unreachable"] += 1
                        if not state["answered"] and state["unreachable"] >= s.eval_unreachable_after and not state["tripped"]:
                            state["tripped"] = f"la cible n'a pas répondu à {state['unreachable']} appels de suite ({exc})"
                            ctx.log(f"target unreachable, the remaining questions are marked failed: {exc}", "warning")
                    except TimeoutError:
                        responses = [Response.failed(f"pas de réponse en {s.eval_request_timeout_s:.0f} s") for _ in batch]
                    except DyagError as exc:
                        responses = [Response.failed(exc.message) for _ in batch]
                    else:
                        if any(r.error is None for r in responses):
                            state["answered"], state["unreachable"] = True, 0
                    if len(responses) != len(batch):
                        responses = [Response.failed(f"the target gave {len(responses)} answers for {len(batch)} questions") for _ in batch]
                for i, response in zip(batch, responses):
                    done[i] = response
                    state["failed"] += response.error is not None
                    out.write(json.dumps({"i": i, "id": cases[i].id, "response": asdict(response)}, ensure_ascii=False) + "\n")
                out.flush()
                report()

        report()
        tasks = [asyncio.create_task(one(b)) for b in batches]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            out.close()
        return [done[i] for i in range(total)], state["tripped"]

    async def _judge(self, ctx: JobContext, spec: str, cases: tuple[EvalCase, ...], responses: list[Response], executor: ThreadPoolExecutor) -> tuple[list[Response], str]:
        """Each answer's judge score (0..1). A judge that fails leaves the score empty; never the run."""
        from dyag_llm.base import LLMError, LLMSettings
        from dyag_llm.factory import open_chat_model

        try:
            chat = open_chat_model(spec, LLMSettings().model_copy(update={"request_timeout_s": self.settings.eval_request_timeout_s}))
        except LLMError as exc:
            ctx.log(f"LLM judge {spec} unavailable: {exc.message}", "warning")
            return responses, f"juge {spec} indisponible : {exc.message}"
        loop = asyncio.get_running_loop()
        todo = [i for i, r in enumerate(responses) if r.error is None and r.text.strip()]
        scored, failures = list(responses), 0

        async def grade(i: int) -> None:
            nonlocal failures
            try:
                result = await loop.run_in_executor(executor, lambda: chat.chat(judging.judge_messages(cases[i], responses[i].text), max_tokens=8, temperature=0.0))
                value = judging.parse_score(result.text)
            except LLMError:
                value = None
            failures += value is None
            scored[i] = replace(responses[i], judge_score=value)

        for k in range(0, len(todo), 16):
            ctx.progress(0.88, f"LLM judge {k}/{len(todo)}")
            await asyncio.gather(*(grade(i) for i in todo[k : k + 16]))
        note = f"juge {spec} : {len(todo) - failures}/{len(todo)} réponses notées"
        ctx.log(note)
        return scored, note

    async def _emit(self, ctx: JobContext, p: dict[str, Any], spec: TargetSpec, run: EvaluationRun, summary: dict[str, Any],
                    artifacts: list[Artifact], ref: TestSetRef) -> None:  # fmt: skip
        catalog = p.get("catalog") or {}
        event = evaluation_pb2.EvaluationCompleted(
            run_id=ctx.job_id, name=p["name"], target=spec.to_proto(), approach=spec.approach, model=run.target.model, test_set=run.test_set,
            test_set_fingerprint=run.test_set_fingerprint, dataset_id=ref.dataset_id, catalog=catalog.get("name", ""),
            catalog_version=catalog.get("version", ""), artifacts=[a.to_proto() for a in artifacts], labels=p.get("labels") or {},
        )  # fmt: skip
        json_format.ParseDict(summary, event.summary)
        try:  # the run is done and recorded: an event lost to a NATS hiccup must not fail (or hold) the job
            await asyncio.wait_for(self.rt.bus.emit("evaluation.completed", event, subject=ctx.job_id, correlation_id=ctx.correlation_id), 15)
        except Exception as exc:
            log.warning("could not publish evaluation.completed", extra={"job_id": ctx.job_id, "error": repr(exc)})
