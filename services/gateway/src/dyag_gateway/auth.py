"""API keys: required on every route that changes state (X-API-Key or Authorization: Bearer)."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from dyag_gateway.errors import ApiError


def require_api_key(request: Request) -> None:
    keys: set[str] = request.app.state.settings.keys()
    given = request.headers.get("x-api-key") or ""
    if not given and request.headers.get("authorization", "").lower().startswith("bearer "):
        given = request.headers["authorization"][7:].strip()
    if not given:
        raise ApiError(401, "missing_api_key", "this route changes state: send an API key in the X-API-Key header")
    if not keys or not any(hmac.compare_digest(given, k) for k in keys):
        raise ApiError(401, "invalid_api_key", "the API key is not one the gateway accepts (DYAG_API_KEYS)")


def caller(request: Request) -> str:
    """Who asked, for audit logs: X-Dyag-User when the client names its user, else the API key's fingerprint."""
    user = request.headers.get("x-dyag-user", "").strip()[:100]
    given = request.headers.get("x-api-key") or request.headers.get("authorization", "")[7:].strip()
    fingerprint = "key:" + hashlib.sha256(given.encode()).hexdigest()[:8] if given else "anonymous"
    return f"{user} ({fingerprint})" if user else fingerprint
