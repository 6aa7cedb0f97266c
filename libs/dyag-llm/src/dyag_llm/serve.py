"""A small OpenAI-compatible chat server over one GGUF (and optionally a GGUF LoRA), through dyag_llm.gguf's
GgufChatModel (ik-llama-cpp-python, prebuilt: nothing to compile). `dyag serve` runs it over an exported GGUF.

    python -m dyag_llm.serve --model model-q8_0.gguf [--lora adapter-f16.gguf] [--host 127.0.0.1] [--port 8080]
                             [--alias applications-ia] [--n-ctx 2048] [--threads N]

    GET  /v1/models             the one model, named by --alias
    POST /v1/chat/completions   non-streaming; messages, max_tokens (or max_completion_tokens), temperature, stop

Any client of the OpenAI API works (OPENAI_BASE_URL=http://HOST:PORT/v1, any API key; the request's `model` is not
checked: there is one). Errors are JSON ({"error": {"message", "type", "code"}}): 4xx for a bad request, 500 when
the model fails. One answer at a time (GgufChatModel's lock): the CPU is the limit.

The prompt format is ChatML or Gemma's, chosen from the GGUF's own chat template (tokenizer.chat_template, read
with the `gguf` package where it is installed, else from the file name).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MAX_BODY = 4 * 1024 * 1024
ROLES = ("system", "user", "assistant")
DEFAULT_MAX_TOKENS = 256
DEFAULT_TEMPERATURE = 0.8  # llama-cpp-python's server's default, which `dyag serve` used before


class BadRequest(Exception):
    def __init__(
        self,
        message: str,
        status: HTTPStatus = HTTPStatus.BAD_REQUEST,
        code: str = "invalid_request",
        param: str | None = None,
    ):
        super().__init__(message)
        self.message, self.status, self.code, self.param = message, status, code, param


def chat_template_of(path: Path) -> str | None:
    """chatml or gemma, from the GGUF's tokenizer.chat_template; None when it cannot be read or is neither."""
    try:
        from gguf import GGUFReader
    except ImportError:
        return None
    try:
        field = GGUFReader(str(path)).fields.get("tokenizer.chat_template")
        text = str(field.contents()) if field is not None else ""
    except Exception:  # a GGUF the reader does not know: the file name decides
        return None
    if "<start_of_turn>" in text:
        return "gemma"
    if "<|im_start|>" in text:
        return "chatml"
    return None


def _content(message: Any, index: int) -> tuple[str, str]:
    if not isinstance(message, dict):
        raise BadRequest(f"messages[{index}] is not an object", param="messages")
    role = message.get("role")
    if role not in ROLES:
        raise BadRequest(f"messages[{index}].role must be one of {', '.join(ROLES)}, not {role!r}", param="messages")
    content = message.get("content")
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
            raise BadRequest(f"messages[{index}].content: only text parts are supported", param="messages")
        content = "".join(p["text"] for p in content)
    if not isinstance(content, str):
        raise BadRequest(f"messages[{index}].content must be a string", param="messages")
    return role, content


