"""Event-triggered retraining, run by the gateway beside its pipelines.

    catalog.updated ──> trigger state (dedupe by version, debounce, coalesce) ──tick──> a challenger pipeline:
    build (incremental, the changed examples + a replay sample) · validate · train (from the champion's adapter) ·
    index · evaluate the challengers and the champion on the same test set (every question about the changed
    applications asked) · gate (evaluator's Gate) ──> the champion book: promoted, or rejected with the gate's reason

The champion book and the trigger state of a catalog are one KV record (store.py), so a decision is atomic. One
retraining per catalog at a time: a change that comes while one runs waits in `pending`, and starts the next.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from dyag.v1 import events_pb2
from dyag_core.errors import DyagError
from dyag_core.retraining import (
    ChampionError,
    LogEntry,
    ModelRef,
    PolicyError,
    RetrainingPolicy,
    abandon,
    finish,
    is_due,
    on_change,
    request,
    start,
)
from dyag_core.retraining.schedule import cron_matches
from dyag_gateway.errors import ApiError
from dyag_gateway.pipeline import FINE_TUNED_TARGETS, PipelineRequest, Pipelines
from dyag_gateway.retraining import lineage, serving
from dyag_gateway.retraining.store import BUCKET, CatalogRetraining, RetrainingStore
from dyag_runtime.events import EVENTS_STREAM, Envelope, EventBus, ProcessedEvents, event_subject
from dyag_runtime.jobs import TERMINAL
from dyag_runtime.peers import Peers

log = logging.getLogger(__name__)
CONSUMER = "gateway-retraining"
TICK_S = 1.0
STUCK_START_S = 300.0  # a start reserved by a gateway that stopped before it got its pipeline: queued again
RETRY_S = 60.0  # a retraining that could not start is tried again after this long
# What each approach is evaluated as in the challenger pipeline (hosted challengers: not yet).
TARGET_OF_APPROACH = {"rag": "rag", "grounded": "grounded", "lora": "fine_tuned", "hybrid": "hybrid"}


def ref_view(ref: ModelRef | None) -> dict[str, Any] | None:
    return ref.to_dict() | {"label": ref.label} if ref else None


def model_ref_message(ref: ModelRef | None) -> events_pb2.ModelRef | None:
    if ref is None:
        return None
    return events_pb2.ModelRef(
        kind=ref.kind,
        id=ref.id,
        catalog_version=ref.catalog_version,
        details={k: str(v) for k, v in ref.details.items()},
    )


class Retraining:
    """Policies, champions and the loop that keeps them current."""

    def __init__(
        self,
        bus: EventBus,
        store: RetrainingStore,
        pipelines: Pipelines,
        peers: Peers,
        grpc_timeout: float,
        upload_limit: int,
    ):
        self.bus, self.store, self.pipelines, self.peers = bus, store, pipelines, peers
        self.grpc_timeout, self.upload_limit = grpc_timeout, upload_limit
        self._tick_task: asyncio.Task | None = None
        self._last_minute = ""

    @classmethod
    async def start(cls, pipelines: Pipelines, peers: Peers, grpc_timeout: float, upload_limit: int) -> Retraining:
        bus = pipelines.bus
        self = cls(
            bus, RetrainingStore(await bus.key_value(BUCKET, history=5)), pipelines, peers, grpc_timeout, upload_limit
        )
        pipelines.runner.decisions = self  # the gate step writes its decision through this object
        await bus.consume(
            stream=EVENTS_STREAM,
            durable=CONSUMER,
            subject=event_subject("catalog.updated"),
            payload_type=events_pb2.CatalogUpdated,
            handler=self.on_catalog_updated,
            processed=await ProcessedEvents.open(bus, CONSUMER),
        )
        self._tick_task = asyncio.create_task(self._ticks(), name="retraining-ticks")
        return self

    async def close(self) -> None:
        if self._tick_task:
            self._tick_task.cancel()
            await asyncio.gather(self._tick_task, return_exceptions=True)

    # --- policies --------------------------------------------------------------------------------------------
    async def view(self, catalog: str) -> dict[str, Any]:
        record = await self.store.get(catalog)
        return {
            "catalog": catalog,
            "policy": record.policy.to_dict() if record.policy else None,
            "trigger": record.trigger.to_dict(),
            "champion": ref_view(record.book.champion),
            "aliases": {k: ref_view(v) for k, v in record.book.aliases.items()},
        }

    async def set_policy(self, catalog: str, options: dict[str, Any]) -> dict[str, Any]:
        try:
            policy = RetrainingPolicy.from_dict(options)
        except PolicyError as exc:
            raise ApiError(422, exc.code, exc.message) from None
        await self._catalog_version(catalog)  # 404 for a catalog that does not exist
        await self.store.mutate(catalog, lambda r: setattr(r, "policy", policy))
        return await self.view(catalog)

    async def remove_policy(self, catalog: str) -> dict[str, Any]:
        await self._catalog_version(catalog)  # 404 for a catalog that does not exist: no record made for it
        await self.store.mutate(catalog, lambda r: setattr(r, "policy", None))
        return await self.view(catalog)

    async def retrain(self, catalog: str, by: str) -> dict[str, Any]:
        """A manual start: what is pending (or the current version, against the champion) as soon as nothing runs."""
        version = await self._catalog_version(catalog)

        def ask(record: CatalogRetraining) -> None:
            if record.policy is None:
                raise ApiError(
                    409,
                    "no_policy",
                    f"catalog {catalog} has no retraining policy: set one first (PUT /catalogs/{catalog}/retraining)",
                )
            champion = record.book.champion
            request(
                record.trigger,
                version=version,
                from_version=champion.catalog_version if champion else "",
                now=time.time(),
            )
            assert record.trigger.pending is not None
            record.trigger.pending.reason = f"requested by {by}"

        await self.store.mutate(catalog, ask)
        await self.tick_catalog(catalog)
        return await self.view(catalog)

    async def _catalog_version(self, catalog: str) -> str:
        return (await self.peers.catalog_version(catalog)).version

    # --- champions -------------------------------------------------------------------------------------------
    async def champion(self, catalog: str) -> dict[str, Any]:
        book = (await self.store.get(catalog)).book
        return {
            "catalog": catalog,
            "aliases": {k: ref_view(v) for k, v in book.aliases.items()},
            "candidates": [e.to_dict() for e in book.candidates()],
            "log": [e.to_dict() for e in reversed(book.log)],
        }

    async def set_champion(self, catalog: str, target: dict[str, Any], reason: str, by: str) -> dict[str, Any]:
        try:
            ref = ModelRef.from_dict(target)
        except ChampionError as exc:
            raise ApiError(422, exc.code, exc.message) from None
        await self._catalog_version(catalog)
        _, entry = await self.store.mutate(
            catalog, lambda r: r.book.promote(ref, reason=reason or "set by hand", by=by, at=time.time())
        )
        await self._emit_decision("model.promoted", catalog, entry)
        return await self.champion(catalog)

    async def rollback(self, catalog: str, to: str, reason: str, by: str) -> dict[str, Any]:
        _, entry = await self._book_change(catalog, lambda r: r.book.rollback(to, reason=reason, by=by, at=time.time()))
        await self._emit_decision("model.rolled_back", catalog, entry)
        return await self.champion(catalog)

    async def _book_change(self, catalog: str, change: Any) -> tuple[CatalogRetraining, LogEntry]:
        """A change of the champion book asked through the API: a refusal is a 409 naming why."""
        try:
            return await self.store.mutate(catalog, change)
        except ChampionError as exc:
            raise ApiError(409, exc.code, exc.message) from None

    async def ask(self, catalog: str, question: str) -> dict[str, Any]:
        champion = (await self.store.get(catalog)).book.champion  # read on every question: no restart to switch
        return await serving.ask(self.peers, catalog, champion, question, timeout=self.grpc_timeout * 4)

    async def lineage(self, catalog: str) -> dict[str, Any]:
        record = await self.store.get(catalog)
        pipelines = {}
        for entry in record.book.log:
            pipeline_id = entry.evidence.get("pipeline_id")
            if pipeline_id and pipeline_id not in pipelines:
                try:
                    pipelines[pipeline_id] = await self.pipelines.get(pipeline_id)
                except ApiError:
                    pass
        return lineage.graph(catalog, record.book, pipelines)

    # --- decisions, from the pipeline's gate step -------------------------------------------------------------
    async def decide(
        self,
        catalog: str,
        *,
        promote: bool,
        target: ModelRef,
        reason: str,
        evidence: dict[str, Any],
        report: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record the gate's decision (once per pipeline: a resumed gate step finds its decision already there)."""
        pipeline_id = evidence.get("pipeline_id", "")

        def apply(record: CatalogRetraining) -> LogEntry:
            done = next(
                (
                    e
                    for e in record.book.log
                    if e.action in ("promoted", "rejected")
                    and e.evidence.get("pipeline_id") == pipeline_id
                    and pipeline_id
                ),
                None,
            )
            if done is not None:
                return done
            now = time.time()
            if promote:
                return record.book.promote(target, reason=reason, evidence=evidence, by="retraining", at=now)
            return record.book.reject(target, reason=reason, evidence=evidence, by="retraining", at=now)

        _, entry = await self.store.mutate(catalog, apply)
        await self._emit_decision(
            "model.promoted" if entry.action == "promoted" else "model.rejected", catalog, entry, report
        )
        return entry.to_dict()

    async def propose(self, catalog: str, target: ModelRef, pipeline_id: str) -> None:
        await self.store.mutate(
            catalog,
            lambda r: r.book.propose(
                target,
                reason="under evaluation",
                evidence={"pipeline_id": pipeline_id},
                by="retraining",
                at=time.time(),
            ),
        )

    async def report_stale(
        self,
        catalog: str,
        version: str,
        champion: ModelRef,
        questions: int,
        wrong: int,
        run_id: str,
        correlation_id: str,
    ) -> None:
        await self.bus.emit(
            "model.stale",
            events_pb2.ModelStale(
                catalog=catalog,
                version=version,
                champion=model_ref_message(champion),
                questions=questions,
                wrong=wrong,
                evaluation_run_id=run_id,
            ),
            subject=catalog,
            correlation_id=correlation_id,
        )

    async def _emit_decision(
        self, event_type: str, catalog: str, entry: LogEntry, report: dict[str, Any] | None = None
    ) -> None:
        report = report or {}
        message = events_pb2.ModelDecision(
            catalog=catalog,
            target=model_ref_message(entry.target),
            replaced=model_ref_message(entry.replaced),
            reason=entry.reason,
            by=entry.by,
            log_seq=entry.seq,
            pipeline_id=entry.evidence.get("pipeline_id", ""),
            evaluation_run_ids=list(entry.evidence.get("evaluation_run_ids") or ()),
        )
        for subset in ("changed", "unchanged"):
            if report.get(subset):
                part = report[subset]
                getattr(message, subset).CopyFrom(
                    events_pb2.GateSubset(
                        questions=int(part.get("questions") or 0),
                        champion_accuracy=float(part.get("champion_accuracy") or 0),
                        challenger_accuracy=float(part.get("challenger_accuracy") or 0),
                        delta=float(part.get("delta") or 0),
                        ci_low=float(part.get("ci_low") or 0),
                        ci_high=float(part.get("ci_high") or 0),
                    )
                )
        try:
            await self.bus.emit(event_type, message, subject=catalog)
        except Exception as exc:  # the decision is stored; a lost event must not undo it
            log.warning("could not publish %s", event_type, extra={"catalog": catalog, "error": str(exc)})

    # --- the loop ------------------------------------------------------------------------------------------------
    async def on_catalog_updated(self, envelope: Envelope) -> None:
        event: events_pb2.CatalogUpdated = envelope.data  # type: ignore[assignment]
        record = await self.store.get(event.name)
        if record.policy is None:
            return  # this catalog is not retrained

        def record_change(r: CatalogRetraining) -> str:
            if r.policy is None:
                return "no policy"
            return on_change(
                r.trigger,
                r.policy,
                version=event.version,
                previous_version=event.previous_version,
                added=list(event.added),
                changed=list(event.changed),
                removed=list(event.removed),
                now=time.time(),
            )

        _, what = await self.store.mutate(event.name, record_change)
        log.info("catalog.updated: %s", what, extra={"catalog": event.name, "version": event.version})
        if what in ("queued", "coalesced"):
            await self.tick_catalog(event.name)

    async def _ticks(self) -> None:
        while True:
            try:
                await self._scheduled()
                for catalog in await self.store.catalogs():
                    await self.tick_catalog(catalog)
            except asyncio.CancelledError:
                raise
            except Exception:  # a tick must never stop the loop
                log.exception("retraining tick failed")
            await asyncio.sleep(TICK_S)

    async def _scheduled(self) -> None:
        """Scheduled policies whose cron fires this minute: a start, once per minute."""
        now = datetime.now(UTC)
        minute = now.strftime("%Y-%m-%dT%H:%M")
        if minute == self._last_minute:
            return
        self._last_minute = minute
        for catalog in await self.store.catalogs():
            record = await self.store.get(catalog)
            if record.policy and record.policy.trigger == "schedule" and cron_matches(record.policy.schedule, now):
                try:
                    await self.retrain(catalog, by=f"schedule {record.policy.schedule}")
                except (ApiError, DyagError) as exc:
                    log.warning("scheduled retraining not started", extra={"catalog": catalog, "error": str(exc)})

    async def tick_catalog(self, catalog: str) -> None:
        """End the running retraining if its pipeline ended; start the pending one if it is due."""
        record = await self.store.get(catalog)
        running = record.trigger.running
        if running:
            await self._check_running(catalog, running)
            return
        if record.policy is None or not is_due(record.trigger, record.policy, time.time()):
            return
        correlation_id = uuid.uuid4().hex
        reservation = f"starting:{correlation_id}"

        def reserve(r: CatalogRetraining) -> Any:
            if r.policy is None or r.trigger.running or not is_due(r.trigger, r.policy, time.time()):
                return None  # another gateway, or another tick, came first
            return start(r.trigger, reservation, time.time())

        record, change = await self.store.mutate(catalog, reserve)
        if change is None:
            return
        try:
            pipeline = await self._start_challenger(catalog, record, change, correlation_id)
        except (ApiError, DyagError) as exc:
            await self._abandon(catalog, reservation, f"the retraining could not start: {exc.message}")
            return

        def started(r: CatalogRetraining) -> None:
            if r.trigger.running and r.trigger.running.get("pipeline_id") == reservation:
                r.trigger.running["pipeline_id"] = pipeline["id"]

        await self.store.mutate(catalog, started)

    async def _abandon(self, catalog: str, pipeline_id: str, error: str) -> None:
        log.warning("retraining abandoned", extra={"catalog": catalog, "pipeline_id": pipeline_id, "error": error})
        await self.store.mutate(
            catalog, lambda r: abandon(r.trigger, pipeline_id, error=error, retry_at=time.time() + RETRY_S)
        )

    async def _check_running(self, catalog: str, running: dict[str, Any]) -> None:
        pipeline_id = running.get("pipeline_id", "")
        if pipeline_id.startswith("starting:"):
            if time.time() - float(running.get("started_at") or 0) > STUCK_START_S:
                await self._abandon(catalog, pipeline_id, "the gateway stopped while starting it")
            return
        try:
            status = (await self.pipelines.get(pipeline_id))["status"]
        except ApiError:
            status = "failed"  # the pipeline record is gone
        if status in TERMINAL:
            await self.store.mutate(catalog, lambda r: finish(r.trigger, pipeline_id))

    async def _start_challenger(
        self, catalog: str, record: CatalogRetraining, change: Any, correlation_id: str
    ) -> dict[str, Any]:
        policy, champion = record.policy, record.book.champion
        assert policy is not None
        targets = [TARGET_OF_APPROACH[a] for a in policy.approaches if a in TARGET_OF_APPROACH]
        if not targets:
            raise DyagError(
                "no_approach",
                f"none of the approaches {', '.join(policy.approaches)} can be evaluated "
                f"by a pipeline yet (rag, grounded, lora and hybrid can)",
            )
        skip = [] if FINE_TUNED_TARGETS & set(targets) else ["train"]
        body: dict[str, Any] = {
            "catalog": catalog,
            "catalog_version": change.version,
            "targets": targets,
            "skip": skip,
            "name": f"retraining {catalog} {change.from_version or '∅'} → {change.version}",
            "training_config": dict(policy.training),
            "max_eval_questions": policy.max_eval_questions,
        }
        if policy.max_training_steps:
            body["max_steps"] = policy.max_training_steps
        retraining = {
            "champion": champion.to_dict() if champion else None,
            "changed": change.asked_about(),
            "removed": sorted(change.removed),
            "from_version": change.from_version,
            "thresholds": policy.to_dict()["thresholds"],
            "replay_fraction": policy.replay_fraction,
            "reason": change.reason,
        }
        pipeline = await self.pipelines.create(
            PipelineRequest(**body),
            upload_limit=self.upload_limit,
            correlation_id=correlation_id,
            retraining=retraining,
        )
        await self.bus.emit(
            "retraining.started",
            events_pb2.RetrainingStarted(
                catalog=catalog,
                from_version=change.from_version,
                version=change.version,
                changed_entities=change.asked_about(),
                removed_entities=sorted(change.removed),
                pipeline_id=pipeline["id"],
                reason=retraining["reason"],
                approaches=list(policy.approaches),
            ),
            subject=catalog,
            correlation_id=correlation_id,
        )
        return pipeline
