"""The evaluation.run job: every question asked of the target (concurrently; a failed call marks its question
failed, never the run), each answer kept in the job's work folder (a restarted job asks only what is left), an
optional LLM judge, scores from dyag_core.evaluation, results.json / report.md / report.html as artifacts, the
run's figures recorded and evaluation.completed published."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from dyag.v1 import evaluation_pb2
from dyag_core.dataset.model import DEFAULT_SYSTEM_PROMPT
from dyag_core.errors import DyagError
from dyag_core.evaluation import EvalCase, EvaluationRun, Response, evaluate, render_html, render_markdown
from dyag_evaluator import judge as judging
from dyag_evaluator.records import REPORTS, now_rfc3339, run_record
from dyag_evaluator.runs import RunStore
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
from dyag_evaluator.testsets import TestSetRef, parse, sample
from dyag_runtime.artifacts import Artifact
from dyag_runtime.jobs import JobCancelled, JobContext
from dyag_runtime.peers import Peers, read_catalog
from dyag_runtime.server import Runtime

log = logging.getLogger(__name__)

EVALUATE = "evaluation.run"


def _summary(run: EvaluationRun) -> dict[str, Any]:
    o, lat, use = run.overall, run.latency, run.usage
    return {
        "accuracy": o.accuracy,
        "precision": o.precision,
        "recall": o.recall,
        "f1_score": o.f1_score,
        "average_generation_time_ms": lat.mean,
        "questions": o.n,
        "correct": o.correct,
        "failed": o.failed,
        "errors": o.n - o.correct,
        "exact_match": o.exact_match,
        "fact_accuracy": o.fact_accuracy,
        "semantic_similarity": o.similarity,
        "hallucination_rate": o.hallucination_rate,
        "abstention_rate": o.abstention_rate,
        "judge_score": o.judge_score,
        "latency_p50_ms": lat.p50,
        "latency_p95_ms": lat.p95,
        "prompt_tokens": use.prompt_tokens,
        "completion_tokens": use.completion_tokens,
        "cost_usd": use.cost_usd,
        "cost_per_1000_questions_usd": use.cost_per_1000_questions_usd,
    }


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

    def gguf_file(self, spec: TargetSpec) -> Path:
        """A gguf target's file from the artifact store, kept in the evaluator's data folder (one copy per digest:
        the next run of the same export reads it again)."""
        folder = self.settings.data_dir / "gguf"
        path = folder / f"{spec.artifact_digest.removeprefix('sha256:')}.gguf"
        if not path.is_file():
            partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.part")
            self.rt.artifacts.fetch(spec.artifact_digest, partial)
            os.replace(partial, path)  # atomic: a run beside this one fetches its own part file
        return path

    def answerer(
        self, spec: TargetSpec, p: dict[str, Any], executor: ThreadPoolExecutor, gguf: Path | None = None
    ) -> Answerer:
        s = self.settings
        common = {"max_tokens": int(p["max_tokens"]), "temperature": float(p["temperature"])}
        if spec.kind == "gguf":
            from dyag_llm.factory import open_chat_model

            answerer = ChatAnswerer(open_chat_model(f"gguf:{gguf or spec.model}"), executor, **common)
            if gguf is not None:
                answerer.answered_by = spec.model_spec()  # the export's file, not the evaluator's copy of it
            return answerer
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
            return GenerateAnswerer(
                self.peers.trainer(),
                self.peers.address("gpu-lora-trainer"),
                model_id=spec.model if spec.kind == "lora" else "",
                base_model=spec.model if spec.kind == "base" else "",
                batch_size=s.eval_generate_batch,
                timeout=timeout,
                **common,
            )
        rag = RagAnswerer(
            self.peers.rag(),
            self.peers.address("rag-service"),
            collection=spec.collection,
            n_chunks=spec.n_chunks,
            llm=spec.llm,
            timeout=timeout,
            mode=spec.rag_mode,
            **common,
        )
        if spec.kind == "rag":
            return rag
        generate = GenerateAnswerer(
            self.peers.trainer(),
            self.peers.address("gpu-lora-trainer"),
            model_id=spec.model,
            batch_size=s.eval_generate_batch,
            timeout=timeout,
            **common,
        )
        return HybridAnswerer(rag, generate)

    async def _evaluate(self, ctx: JobContext) -> dict[str, Any]:
        p, s = ctx.params, self.settings
        spec = TargetSpec.from_dict(p["target"])
        ref = TestSetRef.from_dict(p["test_set"])
        ctx.progress(0.0, "loading the test set")
        data = await asyncio.to_thread(self.rt.artifacts.get_bytes, ref.digest)
        manifest = None
        if ref.manifest_digest:
            manifest = await asyncio.to_thread(self.rt.artifacts.get_bytes, ref.manifest_digest)
        evalset = await asyncio.to_thread(parse, data, ref.filename, ref.format, manifest)
        focus = tuple(p.get("focus_entity_ids") or ())
        cases = sample(evalset.cases, int(p.get("max_questions") or 0), int(p.get("seed") or 0), focus)
        catalog = None
        if p.get("catalog"):
            ctx.progress(0.01, "loading the catalog")
            catalog = await read_catalog(self.rt.artifacts, p["catalog"]["artifact"])
        system_prompt = p.get("system_prompt") or ("" if spec.kind in ("rag", "hybrid") else DEFAULT_SYSTEM_PROMPT)
        concurrency = int(p["concurrency"])
        ctx.log(
            f"{p['name']}: {len(cases)} questions ({ref.filename}, {evalset.source_format}) for {spec.label()}, "
            f"{concurrency} in flight"
        )
        gguf = None
        if spec.kind == "gguf" and spec.artifact_digest:
            ctx.progress(0.02, f"fetching the GGUF {spec.model} from the artifact store")
            gguf = await asyncio.to_thread(self.gguf_file, spec)
        started = now_rfc3339()
        with ThreadPoolExecutor(max_workers=max(concurrency, 1), thread_name_prefix="eval") as executor:
            answerer = self.answerer(spec, p, executor, gguf)
            try:
                responses, breaker = await self._ask(ctx, answerer, cases, system_prompt, concurrency)
            finally:
                await answerer.close()
            judge_note = ""
            if p.get("judge_model"):
                responses, judge_note = await self._judge(ctx, p["judge_model"], cases, responses, executor)

        ctx.progress(0.9, "scoring")
        if p.get("skip_similarity"):
            embed, embedder = None, "semantic similarity not asked (skip_similarity)"
        else:
            embed, embedder = await asyncio.to_thread(open_similarity, s.eval_embedder)
        meta = {
            "run_id": ctx.job_id,
            "name": p["name"],
            "dataset_id": ref.dataset_id,
            "split": ref.split,
            "test_set_format": evalset.source_format,
            "test_set_has_provenance": evalset.has_provenance,
            "questions_in_test_set": len(evalset),
            "max_questions": p.get("max_questions") or 0,
            "seed": p.get("seed") or 0,
            "focus_entity_ids": list(focus),
            "concurrency": concurrency,
            "answered_by": answerer.answered_by or spec.model_spec(),
            "latency": "per question"
            if answerer.batch_size == 1
            else f"Generate batch time / batch size (batches of {answerer.batch_size})",
            "embedder": embedder,
            "judge_model": p.get("judge_model") or "",
            "judge": judge_note,
            "catalog": p.get("catalog"),
            "target": spec.to_dict(),
            "labels": p.get("labels") or {},
            "notes": list(p.get("notes") or []) + ([breaker] if breaker else []),
            "started_at": started,
            "finished_at": "",
        }
        target = spec.core_target(p["name"], answerer.answered_by)
        test_set_label = f"{ref.filename} ({ref.dataset_id})" if ref.dataset_id else ref.filename

        def score(embed_fn):
            return evaluate(
                cases,
                responses,
                target=target,
                catalog=catalog,
                embed=embed_fn,
                prices=s.prices(),
                test_set=test_set_label,
                meta=meta,
            )

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
        texts = await asyncio.to_thread(
            lambda: {"json": run.to_json(), "md": render_markdown(run), "html": render_html(run, title=title)}
        )
        artifacts: list[Artifact] = []
        for fmt, text in texts.items():
            name, media = REPORTS[fmt]
            artifact = await asyncio.to_thread(self.rt.artifacts.put_bytes, text.encode(), name, media)
            artifacts.append(ctx.add_artifact(artifact))

        summary = _summary(run)
        errors = run.errors
        refs = [a.to_dict() for a in artifacts]
        await asyncio.to_thread(
            self._mark,
            ctx.job_id,
            status="succeeded",
            summary=summary,
            artifacts=refs,
            model=run.target.model,
            test_set_fingerprint=run.test_set_fingerprint,
            finished_at=meta["finished_at"],
        )
        await self._emit(ctx, p, spec, run, summary, artifacts, ref)
        o = run.overall
        ctx.log(
            f"{p['name']}: accuracy {o.accuracy:.1%} ({o.correct}/{o.n}), F1 {o.f1_score:.1%}, {o.failed} failed calls"
        )
        return {
            "run_id": ctx.job_id,
            "name": p["name"],
            # the guide's step 6.2 / 6.3 fields (errors: the first eval_errors_in_result; results.json holds them all)
            "accuracy": o.accuracy,
            "precision": o.precision,
            "recall": o.recall,
            "f1_score": o.f1_score,
            "average_generation_time_ms": run.latency.mean,
            "errors": errors[: s.eval_errors_in_result],
            "errors_total": len(errors),
            "summary": summary,
            "target": spec.to_dict(),
            "approach": spec.approach,
            "model": run.target.model,
            "test_set": {
                "name": test_set_label,
                "fingerprint": run.test_set_fingerprint,
                "questions": o.n,
                "dataset_id": ref.dataset_id,
            },
            "reports": {fmt: a.digest for fmt, a in zip(texts, artifacts, strict=True)},
            "notes": meta["notes"],
        }

    async def _ask(
        self, ctx: JobContext, answerer: Answerer, cases: tuple[EvalCase, ...], system_prompt: str, concurrency: int
    ) -> tuple[list[Response], str]:
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
        state: dict[str, Any] = {
            "unreachable": 0,
            "answered": False,
            "tripped": "",
            "failed": sum(r.error is not None for r in done.values()),
        }
        began = time.monotonic()
        out = open(path, "a", encoding="utf-8")

        def report() -> None:
            n = len(done)
            rate = (n - initial) / (time.monotonic() - began) if n > initial else 0.0
            step = f"answering {n}/{total}" + (f" ({state['failed']} failed)" if state["failed"] else "")
            ctx.progress(
                0.02 + 0.86 * n / max(total, 1),
                step,
                answered=n,
                total=total,
                failed=state["failed"],
                questions_per_second=round(rate, 3),
            )

        initial = len(done)

        async def one(batch: list[int]) -> None:
            async with gate:
                ctx.check_cancelled()
                batch_cases = [cases[i] for i in batch]
                if state["tripped"]:
                    responses = [Response.failed(f"non posée : {state['tripped']}") for _ in batch]
                else:
                    try:
                        responses = await asyncio.wait_for(
                            answerer.answer(batch_cases, system_prompt), s.eval_request_timeout_s * max(1, len(batch))
                        )
                    except Unreachable as exc:
                        reason = f"cible injoignable : {exc}"
                        responses = [Response.failed(reason) for _ in batch]
                        state["unreachable"] += 1
                        if (
                            not state["answered"]
                            and state["unreachable"] >= s.eval_unreachable_after
                            and not state["tripped"]
                        ):
                            state["tripped"] = (
                                f"la cible n'a pas répondu à {state['unreachable']} appels de suite ({exc})"
                            )
                            ctx.log(f"target unreachable, the remaining questions are marked failed: {exc}", "warning")
                    except TimeoutError:
                        reason = f"pas de réponse en {s.eval_request_timeout_s:.0f} s"
                        responses = [Response.failed(reason) for _ in batch]
                    except DyagError as exc:
                        responses = [Response.failed(exc.message) for _ in batch]
                    else:
                        if any(r.error is None for r in responses):
                            state["answered"], state["unreachable"] = True, 0
                    if len(responses) != len(batch):
                        reason = f"the target gave {len(responses)} answers for {len(batch)} questions"
                        responses = [Response.failed(reason) for _ in batch]
                for i, response in zip(batch, responses, strict=True):
                    done[i] = response
                    state["failed"] += response.error is not None
                    kept = {"i": i, "id": cases[i].id, "response": asdict(response)}
                    out.write(json.dumps(kept, ensure_ascii=False) + "\n")
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

    async def _judge(
        self,
        ctx: JobContext,
        spec: str,
        cases: tuple[EvalCase, ...],
        responses: list[Response],
        executor: ThreadPoolExecutor,
    ) -> tuple[list[Response], str]:
        """Each answer's judge score (0..1). A judge that fails leaves the score empty; never the run."""
        from dyag_llm.base import LLMError, LLMSettings
        from dyag_llm.factory import open_chat_model

        try:
            llm = LLMSettings().model_copy(update={"request_timeout_s": self.settings.eval_request_timeout_s})
            chat = open_chat_model(spec, llm)
        except LLMError as exc:
            ctx.log(f"LLM judge {spec} unavailable: {exc.message}", "warning")
            return responses, f"juge {spec} indisponible : {exc.message}"
        loop = asyncio.get_running_loop()
        todo = [i for i, r in enumerate(responses) if r.error is None and r.text.strip()]
        scored, failures = list(responses), 0

        async def grade(i: int) -> None:
            nonlocal failures
            try:
                result = await loop.run_in_executor(
                    executor,
                    lambda: chat.chat(
                        judging.judge_messages(cases[i], responses[i].text), max_tokens=8, temperature=0.0
                    ),
                )
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

    async def _emit(
        self,
        ctx: JobContext,
        p: dict[str, Any],
        spec: TargetSpec,
        run: EvaluationRun,
        summary: dict[str, Any],
        artifacts: list[Artifact],
        ref: TestSetRef,
    ) -> None:
        catalog = p.get("catalog") or {}
        event = evaluation_pb2.EvaluationCompleted(
            run_id=ctx.job_id,
            name=p["name"],
            target=spec.to_proto(),
            approach=spec.approach,
            model=run.target.model,
            test_set=run.test_set,
            test_set_fingerprint=run.test_set_fingerprint,
            dataset_id=ref.dataset_id,
            catalog=catalog.get("name", ""),
            catalog_version=catalog.get("version", ""),
            artifacts=[a.to_proto() for a in artifacts],
            labels=p.get("labels") or {},
        )
        json_format.ParseDict(summary, event.summary)
        try:  # the run is done and recorded: an event lost to a NATS hiccup must not fail (or hold) the job
            await asyncio.wait_for(
                self.rt.bus.emit("evaluation.completed", event, subject=ctx.job_id, correlation_id=ctx.correlation_id),
                15,
            )
        except Exception as exc:
            log.warning("could not publish evaluation.completed", extra={"job_id": ctx.job_id, "error": repr(exc)})
