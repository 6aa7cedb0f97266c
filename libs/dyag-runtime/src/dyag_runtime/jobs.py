"""Durable asynchronous jobs.

- The record of each job lives in a JetStream KV bucket ("jobs_<service>"), shared by the
  service's replicas and kept across restarts.
- Running a job is a message on the JetStream work queue "dyag.jobs.<service>". A worker holds it,
  unacknowledged, while the job runs, and heart-beats. A worker that dies stops heart-beating, so
  JetStream redelivers the message once `ack_wait` passes: the job is resumed (the handler can pick up
  its checkpoints in `ctx.workdir`) or, after `max_attempts`, reported failed. Never silently lost.
- A redelivered request for a job that already ended is acknowledged and not run again.
- Every change is published as a `job.<status>` / `job.progress` event for the gateway's stream.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from nats.js.errors import InvalidKeyError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from dyag.v1 import events_pb2, jobs_pb2
from dyag_runtime.artifacts import Artifact, ArtifactStore
from dyag_runtime.events import (
    JOBS_STREAM,
    TRANSIENT,
    Envelope,
    EventBus,
    Redeliver,
    job_subject,
    now_rfc3339,
    through_failover,
)
from dyag_runtime.idempotency import request_key

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
STARTED, RESUMED = "started", "resumed after a restart"  # the step of a job that has just begun
_STATUS_PROTO = {
    QUEUED: jobs_pb2.JOB_STATUS_QUEUED,
    RUNNING: jobs_pb2.JOB_STATUS_RUNNING,
    SUCCEEDED: jobs_pb2.JOB_STATUS_SUCCEEDED,
    FAILED: jobs_pb2.JOB_STATUS_FAILED,
    CANCELLED: jobs_pb2.JOB_STATUS_CANCELLED,
}
STATUS_NAMES = {v: k for k, v in _STATUS_PROTO.items()}
MAX_LOG_LINES = 200


class JobNotFound(KeyError):
    pass


class _Taken(Exception):
    """The job changed hands between reading its record and starting it."""


class JobLost(Exception):
    """This worker does not own the job any more: it could not heart-beat for ack_wait, so another worker took it
    over (or it ended). It stops without writing anything to the record: the new owner's writes are the truth."""


