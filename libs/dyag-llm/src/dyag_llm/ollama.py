"""Ollama's chat API (POST {OLLAMA_HOST}/api/chat, not streamed), as a ChatModel.

open_chat_model("ollama:applications-ia")   # the model the guide's step 6 creates with `ollama create`
"""

from __future__ import annotations

import time

import httpx

from dyag_llm.base import ChatResult, LLMError, Messages
from dyag_llm.openai_compat import run_batch


class OllamaChatModel:
    def __init__(self, model: str, host: str = "http://127.0.0.1:11434", timeout: float = 120.0):
        if not model:
            raise LLMError("invalid_model", "name the Ollama model, e.g. ollama:applications-ia")
        self.model = model
        self.name = f"ollama:{model}"
        self.host = _with_scheme(host).rstrip("/")
        self._http = httpx.Client(base_url=self.host, timeout=httpx.Timeout(timeout, connect=10.0))

    def chat(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0) -> ChatResult:
        body = {
            "model": self.model,
            "messages": messages,
            "stream": False,
            "options": {"temperature": temperature, "num_predict": max_tokens},
        }
        start = time.perf_counter()
        try:
            reply = self._http.post("/api/chat", json=body)
        except httpx.TimeoutException:
            raise LLMError(
                "unavailable", f"Ollama at {self.host} did not answer in time (model {self.model})"
            ) from None
        except httpx.HTTPError as exc:
            raise LLMError(
                "unavailable",
                f"cannot reach Ollama at {self.host} ({exc}): start it (`ollama serve`) or set OLLAMA_HOST",
            ) from None
        if reply.status_code == 404:
            raise LLMError(
                "model_not_found",
                f"Ollama at {self.host} has no model {self.model!r}: create it (`ollama "
                f"create {self.model} -f Modelfile`) or pull it (`ollama pull {self.model}`)",
            )
        if reply.status_code >= 400:
            raise LLMError("llm_error", f"Ollama answered HTTP {reply.status_code}: {_error_text(reply)}")
        try:
            data = reply.json()
            text = data["message"]["content"]
        except (ValueError, KeyError, TypeError):
            raise LLMError("llm_error", f"Ollama sent a reply that is not a chat message: {reply.text[:200]}") from None
        return ChatResult(
            text=text.strip(),
            model=self.name,
            prompt_tokens=int(data.get("prompt_eval_count") or 0),
            completion_tokens=int(data.get("eval_count") or 0),
            latency_ms=(time.perf_counter() - start) * 1000,
        )

    def chat_batch(self, batch: list[Messages], *, max_tokens: int = 256, temperature: float = 0.0) -> list[ChatResult]:
        return run_batch(self, batch, max_tokens=max_tokens, temperature=temperature)

    def close(self) -> None:
        self._http.close()


def _with_scheme(host: str) -> str:
    """OLLAMA_HOST may be written '127.0.0.1:11434' (as Ollama itself accepts)."""
    host = (host or "http://127.0.0.1:11434").strip()
    return host if "://" in host else f"http://{host}"


def _error_text(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("error") or reply.text)[:300]
    except ValueError:
        return reply.text[:300]


class OllamaModels:
    """Creating models on an Ollama server through its HTTP API (what `ollama create` does remotely):
    each file is pushed as a blob (HEAD /api/blobs/sha256:… to skip those already there, POST to upload,
    the server checking the digest), then POST /api/create names the blobs in `files` / `adapters` and
    streams its status lines until "success"."""

    def __init__(self, host: str, timeout: float = 600.0):
        self.host = _with_scheme(host).rstrip("/")
        self._http = httpx.Client(base_url=self.host, timeout=httpx.Timeout(timeout, connect=10.0))

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise LLMError(
                "unavailable",
                f"cannot reach Ollama at {self.host} ({exc}): start it (`ollama serve`) or fix OLLAMA_HOST",
            ) from None

    def has_blob(self, digest: str) -> bool:
        reply = self._call("HEAD", f"/api/blobs/{digest}")
        if reply.status_code not in (200, 404):
            raise LLMError("llm_error", f"Ollama answered HTTP {reply.status_code} to HEAD /api/blobs/{digest}")
        return reply.status_code == 200

    def push_blob(self, path, digest: str) -> bool:
        """Upload a file as the blob `digest` ("sha256:<hex>") unless the server has it; True when uploaded."""
        if self.has_blob(digest):
            return False
        import os

        def chunks():
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk

        reply = self._call(
            "POST",
            f"/api/blobs/{digest}",
            content=chunks(),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(os.path.getsize(path))},
        )
        if reply.status_code not in (200, 201):
            raise LLMError(
                "llm_error",
                f"Ollama refused the blob {digest} of {path}: HTTP {reply.status_code} {_error_text(reply)}",
            )
        return True

    def create(self, body: dict, on_status=lambda line: None) -> list[str]:
        """POST /api/create (streamed); the status lines, ending with "success". An error line raises LLMError."""
        import json

        statuses: list[str] = []
        try:
            with self._http.stream("POST", "/api/create", json={**body, "stream": True}) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    raise LLMError(
                        "llm_error",
                        f"Ollama refused to create {body.get('model')!r}: "
                        f"HTTP {reply.status_code} {_error_text(reply)}",
                    )
                for line in reply.iter_lines():
                    if not line.strip():
                        continue
                    try:
                        data = json.loads(line)
                    except ValueError:
                        raise LLMError(
                            "llm_error", f"Ollama sent a line that is not JSON while creating the model: {line[:200]}"
                        ) from None
                    if data.get("error"):
                        raise LLMError("llm_error", f"Ollama could not create {body.get('model')!r}: {data['error']}")
                    if status := data.get("status"):
                        statuses.append(str(status))
                        on_status(str(status))
        except httpx.HTTPError as exc:
            raise LLMError("unavailable", f"lost Ollama at {self.host} while creating the model ({exc})") from None
        if not statuses or statuses[-1] != "success":
            raise LLMError(
                "llm_error", f"Ollama ended the creation of {body.get('model')!r} without success: {statuses[-3:]}"
            )
        return statuses

    def close(self) -> None:
        self._http.close()
