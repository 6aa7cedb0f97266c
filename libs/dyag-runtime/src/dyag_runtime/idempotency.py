"""Idempotent job submission across replicas: the same request submitted twice makes one job.

A caller that may submit again (after a timeout, a killed replica, its own restart) sets `request_key` around the
call; the Peers channels send it as the gRPC metadata `dyag-idempotency-key`; the server's interceptor sets it again
around the handler; `JobStore.submit` derives the job's id from it, so a second submission finds the first job
instead of creating another one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import grpc

METADATA_KEY = "dyag-idempotency-key"
request_key: ContextVar[str] = ContextVar("dyag_request_key", default="")


@contextlib.contextmanager
def submitting(key: str) -> Iterator[None]:
    """Calls made inside carry `key`: a job they submit is created once, however often they are retried."""
    token = request_key.set(key)
    try:
        yield
    finally:
        request_key.reset(token)


def key_of(metadata) -> str:
    """The key a call carried (its invocation metadata), or ""."""
    for name, value in metadata or ():
        if name == METADATA_KEY:
            return value if isinstance(value, str) else value.decode()
    return ""


class SendKey(grpc.aio.UnaryUnaryClientInterceptor):
    """The asyncio channels' interceptor: adds the current request key to unary calls."""

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        if key := request_key.get():
            metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()), (METADATA_KEY, key))
            client_call_details = client_call_details._replace(metadata=metadata)
        return await continuation(client_call_details, request)
