"""HTTP client of the gateway: every dyag command goes through it."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from dyag_cli.retry import CliError, GatewayUnavailable, Waiter
from dyag_cli.stack import api_key_path, dyag_home

__all__ = ["CliError", "GatewayClient", "GatewayUnavailable", "Waiter"]

RESTARTING = (502, 503, 504)  # the gateway, or a service behind it, is down or restarting: a follower waits
JOB_ENDED = ("succeeded", "failed", "cancelled")


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def default_url() -> str:
    if url := os.environ.get("DYAG_URL"):
        return url.rstrip("/")
    state = dyag_home() / "stack.json"
    try:
        return json.loads(state.read_text())["gateway_url"]
    except (OSError, KeyError, ValueError):
        return "http://127.0.0.1:8000"


def default_api_key() -> str:
    if key := os.environ.get("DYAG_API_KEY"):
        return key
    try:
        return api_key_path().read_text().strip()
    except OSError:
        return ""


class GatewayClient:
    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float = 120.0):
        self.url = (url or default_url()).rstrip("/")
        self.http = httpx.Client(
            base_url=self.url, timeout=timeout, headers={"X-API-Key": api_key or default_api_key()}
        )

    def _unavailable(self, exc: httpx.TransportError, method: str, path: str) -> GatewayUnavailable:
        if isinstance(exc, httpx.ConnectError):
            return GatewayUnavailable(f"the gateway at {self.url} does not answer: start the stack with `dyag up`")
        if isinstance(exc, httpx.TimeoutException):
            return GatewayUnavailable(f"the gateway at {self.url} did not answer in time ({method} {path})")
        return GatewayUnavailable(
            f"the gateway at {self.url} cut the connection ({method} {path}: {type(exc).__name__}: {exc})"
        )

    def _refused(self, reply: httpx.Response, method: str, path: str) -> CliError:
        """A reply >= 400 as the error to show; 502, 503 and 504 as GatewayUnavailable (a follower waits)."""
        try:
            error = reply.json()["error"]
            message = f"{error['message']} [{error['code']}, HTTP {reply.status_code}]"
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {reply.status_code} from {method} {path}: {reply.text[:300]}"
        if reply.status_code in RESTARTING:
            return GatewayUnavailable(message, "a service behind the gateway is restarting; waiting…")
        return CliError(message)

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            reply = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unavailable(exc, method, path) from None
        if reply.status_code >= 400:
            raise self._refused(reply, method, path)
        return reply.json()

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.request("GET", path, params={k: v for k, v in params.items() if v not in (None, "")})

    def get_waiting(self, path: str, waiter: Waiter, **params: Any) -> dict[str, Any]:
        """GET that waits through a restart of the gateway or of a service behind it (what a follower polls)."""
        while True:
            try:
                reply = self.get(path, **params)
            except GatewayUnavailable as exc:
                waiter.wait(exc)
                continue
            waiter.recovered()
            return reply

    def post(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return self.request("POST", path, **kwargs)

    def post_idempotent(self, path: str, waiter: Waiter, **kwargs: Any) -> dict[str, Any]:
        """POST under a fresh Idempotency-Key, sent again through a gateway's restart (a dropped connection, a 502,
        503 or 504): the gateway answers a repeat with what the first one created, never a second one."""
        headers = {**kwargs.pop("headers", {}), "Idempotency-Key": uuid.uuid4().hex}
        while True:
            try:
                reply = self.post(path, headers=headers, **kwargs)
            except GatewayUnavailable as exc:
                waiter.wait(exc)
                continue
            waiter.recovered()
            return reply

    def upload_catalog(
        self, path: Path, name: str = "", roles: Path | None = None, reject_mojibake: bool = False
    ) -> dict[str, Any]:
        if not path.is_file():
            raise CliError(f"no such file: {path}")
        data = {"name": name} if name else {}
        if roles:
            if not roles.is_file():
                raise CliError(f"no such roles file: {roles}")
            data["roles"] = roles.read_text(encoding="utf-8")
        if reject_mojibake:
            data["reject_mojibake"] = "true"
        with open(path, "rb") as f:
            return self.post("/catalogs", files={"file": (path.name, f)}, data=data)

    def validate(
        self, path: Path, *, catalog: str = "", model: str = "", hosted: bool = False, allow_pii: bool = False
    ) -> dict[str, Any]:
        """Validate a local dataset file; its provenance manifest beside it is sent too."""
        if not path.is_file():
            raise CliError(f"no such dataset file: {path}")
        data = {k: v for k, v in {"catalog": catalog, "model": model}.items() if v}
        if hosted:
            data["bound_for_hosted_api"] = "true"
        if allow_pii:
            data["allow_pii"] = "true"
        manifest = path.with_name(path.name + ".manifest.jsonl")
        splits = {name: path.with_name(f"{name}.jsonl") for name in ("train", "validation", "test")}
        if path in splits.values() and all(p.is_file() for p in splits.values()):  # the guide's step 2.2 layout
            data["split_counts"] = json.dumps({name: _count_lines(p) for name, p in splits.items()})
        with open(path, "rb") as f:
            files: dict[str, Any] = {"file": (path.name, f)}
            if manifest.is_file():
                files["manifest"] = (manifest.name, manifest.read_bytes())
            return self.post("/validate", files=files, data=data, timeout=600)

    def download(self, path: str, dest: Path) -> Path:
        """Stream a file from the gateway to dest (through a temp file: never half a file)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        try:
            with self.http.stream("GET", path) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    raise CliError(reply.json().get("error", {}).get("message", reply.text))
                with open(tmp, "wb") as out:
                    for chunk in reply.iter_bytes():
                        out.write(chunk)
        except httpx.TransportError as exc:
            raise self._unavailable(exc, "GET", path) from None
        tmp.replace(dest)
        return dest

    def watch_job(self, job_id: str, waiter: Waiter | None = None) -> Iterator[dict[str, Any]]:
        """The job's state each time it changes, until it ends (server-sent events). A restart of the gateway or of
        the job's service is waited through (`waiter`: its notice, its limit), the stream opened again."""
        waiter = waiter or Waiter(hint=f"the job goes on: dyag jobs watch {job_id}")
        while True:
            try:
                for job in self._job_events(job_id):
                    waiter.recovered()
                    yield job
                    if job.get("status") in JOB_ENDED:
                        return
                raise GatewayUnavailable(f"the gateway at {self.url} closed the stream of job {job_id} before its end")
            except GatewayUnavailable as exc:
                waiter.wait(exc)

    def _job_events(self, job_id: str) -> Iterator[dict[str, Any]]:
        path = f"/jobs/{job_id}/events"
        # The gateway re-reads the job every 3 s: two minutes of silence is a gateway that hangs.
        try:
            with self.http.stream("GET", path, timeout=httpx.Timeout(30.0, read=120.0)) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    raise self._refused(reply, "GET", path)
                event = ""
                for line in reply.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "job":
                        yield json.loads(line[6:])
        except httpx.TransportError as exc:
            raise self._unavailable(exc, "GET", path) from None
