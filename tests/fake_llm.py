"""Fake chat servers for tests, as real HTTP servers on loopback (no Ollama nor OpenAI here).

- FakeOllama speaks Ollama's documented POST /api/chat (stream: false).
- FakeOpenAI speaks POST /v1/chat/completions with a Bearer key, and can answer 429 first.

Both answer like a model that follows the RAG prompt's instructions: from the context only, citing the
source tag of the chunk it uses, and "Je ne sais pas" when the question's application is not in the
context. That makes "unknown application -> je ne sais pas" testable end to end without a real model.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dyag_core.text import fold

_SOURCE = re.compile(r"^\[\d+\] source : \[(?P<tag>[^\]]+)\]$", re.MULTILINE)
_NAME_LIKE = re.compile(r"\b[A-Z0-9][A-Z0-9-]{2,}\b")


def grounded_answer(messages: list[dict[str, str]]) -> str:
    """What an obedient model says: a line of the context about the named application, with its source."""
    user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    context, _, rest = user.partition("\n\nQuestion : ")
    question = rest.split("\n\n", 1)[0]
    blocks = re.split(r"\n\n(?=\[\d+\] source : )", context)
    # The application the question is about: its names in capitals, else its longest word.
    names = _NAME_LIKE.findall(question) or sorted(fold(question).split(), key=len)[-1:]
    name_words = {w for n in names for w in fold(n).split()}
    words = {w for w in fold(question).split() if len(w) > 3} - name_words
    best: tuple[int, str, str] | None = None
    for block in blocks:
        match = _SOURCE.search(block)
        if not match:
            continue
        if not any(fold(n) in fold(block) for n in names):
            continue
        body = block[match.end() :].strip().splitlines()[1:]  # the chunk's lines after its header
        for line in body:
            score = len(words & set(fold(line).split()))
            if best is None or score > best[0]:
                best = (score, line.strip(), match.group("tag"))
    if best is None:
        return "Je ne sais pas : le contexte ne parle pas de cette application."
    return f"D'après le catalogue, {best[1]} [{best[2]}]."


def _count_tokens(messages: list[dict[str, str]]) -> int:
    return sum(len(m.get("content", "").split()) for m in messages)


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.requests: list[dict[str, Any]] = []
        handler.owner = self  # type: ignore[attr-defined]
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    owner: Any = None

    def log_message(self, *args) -> None:  # quiet
        pass

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("content-length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class FakeOllama(_Server):
    """Ollama at http://127.0.0.1:<port>, with the models named in `models`."""

    def __init__(self, models: tuple[str, ...] = ("applications-ia",)):
        self.models = set(models)
        super().__init__(type("OllamaHandler", (_OllamaHandler,), {}))

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class _OllamaHandler(_Handler):
    def do_POST(self) -> None:
        if self.path != "/api/chat":
            return self._send(404, {"error": "404 page not found"})
        body = self._body()
        self.owner.requests.append(body)
        if body.get("model") not in self.owner.models:
            return self._send(404, {"error": f"model '{body.get('model')}' not found, try pulling it first"})
        text = grounded_answer(body.get("messages", []))
        self._send(
            200,
            {
                "model": body["model"],
                "created_at": "2026-11-25T12:00:00Z",
                "message": {"role": "assistant", "content": text},
                "done": True,
                "done_reason": "stop",
                "total_duration": 1_000_000,
                "prompt_eval_count": _count_tokens(body.get("messages", [])),
                "eval_count": len(text.split()),
            },
        )


class FakeOpenAI(_Server):
    """An OpenAI-compatible server at http://127.0.0.1:<port>/v1 that wants `api_key`."""

    def __init__(self, api_key: str = "sk-test", models: tuple[str, ...] = ("gpt-4o-mini",), rate_limit_first: int = 0):
        self.api_key, self.models, self.rate_limited_left = api_key, set(models), rate_limit_first
        super().__init__(type("OpenAIHandler", (_OpenAIHandler,), {}))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


class _OpenAIHandler(_Handler):
    def do_POST(self) -> None:
        owner = self.owner
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": f"Unknown path {self.path}", "type": "invalid_request_error"}})
        if self.headers.get("authorization") != f"Bearer {owner.api_key}":
            return self._send(
                401,
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            )
        body = self._body()
        owner.requests.append(body)
        if owner.rate_limited_left > 0:
            owner.rate_limited_left -= 1
            return self._send(
                429, {"error": {"message": "Rate limit reached", "type": "requests"}}, {"retry-after": "0"}
            )
        if body.get("model") not in owner.models:
            return self._send(
                404,
                {"error": {"message": f"The model `{body.get('model')}` does not exist", "code": "model_not_found"}},
            )
        text = grounded_answer(body.get("messages", []))
        prompt = _count_tokens(body.get("messages", []))
        self._send(
            200,
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 1764072000,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": len(text.split()),
                    "total_tokens": prompt + len(text.split()),
                },
            },
        )
