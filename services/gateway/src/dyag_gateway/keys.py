"""API keys: their store (a JetStream KV bucket keyed by each key's sha256, never the key), scopes and rate limits.

A key is `dyag_` + 32 random url-safe characters, shown once when it is created. The bucket `api_keys` holds one
record per key: name, scopes, created_at, created_by, revoked_at, last_used_at (written at most once a minute). The
keys of DYAG_API_KEYS (and DYAG_API_KEYS_FILE, which `dyag up` sets) are admin keys that live in the settings only.
A key's id is the first 12 hex digits of its sha256: enough to name it, nothing to rebuild it from.

Every replica reads the bucket and keeps what it read for `cache_s` seconds (3 by default): a revoked key is refused
everywhere within that time, at once on the replica that revoked it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError

from dyag_gateway.errors import ApiError

log = logging.getLogger(__name__)

BUCKET = "api_keys"
PREFIX = "dyag_"
ID_LENGTH = 12
SCOPES = ("read", "write", "admin")
# Each scope includes the ones before it: a key that starts jobs can follow them, an admin can do anything.
_SATISFIED_BY = {"read": ("read", "write", "admin"), "write": ("write", "admin"), "admin": ("admin",)}
LAST_USED_EVERY_S = 60.0
_MAX_CACHED = 10_000


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """`dyag_` + 32 url-safe characters (24 random bytes, 192 bits)."""
    return PREFIX + secrets.token_urlsafe(24)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request's key says it is."""

    id: str
    name: str
    scopes: tuple[str, ...]
    bootstrap: bool = False
    rate_limit_per_min: int | None = None  # None: the gateway's DYAG_RATE_LIMIT_PER_MIN

    def allows(self, scope: str) -> bool:
        return any(s in self.scopes for s in _SATISFIED_BY[scope])


def view(key_hash: str, record: dict[str, Any]) -> dict[str, Any]:
    """A key as the API shows it: never the key, never its whole hash."""
    return {
        "id": key_hash[:ID_LENGTH],
        "name": record.get("name", ""),
        "scopes": list(record.get("scopes", [])),
        "created_at": record.get("created_at", ""),
        "created_by": record.get("created_by", ""),
        "revoked_at": record.get("revoked_at"),
        "revoked_by": record.get("revoked_by"),
        "last_used_at": record.get("last_used_at"),
        "rate_limit_per_min": record.get("rate_limit_per_min"),
        "source": record.get("source", "api"),
    }