def parse_chat_request(body: Any, n_ctx: int) -> dict[str, Any]:
    """The request's messages and options, checked; BadRequest says what is wrong."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list of {role, content}", param="messages")
    parsed = [dict(zip(("role", "content"), _content(m, i), strict=True)) for i, m in enumerate(messages)]
    if body.get("stream"):
        raise BadRequest("streaming is not supported by this server: send stream=false", param="stream")
    if body.get("n", 1) != 1:
        raise BadRequest("n must be 1", param="n")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens < n_ctx:
        raise BadRequest(
            f"max_tokens must be an integer from 1 to {n_ctx - 1} (the context is {n_ctx} tokens)", param="max_tokens"
        )
    temperature = body.get("temperature")
    temperature = DEFAULT_TEMPERATURE if temperature is None else temperature
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        raise BadRequest("temperature must be a number from 0 to 2", param="temperature")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise BadRequest("stop must be a string or a list of strings", param="stop")
    return {
        "messages": parsed,
        "max_tokens": max_tokens,
        "temperature": float(temperature),
        "stop": [s for s in stop if s],
    }


class ChatServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], model, alias: str, n_ctx: int, quiet: bool = False):
        super().__init__(address, Handler)
        self.model, self.alias, self.n_ctx, self.quiet = model, alias, n_ctx, quiet
        self.created = int(time.time())


class Handler(BaseHTTPRequestHandler):
    server: ChatServer
    server_version = "dyag-llm-serve"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: HTTPStatus, message: str, code: str, param: str | None = None) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        self._send(status, {"error": {"message": message, "type": kind, "code": code, "param": param}})

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self._path() in ("/v1/models", "/models"):
            self._send(
                HTTPStatus.OK,
                {
                    "object": "list",
                    "data": [
                        {"id": self.server.alias, "object": "model", "created": self.server.created, "owned_by": "dyag"}
                    ],
                },
            )
        elif self._path() in ("/health", "/v1/health"):
            self._send(HTTPStatus.OK, {"status": "ok"})
        elif self._path() in ("/v1/chat/completions", "/chat/completions"):
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use POST for /v1/chat/completions", "method_not_allowed")
        else:
            self._error(
                HTTPStatus.NOT_FOUND,
                f"no such endpoint: GET {self._path() or '/'} (this server has GET /v1/models and "
                "POST /v1/chat/completions)",
                "not_found",
            )

    def do_POST(self) -> None:  # noqa: N802
        if self._path() not in ("/v1/chat/completions", "/chat/completions"):
            self._drain()
            self._error(
                HTTPStatus.NOT_FOUND,
                f"no such endpoint: POST {self._path() or '/'} (this server has POST "
                "/v1/chat/completions, non-streaming)",
                "not_found",
            )
            return
        try:
            request = parse_chat_request(self._json_body(), self.server.n_ctx)
        except BadRequest as exc:
            self._error(exc.status, exc.message, exc.code, exc.param)
            return
        try:
            result = self.server.model.chat(
                request["messages"], max_tokens=request["max_tokens"], temperature=request["temperature"]
            )
        except Exception as exc:  # llama.cpp failed on this prompt: the server stays up
            self._error(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                f"the model failed: {getattr(exc, 'message', None) or exc}",
                "model_failed",
            )
            return
        text, finish = result.text, result.finish_reason or "stop"
        cuts = [i for i in (text.find(s) for s in request["stop"]) if i >= 0]
        if cuts:
            text, finish = text[: min(cuts)].rstrip(), "stop"
        self._send(
            HTTPStatus.OK,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.server.alias,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens,
                    "total_tokens": result.prompt_tokens + result.completion_tokens,
                },
            },
        )

    def _length(self) -> int:
        try:
            return max(int(self.headers.get("Content-Length") or 0), 0)
        except ValueError:
            return -1

    def _drain(self) -> None:
        length = self._length()
        if 0 < length <= MAX_BODY:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _json_body(self) -> Any:
        length = self._length()
        if length < 0 or "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            raise BadRequest("send the body with a Content-Length", HTTPStatus.LENGTH_REQUIRED, "length_required")
        if length > MAX_BODY:
            self.close_connection = True
            raise BadRequest(
                f"the body is over {MAX_BODY // (1024 * 1024)} MiB", HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large"
            )
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"the body is not valid JSON ({exc})", code="invalid_json") from None


def load_model(model: Path, lora: Path | None = None, *, n_ctx: int = 2048, threads: int = 0):
    """GgufChatModel over the file, with the prompt format of its own chat template."""
    from dyag_llm.gguf import GgufChatModel

    chat = GgufChatModel(str(model), lora=lora, n_ctx=n_ctx, threads=threads)
    chat.template = chat_template_of(model) or chat.template
    return chat


def make_server(
    model, *, host: str = "127.0.0.1", port: int = 8080, alias: str = "model", n_ctx: int = 2048, quiet: bool = False
) -> ChatServer:
    """The server over a loaded chat model (not yet serving: serve_forever(), e.g. in a thread)."""
    return ChatServer((host, port), model, alias, n_ctx, quiet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dyag_llm.serve", description="An OpenAI-compatible chat server over one GGUF."
    )
    parser.add_argument("--model", type=Path, required=True, help="the GGUF file")
    parser.add_argument("--lora", type=Path, default=None, help="a GGUF LoRA adapter for it (llama.cpp's --lora)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--alias", default="", help="the model name /v1/models shows (default: the file's stem)")
    parser.add_argument("--n-ctx", type=int, default=2048, help="context length in tokens")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads (default: DYAG_LLM_THREADS, else all cores)"
    )
    args = parser.parse_args(argv)
    for what, path in (("model", args.model), ("LoRA adapter", args.lora)):
        if path is not None and not path.is_file():
            parser.error(f"no such {what} file: {path}")
    if args.n_ctx < 16:
        parser.error("--n-ctx must be at least 16")

    from dyag_core.errors import DyagError

    # llama.cpp's OpenMP threads sleep when idle instead of spinning: on a small machine shared with other work,
    # spinning threads answer several times slower (read when the library loads, so before the import).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    began = time.monotonic()
    try:
        model = load_model(args.model, args.lora, n_ctx=args.n_ctx, threads=args.threads)
    except (DyagError, RuntimeError, OSError) as exc:
        print(f"dyag_llm.serve: cannot load {args.model}: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    try:
        server = make_server(
            model, host=args.host, port=args.port, alias=args.alias or args.model.stem, n_ctx=args.n_ctx
        )
    except OSError as exc:
        print(f"dyag_llm.serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(
        f"dyag_llm.serve: {args.model.name}{' + ' + args.lora.name if args.lora else ''} "
        f"loaded in {time.monotonic() - began:.1f} s ({model.template} prompts); "
        f"listening on http://{args.host}:{server.server_address[1]}/v1 as {server.alias}",
        flush=True,
    )

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()  # the model is freed with the process: an answer may still be running in its thread
    return 0


if __name__ == "__main__":
    sys.exit(main())
