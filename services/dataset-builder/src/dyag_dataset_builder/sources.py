"""Catalog sources: a catalog that follows a file (polled by mtime, size and sha256) or an HTTP(S) URL (polled with
If-None-Match / If-Modified-Since), at an interval its user sets.

Each real change goes through the upload path (`CatalogServicer.ingest`): a new content-hashed version and one
catalog.updated event, or `unchanged` when the content normalises to the current version. A poll where nothing changed
(304, same mtime and size, same sha256) stores nothing and emits nothing. A failing source (unreachable, an HTTP error,
not a catalog, mojibake refused, too large…) keeps the last good version and records the error on the source; it never
stores a broken version, and its validators stay those of the last good content so the next poll reads it again.

One asyncio task per source sleeps until the source is due, polls it and loops; a restarted service starts one per
stored source (an overdue source is polled at once). A file is read in a worker thread, HTTP goes through httpx's
async client; both are capped at the catalog size limit (DYAG_MAX_CATALOG_BYTES).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import httpx

from dyag_core.catalog import validate_catalog_name
from dyag_core.errors import DyagError
from dyag_dataset_builder.catalog_store import VersionRow
from dyag_dataset_builder.source_store import SourceRecord, SourceStore

log = logging.getLogger(__name__)

CATALOG_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv")
_FILENAME_OF_MEDIA_TYPE = {
    "application/json": "catalog.json",
    "text/json": "catalog.json",
    "application/x-ndjson": "catalog.jsonl",
    "application/jsonl": "catalog.jsonl",
    "application/x-jsonlines": "catalog.jsonl",
    "text/csv": "catalog.csv",
}

# (name, content, filename, roles_yaml, reject_mojibake, correlation_id) -> (the version row, unchanged)
Ingest = Callable[..., Awaitable[tuple[VersionRow, bool]]]


class SourceNotFound(DyagError):
    def __init__(self, name: str):
        super().__init__(
            "source_not_found",
            f"catalog {name!r} follows no source; set one with PUT /catalogs/{name}/source "
            f"or dyag catalog follow {name} PATH_OR_URL",
        )


class SourceFailure(DyagError):
    """A poll that could not read the source: recorded on the source, never raised to a caller."""


@dataclass(frozen=True)
class SourceLimits:
    default_interval_s: int = 60
    min_interval_s: int = 5
    max_interval_s: int = 7 * 24 * 3600
    max_bytes: int = 50 * 1024 * 1024
    http_timeout_s: float = 20.0
    roots: tuple[Path, ...] = ()  # empty: any file the service may read


@dataclass
class Fetched:
    """What a poll read: `content` None when nothing changed (then `detail` says how it knows)."""

    content: bytes | None
    detail: str
    filename: str = ""
    etag: str | None = None  # None: keep the recorded one
    last_modified: str | None = None
    mtime_ns: int | None = None
    size: int | None = None
    sha256: str | None = None


@dataclass
class PollResult:
    outcome: str  # "changed" | "unchanged" | "failed"
    detail: str
    record: SourceRecord
    version: VersionRow | None = None  # changed: the new version; unchanged: the one the source holds


# --- checking what a user asks for -------------------------------------------------------------------------------
def check_source(path: str, url: str, interval_s: int, limits: SourceLimits) -> tuple[str, str, int]:
    """(kind, location, interval_s) of a source, or a DyagError (a 422) that names the problem."""
    path, url = path.strip(), url.strip()
    if bool(path) == bool(url):
        raise DyagError(
            "invalid_source",
            "give either path (a file on dataset-builder's host) or url (http:// or https://), "
            + ("not both" if path else "one of them"),
        )
    interval = interval_s or limits.default_interval_s
    if interval < limits.min_interval_s:
        raise DyagError(
            "interval_too_small",
            f"interval_s {interval} is under the minimum of {limits.min_interval_s} s (DYAG_SOURCE_MIN_INTERVAL_S)",
        )
    if interval > limits.max_interval_s:
        raise DyagError(
            "interval_too_large", f"interval_s {interval} is over the maximum of {limits.max_interval_s} s (a week)"
        )
    if url:
        return "http", check_url(url), interval
    return "file", str(check_path(path, limits.roots)), interval


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme or "none"
        raise DyagError("invalid_url", f"only http:// and https:// URLs can be followed; {url!r} has scheme {scheme!r}")
    if not parts.hostname:
        raise DyagError("invalid_url", f"the URL {url!r} names no host")
    return url


def check_path(path: str, roots: tuple[Path, ...]) -> Path:
    """An absolute path to a regular file dataset-builder may read (under one of `roots` when they are set)."""
    given = Path(path)
    if not given.is_absolute():
        raise DyagError(
            "relative_path",
            f"the path {path!r} is relative; give an absolute path (dataset-builder reads it on its own host)",
        )
    resolved = given.resolve()
    if roots and not any(resolved.is_relative_to(root.resolve()) for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise DyagError(
            "path_not_allowed",
            f"{path} is outside the folders dataset-builder may follow ({allowed}; DYAG_SOURCE_ROOTS)",
        )
    try:
        st = os.stat(resolved)
    except FileNotFoundError:
        raise DyagError("file_missing", f"{path} does not exist on dataset-builder's host") from None
    except OSError as exc:
        raise DyagError("file_unreadable", f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DyagError("not_a_file", f"{path} is not a regular file")
    if not os.access(resolved, os.R_OK):
        raise DyagError("file_unreadable", f"dataset-builder may not read {path} (permission denied)")
    return given


# --- reading a source --------------------------------------------------------------------------------------------
def fetch_file(record: SourceRecord, limits: SourceLimits) -> Fetched:
    """Blocking: run it in a worker thread. Stat first; read only when the mtime or the size moved."""
    try:
        path = check_path(record.location, limits.roots)  # again: the file may have gone, or a symlink moved
    except DyagError as exc:
        raise SourceFailure(exc.code, exc.message) from None
    try:
        st = os.stat(path)
    except OSError as exc:
        raise SourceFailure("file_unreadable", f"cannot read {path}: {exc.strerror or exc}") from None
    if record.sha256 and st.st_mtime_ns == record.mtime_ns and st.st_size == record.size:
        return Fetched(None, "same mtime and size")
    if st.st_size > limits.max_bytes:
        raise SourceFailure(
            "too_large",
            f"{path} is {st.st_size:,} bytes, over the catalog limit of {limits.max_bytes:,} bytes "
            "(DYAG_MAX_CATALOG_BYTES)",
        )
    try:
        with open(path, "rb") as f:
            content = f.read(limits.max_bytes + 1)
    except OSError as exc:
        raise SourceFailure("file_unreadable", f"cannot read {path}: {exc.strerror or exc}") from None
    if len(content) > limits.max_bytes:
        raise SourceFailure(
            "too_large", f"{path} is over the catalog limit of {limits.max_bytes:,} bytes (DYAG_MAX_CATALOG_BYTES)"
        )
    digest = hashlib.sha256(content).hexdigest()
    if digest == record.sha256:
        return Fetched(None, "same sha256", mtime_ns=st.st_mtime_ns, size=len(content), sha256=digest)
    return Fetched(
        content, "new content", filename=path.name, mtime_ns=st.st_mtime_ns, size=len(content), sha256=digest
    )


async def fetch_http(record: SourceRecord, client: httpx.AsyncClient, limits: SourceLimits) -> Fetched:
    url = record.location
    headers = {}
    if record.sha256:  # validators only for content we hold: after a failure, read it all again
        if record.etag:
            headers["If-None-Match"] = record.etag
        if record.last_modified:
            headers["If-Modified-Since"] = record.last_modified
    try:
        async with client.stream("GET", url, headers=headers) as reply:
            if reply.status_code == 304:
                return Fetched(None, "304 Not Modified")
            if reply.status_code != 200:
                raise SourceFailure(
                    "source_http_error", f"GET {url} answered HTTP {reply.status_code} {reply.reason_phrase}".rstrip()
                )
            media_type = reply.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type == "text/html":
                raise SourceFailure(
                    "not_a_catalog", f"GET {url} answered an HTML page, not a catalog (JSON, JSONL or CSV)"
                )
            declared = int(reply.headers.get("content-length") or 0)
            if declared > limits.max_bytes:
                raise _too_large(url, limits)
            chunks, size = [], 0
            async for chunk in reply.aiter_bytes():
                size += len(chunk)
                if size > limits.max_bytes:
                    raise _too_large(url, limits)
                chunks.append(chunk)
            etag, last_modified = reply.headers.get("etag", ""), reply.headers.get("last-modified", "")
    except httpx.TimeoutException:
        raise SourceFailure("source_timeout", f"GET {url} did not answer within {limits.http_timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise SourceFailure("source_unreachable", f"GET {url} failed: {exc or type(exc).__name__}") from None
    content = b"".join(chunks)
    digest = hashlib.sha256(content).hexdigest()
    if digest == record.sha256:
        return Fetched(None, "same sha256", etag=etag, last_modified=last_modified, size=len(content), sha256=digest)
    return Fetched(
        content,
        "new content",
        filename=filename_of_url(url, media_type),
        etag=etag,
        last_modified=last_modified,
        size=len(content),
        sha256=digest,
    )


def _too_large(url: str, limits: SourceLimits) -> SourceFailure:
    return SourceFailure(
        "too_large", f"GET {url} sends over the catalog limit of {limits.max_bytes:,} bytes (DYAG_MAX_CATALOG_BYTES)"
    )


def filename_of_url(url: str, media_type: str = "") -> str:
    """A file name that tells the loader the format: the URL's own with a catalog suffix, else from the media type."""
    last = PurePosixPath(urlsplit(url).path).name
    if PurePosixPath(last).suffix.lower() in CATALOG_SUFFIXES:
        return last
    return _FILENAME_OF_MEDIA_TYPE.get(media_type, "")


