"""Access: every route but /healthz, /readyz, /metrics (and the docs, unless DYAG_DOCS=off) needs an API key with a
scope (X-API-Key, or Authorization: Bearer).

- read: what returns catalog content, datasets, models, exports, reports, jobs, and answers (ask, query, chat);
- write (includes read): what starts work or uploads (jobs, pipelines, catalogs, sources, validation);
- admin (includes write): keys, the audit log, promotion and rollback, retraining policies, and every DELETE.

The scope is checked here, on the server, for each request; the app adds `require_scope("read")` to every router and
each route that needs more names it. A missing or wrong key is a 401 saying what to send, a key without the scope a
403 naming the scope, a key over its rate limit a 429 with Retry-After.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable

from fastapi import Depends, Request

from dyag_gateway.errors import ApiError
from dyag_gateway.keys import SCOPES, Principal

_HOW = (
    "send an API key in the X-API-Key header (or Authorization: Bearer <key>): `dyag up` writes one to "
    "DYAG_HOME/api-key, and an admin creates others with POST /keys or `dyag keys create`"
)


def presented_key(request: Request) -> str:
    given = request.headers.get("x-api-key", "").strip()
    authorization = request.headers.get("authorization", "")
    if not given and authorization[:7].lower() == "bearer ":
        given = authorization[7:].strip()
    return given


async def authenticate(request: Request) -> Principal:
    """The request's key, checked against the key store, then its rate limit; once per request (FastAPI caches it)."""
    given = presented_key(request)
    if not given:
        raise ApiError(401, "missing_api_key", f"this route needs an API key: {_HOW}")
    principal = await request.app.state.keys.authenticate(given)
    request.state.principal = principal  # for the audit log, which never sees the key itself
    limiter = request.app.state.rate_limiter
    wait = limiter.take(principal.id, principal.rate_limit_per_min)
    if wait > 0:
        limit = limiter.per_min if principal.rate_limit_per_min is None else principal.rate_limit_per_min
        seconds = max(1, math.ceil(wait))
        raise ApiError(
            429,
            "rate_limited",
            f"key {principal.id} ({principal.name}) is over its limit of {limit} requests a minute on this gateway: "
            f"retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
    return principal


@functools.cache
def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets the request through only with a key holding `scope` (or a scope that includes it)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; scopes: {SCOPES}")

    async def check(principal: Principal = Depends(authenticate)) -> Principal:
        if not principal.allows(scope):
            raise ApiError(
                403,
                "insufficient_scope",
                f"this route needs a key with the {scope!r} scope; key {principal.id} ({principal.name}) has "
                f"{', '.join(principal.scopes) or 'none'}: ask an admin for one (`dyag keys create NAME --scope "
                f"{scope}`)",
            )
        return principal

    check.scope = scope  # read by the tests that check every route's scope
    check.__name__ = f"require_{scope}"
    return check


def caller(request: Request) -> str:
    """Who asked, for audit trails: X-Dyag-User when the client names its user, and the key's id and name."""
    user = request.headers.get("x-dyag-user", "").strip()[:100]
    principal: Principal | None = getattr(request.state, "principal", None)
    who = f"key:{principal.id} {principal.name}" if principal else "anonymous"
    return f"{user} ({who})" if user else who


# The name routes used before scopes existed: a key that may change state.
require_api_key = require_scope("write")