def owned_by(owner: str, change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """`change`, applied only while `owner` still owns the running job (fencing for JobStore.mutate)."""

    def guarded(record: dict[str, Any]) -> None:
        if record["owner"] != owner or record["status"] in TERMINAL:
            raise JobLost(record["id"])
        change(record)

    return guarded


class JobCancelled(Exception):
    """Raised inside a handler when the job was cancelled; the worker records it as cancelled."""


def new_record(service: str, kind: str, params: dict[str, Any], correlation_id: str) -> dict[str, Any]:
    now = time.time()
    return {
        "id": f"{service}-{uuid.uuid4().hex[:16]}",
        "service": service,
        "kind": kind,
        "status": QUEUED,
        "progress": {"fraction": 0.0, "step": "queued", "eta_seconds": -1.0, "metrics": {}},
        "params": params,
        "result": {},
        "artifacts": [],
        "error": "",
        "correlation_id": correlation_id,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "cancel_requested": False,
        "owner": "",
        "heartbeat_at": 0.0,
        "logs": [],
    }


def record_to_proto(record: dict[str, Any]) -> jobs_pb2.Job:
    job = jobs_pb2.Job(
        id=record["id"],
        service=record["service"],
        kind=record["kind"],
        status=_STATUS_PROTO[record["status"]],
        error=record["error"],
        correlation_id=record["correlation_id"],
        attempts=record["attempts"],
        cancel_requested=record["cancel_requested"],
    )
    progress = record["progress"]
    job.progress.fraction = progress["fraction"]
    job.progress.step = progress["step"]
    job.progress.eta_seconds = progress["eta_seconds"]
    job.progress.metrics.update(progress.get("metrics", {}))
    job.params.update(record["params"])
    job.result.update(record["result"])
    job.artifacts.extend(jobs_pb2.ArtifactRef(**a) for a in record["artifacts"])
    job.created_at.FromNanoseconds(int(record["created_at"] * 1e9))
    job.updated_at.FromNanoseconds(int(record["updated_at"] * 1e9))
    return job


def proto_to_dict(job: jobs_pb2.Job) -> dict[str, Any]:
    """The JSON shape the gateway and CLI show."""
    data = json_format.MessageToDict(job, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    data["status"] = STATUS_NAMES.get(job.status, "unknown")
    for key in ("params", "result"):  # protobuf Struct keeps every number as a double
        data[key] = _whole_numbers(data.get(key, {}))
    return data


def _whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


class JobStore:
    """Job records in a KV bucket; every change is a compare-and-set, so replicas never overwrite each other."""

    def __init__(self, kv: KeyValue, bus: EventBus, service: str):
        self.kv, self.bus, self.service = kv, bus, service

    @classmethod
    async def open(cls, bus: EventBus, service: str) -> JobStore:
        return cls(await bus.key_value(f"jobs_{service}"), bus, service)

    async def submit(
        self, kind: str, params: dict[str, Any], correlation_id: str = "", *, key: str | None = None
    ) -> dict[str, Any]:
        """A new job, queued. With an idempotency key (by default the calling request's, see dyag_runtime.idempotency)
        a job submitted again under the same key is the first one, re-queued in case its request was lost."""
        key = request_key.get() if key is None else key
        record = new_record(self.service, kind, params, correlation_id or uuid.uuid4().hex)
        if key:
            digest = hashlib.sha256(f"{kind} {key}".encode()).hexdigest()
            record["id"] = f"{self.service}-{digest[:16]}"
        try:
            await through_failover(lambda: self.kv.create(record["id"], _encode(record)), f"job {record['id']}")
        except KeyWrongLastSequenceError:
            existing = await self.get(record["id"])
            if not key and existing["created_at"] != record["created_at"]:
                raise
            # The same request again (or this create, retried after a lost answer): its job, not a second one.
            record = existing
            log.info("job submitted again: the same job", extra={"job_id": record["id"], "status": record["status"]})
            if record["status"] != QUEUED:
                return record
            await self._request(record)  # dropped as a duplicate by JetStream if the first one went out
            return record
        await self._request(record)
        await self._emit(record)
        return record

    async def _request(self, record: dict[str, Any]) -> None:
        request = Envelope(
            type="job.requested",
            source=self.service,
            data=events_pb2.JobRequested(job_id=record["id"], kind=record["kind"]),
            subject=record["id"],
            correlation_id=record["correlation_id"],
            id=record["id"],  # one request per job: a re-publish is dropped by JetStream
        )
        await self.bus.publish(request, subject=job_subject(self.service))

    async def get(self, job_id: str) -> dict[str, Any]:
        try:
            entry = await through_failover(lambda: self.kv.get(job_id), f"job {job_id}")
        except (KeyNotFoundError, InvalidKeyError, ValueError):  # an id no key can have (é, a space…): no such job
            raise JobNotFound(job_id) from None
        return json.loads(entry.value)

    async def list(self, kind: str = "", status: str = "", limit: int = 100) -> list[dict[str, Any]]:
        try:
            keys = await through_failover(self.kv.keys, f"jobs of {self.service}")
        except Exception:  # nats-py raises NoKeysError on an empty bucket
            return []
        limiter = asyncio.Semaphore(32)  # reads in parallel: one round trip per job, not one after another

        async def read(key: str) -> dict[str, Any] | None:
            async with limiter:
                try:
                    return await self.get(key)
                except JobNotFound:
                    return None  # deleted since keys() was read

        records = [
            r
            for r in await asyncio.gather(*(read(k) for k in keys))
            if r is not None and (not kind or r["kind"] == kind) and (not status or r["status"] == status)
        ]
        records.sort(key=lambda r: r["created_at"], reverse=True)
        return records[:limit]

    async def mutate(
        self, job_id: str, change: Callable[[dict[str, Any]], None], *, emit: bool = True
    ) -> dict[str, Any]:
        for _ in range(50):
            try:
                entry = await through_failover(lambda: self.kv.get(job_id), f"job {job_id}")
            except (KeyNotFoundError, InvalidKeyError):
                raise JobNotFound(job_id) from None
            record = json.loads(entry.value)
            before = record["status"], record["progress"]
            change(record)
            record["updated_at"] = time.time()
            try:
                update = functools.partial(self.kv.update, job_id, _encode(record), last=entry.revision)
                await through_failover(update, f"job {job_id}")
            except KeyWrongLastSequenceError:  # (after a retried update that did get in: applied again, harmless)
                continue  # someone else changed it first: read again
            if emit and (record["status"], record["progress"]) != before:
                await self._emit(record)
            return record
        raise RuntimeError(f"job {job_id}: too much contention on its record")

    async def request_cancel(self, job_id: str) -> dict[str, Any]:
        def cancel(record: dict[str, Any]) -> None:
            if record["status"] in TERMINAL:
                return
            record["cancel_requested"] = True
            if record["status"] == QUEUED:  # not started: nothing to interrupt
                record["status"] = CANCELLED
                record["progress"]["step"] = "cancelled before it started"

        return await self.mutate(job_id, cancel)

    async def _emit(self, record: dict[str, Any]) -> None:
        status = record["status"]
        if status == RUNNING:
            event_type = "job.started" if record["progress"]["step"] in (STARTED, RESUMED) else "job.progress"
        else:
            event_type = f"job.{status}"
        try:
            await self.bus.emit(
                event_type,
                events_pb2.JobEvent(job=record_to_proto(record)),
                subject=record["id"],
                correlation_id=record["correlation_id"],
            )
        except Exception as exc:  # an event lost to a NATS hiccup must not fail the job; the record is the truth
            log.warning("could not publish job event", extra={"job_id": record["id"], "error": str(exc)})


def _encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, default=str).encode()


@dataclass
class JobContext:
    """What a handler gets: its parameters, a work folder that survives restarts, progress and logs."""

    job_id: str
    kind: str
    params: dict[str, Any]
    correlation_id: str
    attempt: int
    workdir: Path
    artifacts: ArtifactStore
    owner: str = ""  # the worker running it: its writes are fenced by it (owned_by)
    _cancel: threading.Event = field(default_factory=threading.Event)
    _lost: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _progress: dict[str, Any] | None = None
    _logs: list[dict[str, str]] = field(default_factory=list)
    _artifacts: list[Artifact] = field(default_factory=list)
    _started: float = field(default_factory=time.monotonic)

    @property
    def resumed(self) -> bool:
        return self.attempt > 1

    def progress(self, fraction: float, step: str, /, **metrics: float) -> None:
        """Report progress (thread-safe, cheap: the worker publishes it at most twice a second).

        `fraction` and `step` are positional-only, so that a metric may be called "step" (a training step).
        """
        self.check_cancelled()
        fraction = min(max(fraction, 0.0), 1.0)
        elapsed = time.monotonic() - self._started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.01 else -1.0
        with self._lock:
            self._progress = {"fraction": fraction, "step": step, "eta_seconds": round(eta, 1), "metrics": metrics}

    def log(self, message: str, level: str = "info") -> None:
        log.log(logging.getLevelName(level.upper()), message, extra={"job_id": self.job_id})
        with self._lock:
            self._logs.append({"time": now_rfc3339(), "level": level, "message": message})

    def add_artifact(self, artifact: Artifact) -> Artifact:
        with self._lock:
            self._artifacts.append(artifact)
        return artifact

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled(self.job_id)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def lose(self) -> None:
        """Another worker owns the job now: stop (the handler sees a cancel) and write nothing more."""
        self._lost.set()
        self._cancel.set()

    def _requeue(self, progress, logs, artifacts) -> None:
        with self._lock:
            self._progress = self._progress or progress
            self._logs = list(logs) + self._logs
            self._artifacts = list(artifacts) + self._artifacts

    def _drain(self) -> tuple[dict[str, Any] | None, list[dict[str, str]], list[Artifact]]:
        with self._lock:
            progress, logs, artifacts = self._progress, self._logs, self._artifacts
            self._progress, self._logs, self._artifacts = None, [], []
        return progress, logs, artifacts


JobHandler = Callable[[JobContext], dict[str, Any] | Awaitable[dict[str, Any]]]


class JobWorker:
    """Consumes the service's work queue and runs each job with its handler.

    Sync handlers run in a thread, so CPU-bound work never blocks the gRPC server's event loop.
    """

    def __init__(
        self,
        store: JobStore,
        handlers: dict[str, JobHandler],
        artifacts: ArtifactStore,
        data_dir: Path,
        *,
        ack_wait: float = 30.0,
        heartbeat: float = 5.0,
        max_attempts: int = 3,
        concurrency: int = 1,
        flush_interval: float = 0.5,
    ):
        self.store, self.handlers, self.artifacts = store, handlers, artifacts
        self.data_dir = Path(data_dir)
        self.ack_wait, self.heartbeat, self.max_attempts = ack_wait, heartbeat, max_attempts
        self.concurrency, self.flush_interval = concurrency, flush_interval
        self.instance = uuid.uuid4().hex[:12]
        # A running job whose record was not heart-beaten for this long has lost its worker.
        self._stale_after = max(3 * heartbeat, 1.0)
        self.running: dict[str, JobContext] = {}

    async def start(self) -> None:
        service = self.store.service
        await self.store.bus.consume(
            stream=JOBS_STREAM,
            durable=f"{service}-worker",
            subject=job_subject(service),
            payload_type=events_pb2.JobRequested,
            handler=self._on_request,
            processed=None,  # idempotency is the job record's status: an ended job is never run again
            ack_wait=self.ack_wait,
            max_deliver=-1,  # attempts are counted in the job record, not by redeliveries
            max_ack_pending=-1,  # every replica takes jobs: each up to its own concurrency
            slots=self.concurrency,
            heartbeat=min(self.heartbeat, self.ack_wait / 3),
        )

    async def _on_request(self, envelope: Envelope) -> None:
        job_id = envelope.data.job_id
        try:
            record = await self.store.get(job_id)
        except JobNotFound:
            log.error("job request for an unknown job", extra={"job_id": job_id})
            return
        if record["status"] in TERMINAL:
            log.info("job already ended; request acknowledged", extra={"job_id": job_id, "status": record["status"]})
            return
        if job_id in self.running:
            return  # a duplicate of the request this worker is running
        if record["status"] == RUNNING and time.time() - record["heartbeat_at"] < self._stale_after:
            # Another worker heart-beat recently: look again later rather than run it twice or drop it.
            log.info("job is alive on another worker", extra={"job_id": job_id, "owner": record["owner"]})
            raise Redeliver(self.heartbeat * 2)
        await self._run(record)

    async def _run(self, record: dict[str, Any]) -> None:
        job_id = record["id"]
        attempt = record["attempts"] + 1
        interrupted = record["status"] == RUNNING  # a previous worker died while running it
        if attempt > self.max_attempts:
            await self.store.mutate(
                job_id,
                lambda r: _finish(
                    r, FAILED, error=f"interrupted {record['attempts']} times (service restarts); giving up"
                ),
            )
            return
        handler = self.handlers.get(record["kind"])
        if handler is None:
            await self.store.mutate(
                job_id, lambda r: _finish(r, FAILED, error=f"this service cannot run jobs of kind {record['kind']!r}")
            )
            return

        def start(r: dict[str, Any]) -> None:
            # Another worker started (or ended) it since it was read: never run it twice. (This worker's own start,
            # applied by a write whose answer was lost and then tried again, is not another worker.)
            taken = r["status"] == RUNNING and r["owner"] not in (record["owner"], self.instance)
            if r["status"] in TERMINAL or taken:
                raise _Taken
            r.update(status=RUNNING, attempts=attempt, owner=self.instance, heartbeat_at=time.time())
            r["progress"]["step"] = RESUMED if interrupted else STARTED
            if interrupted:
                r["logs"].append(
                    {
                        "time": now_rfc3339(),
                        "level": "warning",
                        "message": f"resumed (attempt {attempt}) after the worker stopped",
                    }
                )

        try:
            record = await self.store.mutate(job_id, start)
        except _Taken:
            log.info("job taken by another worker meanwhile", extra={"job_id": job_id})
            return
        ctx = JobContext(
            job_id=job_id,
            kind=record["kind"],
            params=record["params"],
            correlation_id=record["correlation_id"],
            attempt=attempt,
            workdir=self.data_dir / "jobs" / job_id,
            artifacts=self.artifacts,
            owner=self.instance,
        )
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        if record["cancel_requested"]:
            ctx._cancel.set()
        self.running[job_id] = ctx
        stop_pump = asyncio.Event()
        pump = asyncio.create_task(self._pump(ctx, stop_pump))
        try:
            outcome = handler(ctx) if inspect.iscoroutinefunction(handler) else asyncio.to_thread(handler, ctx)
            result = await outcome
            status, error = SUCCEEDED, ""
        except (JobCancelled, JobLost):
            result, status, error = {}, CANCELLED, ""
        except Exception as exc:
            log.exception("job failed", extra={"job_id": job_id})
            result, status, error = {}, FAILED, getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        finally:
            # The flag as well as the cancel: on Python 3.11, asyncio.wait_for (inside nats-py's requests) can swallow
            # a cancellation that lands as its future completes, and the pump would then run, and be awaited, forever.
            stop_pump.set()
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            self.running.pop(job_id, None)
        progress, logs, artifacts = ctx._drain()
        try:
            await self.store.mutate(
                job_id,
                owned_by(
                    self.instance,
                    lambda r: _finish(
                        r, status, error=error, result=result or {}, progress=progress, logs=logs, artifacts=artifacts
                    ),
                ),
            )
        except JobLost:  # another worker took it over meanwhile: its outcome, not this one, is the job's
            log.warning("job lost to another worker; this run's outcome is dropped", extra={"job_id": job_id})

    async def _pump(self, ctx: JobContext, stop: asyncio.Event) -> None:
        """Publish progress and logs, heart-beat, and pick up cancel requests made on any replica."""
        last_beat = 0.0
        while not stop.is_set():
            await asyncio.sleep(self.flush_interval)
            progress, logs, artifacts = ctx._drain()
            beat = time.monotonic() - last_beat >= self.heartbeat
            if not (progress or logs or artifacts or beat):
                continue
            try:
                record = await self.store.mutate(
                    ctx.job_id,
                    owned_by(
                        self.instance,
                        # this iteration's drained values, bound as defaults (mutate calls it before the loop goes on)
                        lambda r, progress=progress, logs=logs, artifacts=artifacts: _apply(
                            r, progress, logs, artifacts, self.instance
                        ),
                    ),
                )
            except JobLost:
                log.warning("job taken over by another worker: stopping this run", extra={"job_id": ctx.job_id})
                ctx.lose()
                return
            except BaseException as exc:
                ctx._requeue(progress, logs, artifacts)  # nothing drained is lost: the next write takes it
                if isinstance(exc, asyncio.CancelledError):
                    raise
                log.warning("could not update the job record", extra={"job_id": ctx.job_id, "error": str(exc)})
                continue
            last_beat = time.monotonic() if beat else last_beat
            if record["cancel_requested"]:
                ctx._cancel.set()

    async def hand_back(self) -> None:
        """Stopping (SIGTERM, a rollout): the running jobs are released for another replica now, not after ack_wait.
        Their runs here are stopped and write nothing more; the next worker resumes them from their work folder."""
        for job_id, ctx in list(self.running.items()):
            ctx.lose()
            try:
                await self.store.mutate(job_id, owned_by(self.instance, _release), emit=False)
                log.info("job handed back for another worker", extra={"job_id": job_id})
            except (JobLost, JobNotFound, *TRANSIENT) as exc:  # the next worker takes it after ack_wait instead
                log.warning("could not hand the job back", extra={"job_id": job_id, "error": repr(exc)})

    async def cancel_local(self, job_id: str) -> None:
        if ctx := self.running.get(job_id):
            ctx._cancel.set()


def _apply(record, progress, logs, artifacts, owner) -> None:
    if progress:
        record["progress"] = progress
    if logs:
        record["logs"] = (record["logs"] + logs)[-MAX_LOG_LINES:]
    if artifacts:  # a write retried after a cancel may bring the same artifact twice
        known = {(a["name"], a["digest"]) for a in record["artifacts"]}
        record["artifacts"] += [a.to_dict() for a in artifacts if (a.name, a.digest) not in known]
    record["heartbeat_at"] = time.time()
    record["owner"] = owner


def _release(record: dict[str, Any]) -> None:
    record.update(owner="", heartbeat_at=0.0)
    record["logs"] = [
        *record["logs"],
        {"time": now_rfc3339(), "level": "warning", "message": "handed back: its worker is stopping"},
    ][-MAX_LOG_LINES:]


def _finish(record, status, *, error="", result=None, progress=None, logs=(), artifacts=()) -> None:
    _apply(record, progress, list(logs), list(artifacts), record["owner"])
    record["status"] = status
    record["error"] = error
    if result:
        record["result"] = result
    if status == SUCCEEDED:
        record["progress"].update(fraction=1.0, step="done", eta_seconds=0.0)
    elif status == CANCELLED:
        record["progress"]["step"] = "cancelled"
    elif status == FAILED:
        record["progress"]["step"] = "failed"