# --- polling -----------------------------------------------------------------------------------------------------
class CatalogSources:
    """The sources of dataset-builder's catalogs: set, remove, poll now, and one polling task per source."""

    def __init__(
        self,
        store: SourceStore,
        ingest: Ingest,
        limits: SourceLimits,
        *,
        versions: Callable[[str, str], VersionRow | None] = lambda name, version: None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.store, self.ingest, self.limits = store, ingest, limits
        self.versions, self.clock, self.sleep = versions, clock, sleep
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: dict[str, asyncio.Task] = {}
        self._watcher: asyncio.Task | None = None
        self._running = False

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.limits.http_timeout_s,
                follow_redirects=True,
                max_redirects=5,
                transport=self._transport,
                headers={"User-Agent": "dyag-dataset-builder (catalog source)"},
            )
        return self._client

    # --- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """One polling task per stored source (the service's setup; after a restart, polling resumes), and a watch
        for the sources other replicas set."""
        self._running = True
        for record in self.store.all():
            self._schedule(record.name)
        if self._tasks:
            log.info("following catalog sources", extra={"sources": sorted(self._tasks)})
        self._watcher = asyncio.create_task(self._watch(), name="catalog-sources-watch")

    async def _watch(self) -> None:
        """Replicas: every replica follows every source (the poll itself is claimed by one, `poll`), so that a source
        set through another replica is followed here too, within min_interval_s, and goes on when that replica
        stops."""
        while True:
            await self.sleep(self.limits.min_interval_s)
            try:
                names = [r.name for r in await asyncio.to_thread(self.store.all)]
            except asyncio.CancelledError:
                raise
            except Exception:  # the database away for a moment: the next round sees it again
                log.exception("listing catalog sources failed")
                continue
            for name in names:
                if name not in self._tasks or self._tasks[name].done():
                    log.info("following a catalog source set by another replica", extra={"catalog": name})
                    self._schedule(name)

    async def stop(self) -> None:
        self._running = False
        tasks = list(self._tasks.values()) + ([self._watcher] if self._watcher else [])
        self._tasks.clear()
        self._watcher = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _schedule(self, name: str) -> None:
        if not self._running:
            return
        if old := self._tasks.pop(name, None):
            old.cancel()
        self._tasks[name] = asyncio.create_task(self._follow(name), name=f"catalog-source-{name}")

    def _unschedule(self, name: str) -> None:
        if task := self._tasks.pop(name, None):
            task.cancel()

    async def _follow(self, name: str) -> None:
        """Sleep until the source is due, poll it, again. A poll now (PollSource) moves the next one on."""
        while True:
            record = self.store.get(name)
            if record is None:
                return
            wait = record.next_check_at - self.clock()
            if wait > 0:
                await self.sleep(min(wait, record.interval_s))
                continue
            try:
                await self.poll(name, due_only=True)
            except SourceNotFound:
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one bad poll end the following
                log.exception("polling catalog source failed", extra={"catalog": name})
                await self.sleep(record.interval_s)

    # --- the RPCs' work ----------------------------------------------------------------------------------------
    async def set(
        self,
        name: str,
        *,
        path: str = "",
        url: str = "",
        interval_s: int = 0,
        reject_mojibake: bool = False,
        roles_yaml: str = "",
        correlation_id: str = "",
    ) -> PollResult:
        """Set (or replace) a catalog's source and poll it at once; the reply says what the first poll found."""
        name = validate_catalog_name(name)
        kind, location, interval = await asyncio.to_thread(check_source, path, url, interval_s, self.limits)
        if roles_yaml:
            from dyag_core.catalog import FieldRoles

            FieldRoles.from_yaml(roles_yaml)  # refuse bad roles now, not at every poll
        async with self._locks[name]:
            self._unschedule(name)
            previous = self.store.get(name)
            record = SourceRecord(
                name=name,
                kind=kind,
                location=location,
                interval_s=interval,
                created_at=self.clock(),
                reject_mojibake=reject_mojibake,
                roles_yaml=roles_yaml,
            )
            if previous and (previous.kind, previous.location, previous.reject_mojibake, previous.roles_yaml) == (
                kind,
                location,
                reject_mojibake,
                roles_yaml,
            ):
                # the same source, another interval: keep its state (no need to read it all again)
                record = previous
                record.interval_s = interval
            self.store.put(record)
        result = await self.poll(name, correlation_id)
        self._schedule(name)
        return result

    def get(self, name: str) -> SourceRecord:
        record = self.store.get(validate_catalog_name(name))
        if record is None:
            raise SourceNotFound(name)
        return record

    async def remove(self, name: str) -> SourceRecord:
        record = self.get(name)
        async with self._locks[record.name]:
            self._unschedule(record.name)
            self.store.delete(record.name)
        return record

    async def poll(self, name: str, correlation_id: str = "", *, due_only: bool = False) -> PollResult | None:
        """Read the source; ingest real changes as an upload is; record the outcome on the source.

        Replicas: the poll is first claimed on the stored record (compare-and-set of its check), so that a due source
        is polled by one replica only. due_only (the scheduler): None when the source is not due, or another replica
        has just polled it."""
        name = validate_catalog_name(name)
        async with self._locks[name]:
            for _ in range(20):
                record = self.store.get(name)
                if record is None:
                    raise SourceNotFound(name)
                if due_only and record.next_check_at > self.clock():
                    return None
                record.checks += 1
                record.last_checked_at = self.clock()
                if self.store.replace(record):
                    break
            else:
                raise DyagError("unavailable", f"catalog source {name!r} changes too often to be polled; try again")
            version: VersionRow | None = None
            try:
                if record.kind == "file":
                    fetched = await asyncio.to_thread(fetch_file, record, self.limits)
                else:
                    fetched = await fetch_http(record, self.client, self.limits)
                if fetched.content is None:
                    outcome, detail = "unchanged", fetched.detail
                else:
                    version, unchanged = await self.ingest(
                        name=name,
                        content=fetched.content,
                        filename=fetched.filename,
                        roles_yaml=record.roles_yaml,
                        reject_mojibake=record.reject_mojibake,
                        correlation_id=correlation_id,
                    )
                    record.last_version = version.version
                    if unchanged:
                        outcome, detail = "unchanged", "same catalog version"
                    else:
                        outcome, detail = "changed", f"new version {version.version}"
                        record.last_changed_at = record.last_checked_at
                        record.changes += 1
                _keep_validators(record, fetched)
                record.error_code, record.error_message, record.error_at = "", "", None
                record.consecutive_failures = 0
            except DyagError as exc:  # the source's fault: the last good version stays, the error is reported
                outcome, detail = "failed", exc.message
                _record_failure(record, exc.code, exc.message)
            except Exception as exc:  # ours: still reported on the source, and logged with its traceback
                log.exception("catalog source poll failed", extra={"catalog": name})
                outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
                _record_failure(record, "source_failed", detail)
            self.store.replace(record)  # unless the source was set anew or removed meanwhile
        if outcome == "failed":
            log.warning(
                "catalog source failed",
                extra={
                    "catalog": name,
                    "error": record.error_message,
                    "consecutive_failures": record.consecutive_failures,
                },
            )
        elif outcome == "changed":
            log.info("catalog source changed", extra={"catalog": name, "version": record.last_version})
        if version is None and record.last_version:
            version = self.versions(name, record.last_version)
        return PollResult(outcome, detail, record, version)


def _keep_validators(record: SourceRecord, fetched: Fetched) -> None:
    for attr in ("etag", "last_modified", "mtime_ns", "size", "sha256"):
        value = getattr(fetched, attr)
        if value is not None:
            setattr(record, attr, value)


def _record_failure(record: SourceRecord, code: str, message: str) -> None:
    record.error_code, record.error_message, record.error_at = code, message, record.last_checked_at
    record.consecutive_failures += 1
