"""One error shape for every route: {"error": {"code", "message"}}, with the HTTP status that fits."""

from __future__ import annotations

import grpc
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dyag_core.errors import DyagError
from dyag_runtime.server import ERROR_CODE_KEY, status_of

_HTTP_OF_GRPC = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}
_HTTP_OF_CODE = {"storage_full": 507}  # where the error's own code says more than its gRPC status


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}  # e.g. Retry-After on a 429


def error_body(code: str, message: str) -> dict:
    # A message that quotes the input may quote a lone surrogate, which no JSON response can encode: escaped.
    return {"error": {"code": code, "message": message.encode("utf-8", "backslashreplace").decode("utf-8")}}


async def api_error_handler(_: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=exc.headers or None)


def api_error_of(exc: grpc.aio.AioRpcError, prefix: str = "") -> ApiError:
    """A service's refusal as the gateway's error: the HTTP status that fits its gRPC code, the service's own error code
    (its trailing metadata) and its message, after `prefix` (what it was about)."""
    code = dict(exc.trailing_metadata() or ()).get(ERROR_CODE_KEY) or exc.code().name.lower()
    message = exc.details() or exc.code().name
    if exc.code() == grpc.StatusCode.UNAVAILABLE and not prefix:
        message = f"a service behind the gateway is unavailable: {message}"
    return ApiError(_HTTP_OF_CODE.get(code) or _HTTP_OF_GRPC.get(exc.code(), 502), code, prefix + message)


async def dyag_error_handler(_: Request, exc: DyagError) -> JSONResponse:
    """A domain error (a peer's refusal through dyag_runtime.peers, or the gateway's own check): the HTTP status of its
    gRPC status, as if a service had answered it."""
    status = _HTTP_OF_CODE.get(exc.code) or _HTTP_OF_GRPC.get(status_of(exc), 502)
    return JSONResponse(error_body(exc.code, exc.message), status_code=status)


async def nats_error_handler(_: Request, exc: Exception) -> JSONResponse:
    """NATS failing over (or down) for longer than the gateway's retries: 503, the client may try again."""
    message = f"the event bus (NATS) is not answering; try again in a few seconds ({type(exc).__name__})"
    return JSONResponse(error_body("nats_unavailable", message), status_code=503, headers={"Retry-After": "5"})


async def grpc_error_handler(_: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
    error = api_error_of(exc)
    return JSONResponse(error_body(error.code, error.message), status_code=error.status)


def _problem(error: dict) -> str:
    if error.get("type") == "json_invalid":  # FastAPI's loc is ("body", position): say what and where
        position = error["loc"][-1] if len(error.get("loc", ())) > 1 else "?"
        return f"body: not valid JSON ({(error.get('ctx') or {}).get('error', 'malformed')} at character {position})"
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"


async def validation_error_handler(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(_problem(e) for e in exc.errors())
    return JSONResponse(error_body("invalid_request", problems), status_code=422)


# Starlette's own refusals (no such route, a method the route lacks, a body it cannot parse) in the same shape.
_CODE_OF_HTTP = {404: "route_not_found", 405: "method_not_allowed", 413: "too_large"}


def body_problem(cause: BaseException | None) -> str:
    """What is wrong with a request body FastAPI could not parse (it only says "There was an error parsing the
    body"), from the exception behind it."""
    if isinstance(cause, RecursionError):
        return "the JSON body is nested too deeply to parse (lists and objects: at most 64 levels deep)"
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not valid UTF-8: byte 0x{cause.object[cause.start]:02x} at offset {cause.start}"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return "a number in the JSON body has more than 4300 digits"
    return f"the body cannot be parsed: {cause or 'malformed'}"


async def http_error_handler(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 404 and exc.detail == "Not Found":
        code, message = "route_not_found", f"no route {request.method} {request.url.path} (GET /docs lists them)"
    elif exc.status_code == 405:
        allowed = next((v for k, v in (exc.headers or {}).items() if k.lower() == "allow"), "")
        code, message = (
            "method_not_allowed",
            f"{request.method} is not allowed on {request.url.path}" + (f"; allowed: {allowed}" if allowed else ""),
        )
    elif exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        code, message = "invalid_body", body_problem(exc.__cause__)
    else:
        code = _CODE_OF_HTTP.get(exc.status_code, "invalid_request" if exc.status_code < 500 else "server_error")
        message = str(exc.detail)
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)
