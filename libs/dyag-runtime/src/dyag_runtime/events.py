"""Events on NATS JetStream: CloudEvents envelopes, durable consumers, at-least-once, handled once.

Wire format (CloudEvents NATS binding, binary mode): the attributes travel as `ce-*` headers and the
body is the protobuf payload in its JSON mapping, so `nats sub 'dyag.events.>'` shows readable events.
Handlers are idempotent by event id: a redelivered event is acknowledged without running again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import nats.errors
from google.protobuf import json_format
from google.protobuf.message import Message
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.errors import (
    BadRequestError,
    KeyNotFoundError,
    NoStreamResponseError,
    NotFoundError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)
T = TypeVar("T")

EVENTS_STREAM = "DYAG_EVENTS"
EVENTS_SUBJECTS = "dyag.events.>"
JOBS_STREAM = "DYAG_JOBS"
JOBS_SUBJECTS = "dyag.jobs.>"


def event_subject(event_type: str) -> str:
    return f"dyag.events.{event_type}"


def job_subject(service: str) -> str:
    return f"dyag.jobs.{service}"


def nats_servers(url: str) -> list[str]:
    """NATS_URL's servers: one URL, or a cluster's as a comma-separated list (the client fails over between them)."""
    servers = [u.strip() for u in url.split(",") if u.strip()]
    if not servers:
        raise ConnectionError("NATS_URL is empty: give nats://host:4222, or a cluster's URLs separated by commas")
    return servers


async def connect_nats(url: str, name: str, *, connect_timeout: float = 5.0, **options) -> Client:
    """A connection that, once made, reconnects for ever (to any server of the cluster). The first connection is
    tried for about connect_timeout per server; then ConnectionError names the URL (nats-py alone would try for ever).
    """
    options.setdefault("max_reconnect_attempts", -1)
    servers = nats_servers(url)
    limit = connect_timeout * len(servers) + 1.0
    nc = Client()
    try:
        await asyncio.wait_for(
            nc.connect(servers, name=name, connect_timeout=connect_timeout, allow_reconnect=True, **options), limit
        )
        return nc
    except Exception as exc:  # nats raises several kinds; all mean the same to the caller
        with contextlib.suppress(Exception):
            await nc.close()
        raise ConnectionError(f"cannot reach NATS at {url}: {str(exc) or f'no answer in {limit:.0f} s'}") from exc


# What a JetStream call may raise while the cluster fails over (a node lost, a stream electing its leader, the
# client reconnecting): tried again, not reported.
TRANSIENT = (
    nats.errors.TimeoutError,
    NoStreamResponseError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    ServiceUnavailableError,
)


async def through_failover(call: Callable[[], Awaitable[T]], what: str, within: float = 60.0) -> T:
    """`call()`, tried again for up to `within` seconds while it fails for a transient reason (TRANSIENT)."""
    deadline = time.monotonic() + within
    delay = 0.2
    while True:
        try:
            return await call()
        except TRANSIENT as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("NATS busy or failing over; trying again", extra={"what": what, "error": repr(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Envelope:
    """CloudEvents attributes plus the payload (a protobuf message)."""

    type: str
    source: str
    data: Message
    subject: str = ""
    correlation_id: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    time: str = field(default_factory=now_rfc3339)

    def headers(self) -> dict[str, str]:
        return {
            "ce-specversion": "1.0",
            "ce-id": self.id,
            "ce-type": self.type,
            "ce-source": self.source,
            "ce-time": self.time,
            "ce-subject": self.subject,
            "ce-correlationid": self.correlation_id,
            "ce-dataschema": f"proto:{self.data.DESCRIPTOR.full_name}",
            "content-type": "application/json",
            "Nats-Msg-Id": self.id,  # JetStream drops a re-published copy within its duplicate window
        }

    def body(self) -> bytes:
        return json_format.MessageToJson(self.data, indent=None, preserving_proto_field_name=True).encode()

    @classmethod
    def decode(cls, headers: dict[str, str] | None, body: bytes, payload_type: type[Message]) -> Envelope:
        headers = headers or {}
        missing = [h for h in ("ce-id", "ce-type", "ce-source") if not headers.get(h)]
        if missing:
            raise InvalidEvent(f"missing CloudEvents header(s): {', '.join(missing)}")
        try:
            data = json_format.Parse(body or b"{}", payload_type(), ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise InvalidEvent(
                f"event {headers['ce-id']} has a body that is not a {payload_type.DESCRIPTOR.full_name}: {exc}"
            ) from exc
        return cls(
            type=headers["ce-type"],
            source=headers["ce-source"],
            data=data,
            subject=headers.get("ce-subject", ""),
            correlation_id=headers.get("ce-correlationid", ""),
            id=headers["ce-id"],
            time=headers.get("ce-time", ""),
        )


class InvalidEvent(ValueError):
    """An event that can never be handled: it is terminated (not redelivered) and logged."""


class Redeliver(Exception):
    """Raised by a handler that cannot handle the event yet: it comes back after `delay` seconds."""

    def __init__(self, delay: float):
        super().__init__(f"redeliver in {delay} s")
        self.delay = delay


Handler = Callable[[Envelope], Awaitable[None]]


class EventBus:
    """One NATS connection per service: publish events, run durable consumers, open KV buckets."""

    def __init__(self, nc: Client, js: JetStreamContext, source: str, *, replicas: int = 1):
        self.nc, self.js, self.source = nc, js, source
        # How many NATS servers keep each stream and KV bucket: 1 for one server, 3 for a 3-node cluster (R3).
        self.replicas = replicas
        self._tasks: list[asyncio.Task] = []

    @classmethod
    async def connect(cls, url: str, source: str, *, replicas: int = 1, connect_timeout: float = 5.0) -> EventBus:
        nc = await connect_nats(url, source, connect_timeout=connect_timeout)
        bus = cls(nc, nc.jetstream(), source, replicas=replicas)
        await bus.ensure_streams()
        return bus

    async def ensure_streams(self) -> None:
        await self.ensure_stream(
            api.StreamConfig(
                name=EVENTS_STREAM, subjects=[EVENTS_SUBJECTS], storage=api.StorageType.FILE, max_age=7 * 24 * 3600.0
            )
        )
        # A work queue: each job request goes to exactly one worker of the owning service.
        await self.ensure_stream(
            api.StreamConfig(
                name=JOBS_STREAM,
                subjects=[JOBS_SUBJECTS],
                storage=api.StorageType.FILE,
                retention=api.RetentionPolicy.WORK_QUEUE,
            )
        )

    async def ensure_stream(self, config: api.StreamConfig) -> None:
        """Create the stream with this bus's replicas, or raise an existing one's to them (a cluster grown to 3)."""
        await through_failover(lambda: self._ensure_stream(config), f"stream {config.name}")

    async def _ensure_stream(self, config: api.StreamConfig) -> None:
        config.num_replicas = self.replicas
        try:
            info = await self.js.stream_info(config.name)
        except NotFoundError:
            try:
                await self.js.add_stream(config)
                return
            except BadRequestError:  # another service created it meanwhile
                info = await self.js.stream_info(config.name)
        await self._raise_replicas(info)

    async def _raise_replicas(self, info: api.StreamInfo) -> None:
        if (info.config.num_replicas or 1) >= self.replicas:
            return  # never lowered here: a smaller setting on one replica must not shrink a shared stream
        info.config.num_replicas = self.replicas
        try:
            await self.js.update_stream(info.config)
            log.info("stream replicas raised", extra={"stream": info.config.name, "replicas": self.replicas})
        except BadRequestError as exc:  # e.g. fewer servers than replicas: say so, keep running
            log.warning(
                "cannot raise the stream's replicas",
                extra={"stream": info.config.name, "replicas": self.replicas, "error": str(exc)},
            )

    async def publish(self, envelope: Envelope, subject: str | None = None) -> None:
        """Publish, through a failover: a copy that did get in is dropped by JetStream (Nats-Msg-Id)."""
        subject = subject or event_subject(envelope.type)
        await through_failover(
            lambda: self.js.publish(subject, envelope.body(), headers=envelope.headers()), f"publish {subject}"
        )

    async def emit(self, event_type: str, data: Message, *, subject: str = "", correlation_id: str = "") -> Envelope:
        envelope = Envelope(
            type=event_type, source=self.source, data=data, subject=subject, correlation_id=correlation_id
        )
        await self.publish(envelope)
        return envelope

    async def key_value(self, bucket: str, *, ttl: float | None = None, history: int = 1) -> KeyValue:
        return await through_failover(lambda: self._key_value(bucket, ttl, history), f"KV bucket {bucket}")

    async def _key_value(self, bucket: str, ttl: float | None, history: int) -> KeyValue:
        try:
            kv = await self.js.key_value(bucket)
        except NotFoundError:
            return await self.js.create_key_value(
                api.KeyValueConfig(
                    bucket=bucket, history=history, ttl=ttl, storage=api.StorageType.FILE, replicas=self.replicas
                )
            )
        await self._raise_replicas(await self.js.stream_info(f"KV_{bucket}"))
        return kv

    async def consume(
        self,
        *,
        stream: str,
        durable: str,
        subject: str,
        payload_type: type[Message],
        handler: Handler,
        processed: ProcessedEvents | None,
        ack_wait: float = 30.0,
        max_deliver: int = 5,  # -1: no limit
        max_ack_pending: int = 1,
        slots: int = 0,
        heartbeat: float | None = None,
    ) -> asyncio.Task:
        """Run `handler` for each message of a durable pull consumer, once per event id.

        `max_ack_pending` bounds the messages out at once across every process sharing the consumer (1: one at a
        time, in order; -1: no bound); `slots` bounds this process's (default: max_ack_pending, or 1)."""
        slots = slots or max(max_ack_pending, 1)
        config = api.ConsumerConfig(
            durable_name=durable,
            filter_subject=subject,
            ack_wait=ack_wait,
            max_deliver=max_deliver,
            max_ack_pending=max_ack_pending,
            ack_policy=api.AckPolicy.EXPLICIT,
        )
        # Created, or brought to this config (an older consumer made with other bounds): then subscribed to.
        await through_failover(lambda: self.js.add_consumer(stream, config), f"consumer {durable}")
        sub = await through_failover(
            lambda: self.js.pull_subscribe(subject, durable=durable, stream=stream), f"consumer {durable}"
        )
        task = asyncio.create_task(
            self._consume_loop(sub, payload_type, handler, processed, max_deliver, heartbeat or ack_wait / 3, slots),
            name=f"consume:{durable}",
        )
        self._tasks.append(task)
        return task

    async def _consume_loop(self, sub, payload_type, handler, processed, max_deliver, heartbeat, slots) -> None:
        """Fetch as many messages as there are free slots and handle them side by side (one slot: in order)."""
        in_flight: set[asyncio.Task] = set()
        try:
            while True:
                if len(in_flight) >= slots:
                    done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    in_flight -= done
                    continue
                try:
                    messages = await sub.fetch(slots - len(in_flight), timeout=1.0)
                except TimeoutError:
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # connection trouble: nats-py reconnects by itself
                    log.warning("fetch failed, retrying", extra={"error": str(exc)})
                    await asyncio.sleep(1.0)
                    continue
                if slots == 1:
                    for msg in messages:
                        await self._deliver_logged(msg, payload_type, handler, processed, max_deliver, heartbeat)
                    continue
                for msg in messages:
                    task = asyncio.create_task(
                        self._deliver_logged(msg, payload_type, handler, processed, max_deliver, heartbeat)
                    )
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
        finally:
            # Stopping: an unacknowledged message is redelivered to the next consumer.
            for task in list(in_flight):
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _deliver_logged(self, msg, *args) -> None:
        """_deliver, whose failures (an ack on a lost connection) are logged instead of ending the consumer's loop or
        being left unretrieved in a task; the message is then redelivered after ack_wait."""
        try:
            await self._deliver(msg, *args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "delivery failed; the message will be redelivered", extra={"subject": msg.subject, "error": str(exc)}
            )

    async def _deliver(self, msg, payload_type, handler, processed, max_deliver, heartbeat) -> None:
        try:
            envelope = Envelope.decode(msg.headers, msg.data, payload_type)
        except InvalidEvent as exc:
            log.error("dropping invalid event", extra={"error": str(exc), "subject": msg.subject})
            await msg.term()
            return
        if processed is not None and await processed.seen(envelope.id):
            log.info("event already processed, acknowledging", extra={"event_id": envelope.id, "type": envelope.type})
            await msg.ack()
            return
        keepalive = asyncio.create_task(_keep_alive(msg, heartbeat))
        try:
            await handler(envelope)
        except asyncio.CancelledError:  # this consumer is stopping: the message goes to another one now
            with contextlib.suppress(Exception):
                await asyncio.shield(msg.nak())
            raise
        except Redeliver as later:
            await msg.nak(delay=later.delay)
            return
        except Exception:
            attempt = msg.metadata.num_delivered
            log.exception("event handler failed", extra={"event_id": envelope.id, "attempt": attempt})
            if 0 < max_deliver <= attempt:
                await msg.term()
            else:
                await msg.nak(delay=min(2.0**attempt, 30.0))
            return
        finally:
            keepalive.cancel()
        if processed is not None:
            await processed.mark(envelope.id)
        await msg.ack()

    async def stop_consumers(self) -> None:
        """Cancel every consumer this bus started (their messages unacknowledged: redelivered to the next worker)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.stop_consumers()
        if not self.nc.is_closed:
            # close, not drain: an unacknowledged message is simply redelivered to the next worker
            await self.nc.close()


def emit_from_thread(
    bus: EventBus,
    loop: asyncio.AbstractEventLoop,
    event_type: str,
    data: Message,
    *,
    subject: str = "",
    correlation_id: str = "",
    timeout: float = 15.0,
    best_effort: bool = False,
) -> bool:
    """bus.emit() from a worker thread (a sync job handler), waiting for the publish on the service's loop.

    best_effort: a failure is logged and False returned (an event lost to a NATS hiccup must not fail a long job);
    otherwise it raises."""
    future = asyncio.run_coroutine_threadsafe(
        bus.emit(event_type, data, subject=subject, correlation_id=correlation_id), loop
    )
    try:
        future.result(timeout=timeout)
    except Exception as exc:
        if not best_effort:
            raise
        log.warning("could not publish %s", event_type, extra={"subject": subject, "error": str(exc)})
        return False
    return True


async def _keep_alive(msg, every: float) -> None:
    """Tell JetStream a long handler is still working, so it does not redeliver the message."""
    while True:
        await asyncio.sleep(every)
        try:
            await msg.in_progress()
        except Exception:  # the connection may be reconnecting; the next beat tries again
            pass


class ProcessedEvents:
    """Ids of the events a consumer has handled, in a JetStream KV bucket (kept `ttl` seconds)."""

    def __init__(self, kv: KeyValue):
        self.kv = kv

    @classmethod
    async def open(cls, bus: EventBus, consumer: str, ttl: float = 14 * 24 * 3600.0) -> ProcessedEvents:
        return cls(await bus.key_value(f"processed_{consumer}", ttl=ttl))

    async def seen(self, event_id: str) -> bool:
        try:
            await self.kv.get(event_id)
            return True
        except KeyNotFoundError:
            return False

    async def mark(self, event_id: str) -> None:
        await self.kv.put(event_id, b"1")