class KeyStore:
    """The keys a gateway accepts: those of its settings (admin, bootstrap) and those of the KV bucket."""

    def __init__(
        self, bootstrap: Iterable[str] = (), *, cache_s: float = 3.0, clock: Callable[[], float] = time.monotonic
    ):
        self._bootstrap = [hash_key(k) for k in bootstrap if k]
        self.cache_s = cache_s
        self.clock = clock
        self.kv = None  # nats.js.kv.KeyValue, or anything with its get / create / update / keys
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._touched: dict[str, float] = {}
        self._tasks: set[asyncio.Task] = set()

    def attach(self, kv) -> None:
        self.kv = kv

    # --- authentication ----------------------------------------------------------------------------------------
    async def authenticate(self, given: str) -> Principal:
        digest = hash_key(given)
        # Every bootstrap hash compared, in constant time each: no early exit that would time which one matched.
        matches = [hmac.compare_digest(digest, b) for b in self._bootstrap]
        if any(matches):
            return Principal(digest[:ID_LENGTH], "bootstrap (DYAG_API_KEYS)", ("admin",), bootstrap=True)
        record = await self._lookup(digest)
        if record is None:
            raise ApiError(
                401, "invalid_api_key", "the API key is not one this gateway accepts: check X-API-Key (or ask an admin)"
            )
        if record.get("revoked_at"):
            raise ApiError(
                401,
                "revoked_api_key",
                f"the API key {digest[:ID_LENGTH]} ({record.get('name', '')}) was revoked at {record['revoked_at']}",
            )
        self._touch(digest)
        return Principal(
            digest[:ID_LENGTH],
            record.get("name", ""),
            tuple(record.get("scopes", ())),
            rate_limit_per_min=record.get("rate_limit_per_min"),
        )

    async def _lookup(self, digest: str) -> dict[str, Any] | None:
        now = self.clock()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        if self.kv is None:
            raise ApiError(
                503,
                "key_store_unavailable",
                "the gateway cannot read its key store (NATS was unreachable at start-up; see /readyz): "
                "only the keys of DYAG_API_KEYS are accepted until it is back",
            )
        try:
            record = json.loads((await self.kv.get(digest)).value)
        except KeyNotFoundError:  # KeyDeletedError is one too
            record = None
        except Exception as exc:
            log.warning("the key store did not answer", extra={"error": str(exc)})
            raise ApiError(
                503, "key_store_unavailable", "the gateway cannot read its key store (NATS); see /readyz"
            ) from None
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[digest] = (now + self.cache_s, record)
        return record

    def _touch(self, digest: str) -> None:
        """last_used_at, written at most once a minute per key and replica, in the background."""
        now = self.clock()
        if now - self._touched.get(digest, -math.inf) < LAST_USED_EVERY_S:
            return
        if len(self._touched) >= _MAX_CACHED:
            self._touched.clear()
        self._touched[digest] = now
        task = asyncio.get_running_loop().create_task(self._write_last_used(digest))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_last_used(self, digest: str) -> None:
        try:
            entry = await self.kv.get(digest)
            record = json.loads(entry.value)
            if record.get("revoked_at"):
                return
            record["last_used_at"] = now_iso()
            await self.kv.update(digest, json.dumps(record).encode(), last=entry.revision)
        except Exception as exc:  # a concurrent write (a revocation) wins; the next use writes it again
            log.debug("last_used_at not written", extra={"key_id": digest[:ID_LENGTH], "error": str(exc)})

    # --- management --------------------------------------------------------------------------------------------
    def _need_kv(self):
        if self.kv is None:
            raise ApiError(
                503,
                "key_store_unavailable",
                "keys live in NATS's KV store, which the gateway could not reach at start-up; see /readyz",
            )
        return self.kv

    async def create(
        self, name: str, scopes: list[str], *, by: str, rate_limit_per_min: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A new key and its view: the key itself is returned here once and stored nowhere."""
        kv = self._need_kv()
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise ApiError(
                422, "invalid_scopes", f"scopes are one or more of {', '.join(SCOPES)}; got {scopes or 'none'}"
            )
        key = new_key()
        digest = hash_key(key)
        record = {
            "name": name,
            "scopes": [s for s in SCOPES if s in scopes],
            "created_at": now_iso(),
            "created_by": by,
            "revoked_at": None,
            "revoked_by": None,
            "last_used_at": None,
            "rate_limit_per_min": rate_limit_per_min,
        }
        await kv.create(digest, json.dumps(record).encode())
        return key, view(digest, record)

    async def list(self) -> list[dict[str, Any]]:
        """Every key, newest first: the bootstrap ones, then the bucket's (revoked ones included)."""
        views = [
            view(b, {"name": "bootstrap (DYAG_API_KEYS)", "scopes": ["admin"], "source": "settings"})
            for b in self._bootstrap
        ]
        for digest, record in await self._records():
            views.append(view(digest, record))
        stored = sorted(views[len(self._bootstrap) :], key=lambda v: v["created_at"], reverse=True)
        return views[: len(self._bootstrap)] + stored

    async def _records(self) -> list[tuple[str, dict[str, Any]]]:
        kv = self._need_kv()
        try:
            digests = await kv.keys()
        except NoKeysError:  # an empty bucket
            return []

        async def read(digest: str) -> tuple[str, dict[str, Any]] | None:
            try:
                return digest, json.loads((await kv.get(digest)).value)
            except KeyNotFoundError:
                return None  # gone since keys() was read

        return [r for r in await asyncio.gather(*(read(d) for d in digests)) if r is not None]

    async def revoke(self, key_id: str, *, by: str) -> dict[str, Any]:
        """Revoke the key whose id (or a longer prefix of its sha256) is `key_id`; revoking it again changes nothing."""
        key_id = key_id.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{8,64}", key_id):
            raise ApiError(
                422, "invalid_key_id", f"a key id is 8 to 64 hex digits (GET /keys lists them), not {key_id!r}"
            )
        if any(b.startswith(key_id) for b in self._bootstrap):
            raise ApiError(
                409,
                "bootstrap_key",
                f"key {key_id} comes from the gateway's settings (DYAG_API_KEYS or DYAG_API_KEYS_FILE): "
                "remove it there and restart the gateway",
            )
        kv = self._need_kv()
        matches = [(d, r) for d, r in await self._records() if d.startswith(key_id)]
        if not matches:
            raise ApiError(404, "key_not_found", f"no key has the id {key_id} (GET /keys or `dyag keys list`)")
        if len(matches) > 1:
            raise ApiError(409, "ambiguous_key_id", f"{len(matches)} keys start with {key_id}: give more digits")
        digest = matches[0][0]
        for _ in range(20):
            entry = await kv.get(digest)
            record = json.loads(entry.value)
            if record.get("revoked_at"):
                break
            record.update(revoked_at=now_iso(), revoked_by=by)
            try:
                await kv.update(digest, json.dumps(record).encode(), last=entry.revision)
                break
            except KeyWrongLastSequenceError:  # a last_used_at written meanwhile: read again
                continue
        else:
            raise ApiError(409, "key_busy", f"key {key_id} changed 20 times while it was being revoked: try again")
        self._cache.pop(digest, None)
        return view(digest, record)


class RateLimiter:
    """A token bucket per key, in this gateway process: `per_min` requests a minute, bursts up to `per_min`."""

    def __init__(self, per_min: int, *, clock: Callable[[], float] = time.monotonic):
        self.per_min = per_min
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, when)

    def take(self, key_id: str, per_min: int | None = None) -> float:
        """0 when the request may go; else the seconds until it may."""
        limit = self.per_min if per_min is None else per_min
        if limit <= 0:
            return 0.0
        now = self.clock()
        rate = limit / 60.0
        tokens, when = self._buckets.get(key_id, (float(limit), now))
        tokens = min(float(limit), tokens + (now - when) * rate)
        if tokens >= 1.0:
            self._buckets[key_id] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key_id] = (tokens, now)
        if len(self._buckets) > _MAX_CACHED:
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60.0}
        return (1.0 - tokens) / rate
