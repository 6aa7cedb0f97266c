"""EvaluatorService over gRPC: asking for evaluation runs, reading them and their reports, comparing runs, and the
promotion gate (a challenger against the champion, dyag_core.evaluation.gate).

Evaluate checks everything it can before a job exists (the target, the test set's format and size, the
dataset, the model and collection, concurrency), stores the test set as an artifact, records the run and
submits its evaluation.run job (job.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import grpc
from google.protobuf import json_format

from dyag.v1 import catalog_pb2, dataset_pb2, evaluation_pb2, evaluation_pb2_grpc, rag_pb2, training_pb2
from dyag_core import nesting
from dyag_core.errors import DyagError
from dyag_core.evaluation import (
    EvalSet,
    EvaluationError,
    EvaluationRun,
    GateReport,
    SubsetComparison,
    Thresholds,
    compare_runs,
    gate,
    render_html,
    render_markdown,
)
from dyag_evaluator.job import EVALUATE
from dyag_evaluator.records import REPORTS, now_rfc3339, run_record
from dyag_evaluator.runs import FINAL, RunStore
from dyag_evaluator.settings import EvaluatorSettings
from dyag_evaluator.targets import TargetSpec
from dyag_evaluator.testsets import TestSetRef, check_format, dataset_file, parse, safe_filename, sample
from dyag_runtime.jobs import TERMINAL, JobNotFound, record_to_proto
from dyag_runtime.peers import Peers
from dyag_runtime.server import Runtime

CHECK_TIMEOUT_S = 30.0


def run_to_proto(run: dict[str, Any]) -> evaluation_pb2.EvaluationRun:
    return json_format.ParseDict(run, evaluation_pb2.EvaluationRun(), ignore_unknown_fields=True)


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
                raise DyagError(
                    "invalid_concurrency",
                    f"concurrency must be at least 1 (requests in flight at once), not {concurrency}",
                )
            if concurrency > s.eval_max_concurrency:
                raise DyagError(
                    "invalid_concurrency",
                    f"concurrency {concurrency} is above this evaluator's limit "
                    f"of {s.eval_max_concurrency} (DYAG_EVAL_MAX_CONCURRENCY)",
                )
        else:
            concurrency = s.eval_concurrency
        if request.max_questions < 0:
            raise DyagError(
                "invalid_max_questions",
                f"max_questions must be 0 (every question) or more, not {request.max_questions}",
            )
        if request.max_tokens < 0 or request.max_tokens > 8192:
            raise DyagError(
                "invalid_max_tokens",
                f"max_tokens must be between 1 and 8192 (0: the default), not {request.max_tokens}",
            )
        if not 0 <= request.temperature <= 2:
            raise DyagError("invalid_temperature", f"temperature must be between 0 and 2, not {request.temperature}")
        judge = request.judge_model.strip() or s.eval_judge_model
        if judge and judge.partition(":")[0] not in ("openai", "ollama", "local"):
            raise DyagError(
                "invalid_judge_model",
                f"judge model {judge!r} is not a chat-model spec; use openai:NAME, ollama:NAME or local:NAME",
            )

        focus = tuple(dict.fromkeys(e.strip() for e in request.focus_entity_ids if e.strip()))
        ref, evalset = await self._test_set(request.test_set)
        questions = len(evalset)
        asked = sample(evalset.cases, request.max_questions, request.seed, focus)
        if len(asked) > s.eval_max_questions:
            raise DyagError(
                "too_large",
                f"{len(asked)} questions: this evaluator runs at most {s.eval_max_questions} per run; set max_questions"
                + (f" (the {len(focus)} focus entities' questions are asked on top of it)" if focus else ""),
            )
        notes: list[str] = []
        if focus:
            named = {e for case in evalset.cases for e in case.entity_ids}
            absent = [e for e in focus if e not in named]
            if absent:
                notes.append(
                    f"no question of the test set is about focus entit{'y' if len(absent) == 1 else 'ies'} "
                    f"{', '.join(absent)}"
                )
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
            "focus_entity_ids": list(focus),
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

    async def _test_set(self, ts: evaluation_pb2.TestSet) -> tuple[TestSetRef, EvalSet]:
        """The test set stored as an artifact, parsed once now so that a bad one is refused with its reason."""
        s = self.settings
        fmt = check_format(ts.format.strip())
        source = ts.WhichOneof("source")
        manifest = bytes(ts.manifest) or None
        if source is None:
            raise DyagError(
                "missing_test_set",
                "give a test set: a dataset id (its test split) or the "
                "content of a test file (eval or OpenAI chat JSONL)",
            )
        if source == "dataset_id":
            dataset = await self._dataset(ts.dataset_id.strip())
            artifact, fmt, manifest_ref = dataset_file(dataset, ts.split.strip())
            data = await asyncio.to_thread(self.rt.artifacts.get_bytes, artifact.digest)
            manifest = (
                await asyncio.to_thread(self.rt.artifacts.get_bytes, manifest_ref.digest) if manifest_ref else None
            )
            filename = artifact.name or f"{ts.split or 'test'}.{fmt}.jsonl"
            evalset = await asyncio.to_thread(parse, data, filename, fmt, manifest)
            ref = TestSetRef(
                artifact.digest,
                filename,
                fmt,
                manifest_ref.digest if manifest_ref else "",
                dataset.id,
                ts.split.strip() or "test",
                dataset.catalog,
                dataset.catalog_version,
            )
            return ref, evalset
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
            raise DyagError(
                "too_large",
                f"the test set has {len(data)} bytes; this evaluator accepts "
                f"{s.eval_max_test_set_bytes} (DYAG_EVAL_MAX_TEST_SET_BYTES)",
            )
        filename = safe_filename(ts.filename)
        evalset = await asyncio.to_thread(parse, data, filename, fmt, manifest)
        stored = await asyncio.to_thread(self.rt.artifacts.put_bytes, data, filename, "application/jsonl")
        manifest_digest = ""
        if manifest:
            manifest_digest = (
                await asyncio.to_thread(
                    self.rt.artifacts.put_bytes, manifest, filename + ".manifest.jsonl", "application/jsonl"
                )
            ).digest
        return TestSetRef(stored.digest, filename, fmt or evalset.source_format, manifest_digest), evalset

    async def _dataset(self, dataset_id: str) -> dataset_pb2.Dataset:
        if not dataset_id:
            raise DyagError("missing_test_set", "the dataset id is empty")
        try:
            return await self.peers.datasets().GetDataset(
                dataset_pb2.GetDatasetRequest(id=dataset_id), timeout=CHECK_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise DyagError(
                    "dataset_not_found",
                    f"dataset {dataset_id!r} not found: build one with "
                    "`dyag create_rag` (or POST /datasets) and use its id",
                ) from None
            raise DyagError(
                "unavailable",
                f"cannot read dataset {dataset_id!r}: dataset-builder at "
                f"{self.peers.address('dataset-builder')} answered {exc.code().name}: {exc.details()}",
            ) from None

    async def _check_target(self, spec: TargetSpec, notes: list[str]) -> tuple[str, str] | None:
        """A model or collection that does not exist is refused now; one behind a service that cannot be
        reached is not: its questions will be marked failed. Returns the rag collection's (catalog, version)."""
        if spec.kind == "gguf" and spec.artifact_digest:
            if not await asyncio.to_thread(self.rt.artifacts.exists, spec.artifact_digest):
                raise DyagError(
                    "artifact_not_found",
                    f"no GGUF {spec.artifact_digest} in the artifact store (an export's files are stored there by "
                    "model-exporter)",
                )
        if spec.kind in ("lora", "hybrid"):
            try:
                await self.peers.trainer().GetModel(
                    training_pb2.GetLoraModelRequest(id=spec.model), timeout=CHECK_TIMEOUT_S
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise DyagError(
                        "model_not_found",
                        f"LoRA model {spec.model!r} not found in gpu-lora-trainer's registry (see `dyag models`)",
                    ) from None
                notes.append(
                    "gpu-lora-trainer did not answer when the run was asked "
                    f"for ({exc.code().name}): model {spec.model} not checked"
                )
        if spec.kind in ("rag", "hybrid"):
            try:
                stats = await self.peers.rag().Stats(
                    rag_pb2.StatsRequest(collection=spec.collection), timeout=CHECK_TIMEOUT_S
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise DyagError(
                        "collection_not_found",
                        f"RAG collection {spec.collection!r} not found: index a catalog into "
                        f"it first (`dyag index_rag CATALOG --collection {spec.collection}`)",
                    ) from None
                notes.append(
                    "rag-service did not answer when the run was asked for "
                    f"({exc.code().name}): collection {spec.collection} not checked"
                )
                return None
            return (stats.catalog, stats.catalog_version) if stats.catalog else None
        return None

    async def _catalog(
        self, name: str, version: str, ref: TestSetRef, rag_catalog: tuple[str, str] | None, notes: list[str]
    ) -> dict[str, Any] | None:
        """The catalog the hallucination rules check against: the one asked for, else the dataset's, else the
        rag collection's. None (rules skipped, noted) when there is none or it cannot be read."""
        asked = bool(name)
        if not name and ref.catalog:
            name, version = ref.catalog, ref.catalog_version
        elif not name and rag_catalog:
            name, version = rag_catalog
        if not name:
            notes.append(
                "no catalog named (nor a dataset's or a collection's): the hallucination rules were not applied"
            )
            return None
        try:
            found = await self.peers.catalogs().GetCatalog(
                catalog_pb2.GetCatalogRequest(name=name, version=version), timeout=CHECK_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND and asked:
                raise DyagError(
                    "catalog_not_found",
                    f"catalog {name!r}{' version ' + version if version else ''} not found (see `dyag catalog list`)",
                ) from None
            notes.append(
                f"catalog {name} could not be read ({exc.code().name}: "
                f"{exc.details()}): the hallucination rules were not applied"
            )
            return None
        return {
            "name": found.name,
            "version": found.version,
            "artifact": found.artifact.digest,
            "entities": found.entity_count,
        }

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
        rows = await asyncio.to_thread(
            self.runs.list, request.target_kind, request.dataset_id, "", max(request.limit, 0) or 100
        )
        runs = [await self._run(r["id"]) if r["status"] not in FINAL else r for r in rows]
        if request.status:
            runs = [r for r in runs if r["status"] == request.status]
        return evaluation_pb2.ListRunsResponse(runs=[run_to_proto(r) for r in runs])

    async def _report_bytes(self, run: dict[str, Any], fmt: str) -> bytes:
        if fmt not in REPORTS:
            raise DyagError("invalid_format", f"unknown report format {fmt!r}; use json, md or html")
        if run["status"] != "succeeded":
            detail = f": {run['error']}" if run.get("error") else ""
            raise DyagError(
                "conflict",
                f"evaluation run {run['id']} is {run['status']}{detail}; its reports exist once it has succeeded",
            )
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

    async def _evaluation(self, run_id: str) -> EvaluationRun:
        """A succeeded run's results (results.json): run_not_found for an unknown id, conflict for one not done."""
        data = await self._report_bytes(await self._run(run_id), "json")
        return await asyncio.to_thread(lambda: EvaluationRun.from_dict(json.loads(data)))

    async def Compare(self, request, context):
        runs: list[EvaluationRun] = []
        ids: list[str] = []
        for run_id in request.run_ids:
            runs.append(await self._evaluation(run_id))
            ids.append(run_id)
        for i, document in enumerate(request.results, 1):
            try:
                data = nesting.loads(bytes(document), strict=False)  # a metric of nothing is NaN in results.json
            except nesting.TooDeep as exc:
                raise EvaluationError("bad_results", f"uploaded result {i}: {exc}") from None
            except ValueError as exc:
                raise EvaluationError("bad_results", f"uploaded result {i} is not JSON: {exc}") from None
            runs.append(EvaluationRun.from_dict(data))
            ids.append("")
        if not runs:
            raise EvaluationError("no_runs", "nothing to compare: give run ids (or result documents)")
        if not 0 <= request.baseline < len(runs):
            raise EvaluationError(
                "no_runs", f"baseline {request.baseline} is not one of the {len(runs)} runs (0 to {len(runs) - 1})"
            )
        size = request.catalog_size if request.HasField("catalog_size") else None
        title = request.title.strip() or "Rapport d'évaluation Dyag"
        notes = tuple(n.strip() for n in request.notes if n.strip())

        def render():
            comparison = compare_runs(runs, baseline=request.baseline, catalog_size=size)
            if notes:  # the caller's first: e.g. a target its pipeline could not evaluate, and why
                comparison = dataclasses.replace(comparison, warnings=(*notes, *comparison.warnings))
            return comparison, render_markdown(runs, comparison), render_html(runs, comparison, title=title)

        comparison, markdown, html = await asyncio.to_thread(render)
        data = comparison.to_dict()
        body = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        artifacts = [
            await asyncio.to_thread(self.rt.artifacts.put_bytes, body.encode(), "comparison.json", "application/json"),
            await asyncio.to_thread(
                self.rt.artifacts.put_bytes, markdown.encode(), "comparison.md", "text/markdown; charset=utf-8"
            ),
            await asyncio.to_thread(
                self.rt.artifacts.put_bytes, html.encode(), "comparison.html", "text/html; charset=utf-8"
            ),
        ]
        reply = evaluation_pb2.Comparison(
            run_ids=ids,
            names=[r.target.name for r in runs],
            baseline=request.baseline,
            recommended=comparison.recommended or "",
            recommendation=comparison.recommendation,
            same_test_set=comparison.same_test_set,
            warnings=list(comparison.warnings),
            markdown=markdown,
            html=html,
            artifacts=[a.to_proto() for a in artifacts],
        )
        reply.comparison.update(json.loads(body))
        return reply

    # -------------------------------------------------------------- Gate

    async def Gate(self, request, context):
        champion_id, challenger_id = request.champion_run_id.strip(), request.challenger_run_id.strip()
        missing = [
            name
            for name, value in (("champion_run_id", champion_id), ("challenger_run_id", challenger_id))
            if not value
        ]
        if missing:
            raise DyagError(
                "invalid_request", f"give {' and '.join(missing)}: the gate compares two succeeded evaluation runs"
            )
        t = request.thresholds
        thresholds = Thresholds(t.min_absolute, t.min_relative, t.min_accuracy)
        champion = await self._evaluation(champion_id)
        challenger = await self._evaluation(challenger_id)
        report = await asyncio.to_thread(
            gate, champion.results, challenger.results, list(request.changed_entity_ids), thresholds
        )
        return gate_to_proto(report, champion_id, challenger_id)


def subset_to_proto(s: SubsetComparison) -> evaluation_pb2.SubsetComparison:
    sig = s.significance
    return evaluation_pb2.SubsetComparison(
        name=s.name,
        questions=s.questions,
        entities=s.entities,
        champion_correct=s.champion_correct,
        challenger_correct=s.challenger_correct,
        champion_accuracy=s.champion_accuracy or 0.0,
        challenger_accuracy=s.challenger_accuracy or 0.0,
        delta=sig.delta if sig else 0.0,
        ci_low=sig.ci_low if sig else 0.0,
        ci_high=sig.ci_high if sig else 0.0,
        p_value=sig.p_value if sig else 0.0,
        test=sig.test if sig else "",
        significant=sig.significant if sig else False,
    )


def gate_to_proto(report: GateReport, champion_run_id: str, challenger_run_id: str) -> evaluation_pb2.GateReport:
    t = report.thresholds
    return evaluation_pb2.GateReport(
        promote=report.promote,
        decision=report.decision,
        reasons=list(report.reasons),
        changed=subset_to_proto(report.changed),
        unchanged=subset_to_proto(report.unchanged),
        overall=subset_to_proto(report.overall),
        champion_run_id=champion_run_id,
        challenger_run_id=challenger_run_id,
        thresholds=evaluation_pb2.GateThresholds(
            min_absolute=t.min_absolute, min_relative=t.min_relative, min_accuracy=t.min_accuracy
        ),
        changed_entity_ids=list(report.changed_entity_ids),
        summary=report.summary,
    )
