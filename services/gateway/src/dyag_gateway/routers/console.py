"""The web console: static files (HTML, CSS, ES modules, the vendored chart library) at /ui, / redirecting there.

The console is a client of the same JSON API as `dyag`: every request it makes carries the API key the user entered
(X-API-Key). Its files need no key (they hold no data); `GET /ui/session` tells the page whether the gateway accepts a
key, before the page keeps it for the browser session.
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from dyag_gateway.auth import authenticate
from dyag_gateway.errors import ApiError, error_body

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"

# Nothing from elsewhere: scripts, styles, images and API calls from this origin only (charts are drawn on canvases,
# Chart.js sets sizes through the CSSOM, which style-src does not govern).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
}

router = APIRouter(include_in_schema=False)


def _headers(etag: str = "") -> dict[str, str]:
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",  # revalidated each time (ETag): a new gateway's console is seen at once
    }
    if etag:
        headers["ETag"] = etag
    return headers


def _file(path: Path, request: Request) -> Response:
    content = path.read_bytes()
    etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=_headers(etag))
    media_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Response(content, media_type=media_type, headers=_headers(etag))


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
async def ui_redirect() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/session")
async def session(request: Request) -> JSONResponse:
    """Whether the gateway accepts the key in X-API-Key, and for what: always a 200, the verdict in the body (the
    console asks before it keeps a key). Rate-limited like any keyed request."""
    try:
        principal = await authenticate(request)
    except ApiError as exc:
        return JSONResponse(
            {"accepted": False, **error_body(exc.code, exc.message)}, headers={"Cache-Control": "no-store"}
        )
    key = {"id": principal.id, "name": principal.name, "scopes": list(principal.scopes)}
    return JSONResponse({"accepted": True, "key": key}, headers={"Cache-Control": "no-store"})


@router.get("/ui/{path:path}")
async def console_file(path: str, request: Request) -> Response:
    if path in ("", "index.html"):
        return _file(CONSOLE_DIR / "index.html", request)
    target = (CONSOLE_DIR / path).resolve()
    if (
        not target.is_relative_to(CONSOLE_DIR)
        or any(part.startswith(".") for part in Path(path).parts)
        or not target.is_file()
    ):
        raise ApiError(404, "not_found", f"the console has no file {path!r}")
    return _file(target, request)
