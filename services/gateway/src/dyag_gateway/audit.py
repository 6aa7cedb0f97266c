"""The audit log: who changed what, when. One record per POST, PUT, PATCH or DELETE request, refused ones included,
appended to the JetStream stream DYAG_AUDIT (subject dyag.audit.<method>), which refuses deletes and purges.

A record holds when, the key's id and name (never the key), the caller the client names (X-Dyag-User), the method, the
path (no query string), the status, the client's address and the correlation id; never the request's body (it holds
catalogs). `GET /audit` (admin) lists the newest first.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from nats.js import api
from nats.js.errors import NotFoundError

from dyag_runtime.events import EventBus

log = logging.getLogger(__name__)

STREAM = "DYAG_AUDIT"
SUBJECTS = "dyag.audit.>"
AUDITED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_AGE_S = 400 * 24 * 3600.0  # a year and then some
PUBLISH_TIMEOUT_S = 2.0


def subject(method: str) -> str:
    return f"dyag.audit.{method.lower()}"


class AuditLog:
    def __init__(self, js):
        self.js = js

    @classmethod
    async def open(cls, bus: EventBus) -> AuditLog:
        await bus.ensure_stream(
            api.StreamConfig(
                name=STREAM,
                subjects=[SUBJECTS],
                storage=api.StorageType.FILE,
                max_age=MAX_AGE_S,
                deny_delete=True,  # append-only: no message is removed but by age
                deny_purge=True,
            )
        )
        return cls(bus.js)

    async def append(self, record: dict[str, Any]) -> None:
        await self.js.publish(
            subject(record["method"]), json.dumps(record, ensure_ascii=False).encode(), timeout=PUBLISH_TIMEOUT_S
        )

    async def newest(self, limit: int = 100, before: int = 0) -> list[dict[str, Any]]:
        """The newest `limit` records (before sequence `before`, when given), newest first, each with its `seq`."""
        state = (await self.js.stream_info(STREAM)).state
        last = state.last_seq if not before else min(state.last_seq, before - 1)
        first = max(state.first_seq, 1, last - limit + 1)
        limiter = asyncio.Semaphore(32)

        async def read(seq: int) -> dict[str, Any] | None:
            async with limiter:
                try:
                    msg = await self.js.get_msg(STREAM, seq)
                except NotFoundError:
                    return None
            return {"seq": seq, **json.loads(msg.data or b"{}")}

        records = await asyncio.gather(*(read(s) for s in range(last, first - 1, -1)))
        return [r for r in records if r is not None]


def _header(scope: dict, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


class AuditMiddleware:
    """ASGI middleware: after each POST, PUT, PATCH or DELETE has answered, its record goes to the audit log (a record
    that cannot be written is logged as a warning; the request has already been answered)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in AUDITED_METHODS:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # the same dict as the request's `state`: the principal lands here
        status = 500

        async def send_and_note(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            await self._record(scope, state, status)

    @staticmethod
    async def _record(scope: dict, state: dict, status: int) -> None:
        app = scope.get("app")
        audit: AuditLog | None = getattr(app.state, "audit", None) if app is not None else None
        principal = state.get("principal")
        client = scope.get("client")
        record = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "key_id": principal.id if principal else None,
            "key_name": principal.name if principal else None,
            "caller": _header(scope, b"x-dyag-user").strip()[:100] or None,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "client": client[0] if client else None,
            "correlation_id": _header(scope, b"x-correlation-id")[:100] or None,
        }
        if audit is None:
            log.warning("audit log unavailable (NATS): a state change is not recorded", extra=record)
            return
        try:
            await audit.append(record)
        except Exception as exc:
            log.warning("audit record not written", extra={**record, "error": str(exc)})
